"""The box's settings that staff change (signature, region, retention): a small TinyDB document.

Written atomically - a temporary file, fsync, rename, fsync of the
directory - so a power cut leaves either the old settings or the new, never
half a file. What the daemon needs at start (port, data dir) stays in the
TOML config; these are the shop's choices.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import phonenumbers
from tinydb import TinyDB
from tinydb.storages import Storage

from appliance.audit import MIN_RETENTION_DAYS
from appliance.errors import SettingsError

SETTINGS_NAME = "settings.json"
DEFAULTS = {
    "signature": "",
    "default_region": "CN",
    "audit_retention_days": MIN_RETENTION_DAYS,
    "quiet_hours": "21:00-08:00",
}


class AtomicJSONStorage(Storage):
    """TinyDB storage that replaces its file atomically on every write."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def read(self):
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return json.loads(text) if text.strip() else None
        except json.JSONDecodeError:
            raise SettingsError(f"{self.path} is damaged (not JSON); restore it from a backup or delete it "
                                f"to go back to the defaults") from None

    def write(self, data) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def close(self) -> None:
        pass


def _validate(key: str, value):
    if key not in DEFAULTS:
        raise SettingsError(f"no setting called {key!r}; the settings are: {', '.join(DEFAULTS)}")
    if key == "signature":
        value = str(value).strip()
        if len(value) > 20:
            raise SettingsError("the signature must be at most 20 characters, e.g. 【小王便利店】")
    elif key == "default_region":
        value = str(value).upper()
        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise SettingsError(f"{value!r} is not a region code; China is CN")
    elif key == "quiet_hours":
        from appliance.policy import parse_quiet_hours  # noqa: PLC0415

        value = str(value).strip()
        parse_quiet_hours(value)
    elif key == "audit_retention_days":
        try:
            value = int(value)
        except (TypeError, ValueError):
            raise SettingsError("audit_retention_days must be a whole number of days") from None
        if value < MIN_RETENTION_DAYS:
            raise SettingsError(f"the message record must be kept at least {MIN_RETENTION_DAYS} days "
                                f"(the service agreement); {value} is too short")
    return value


class Settings:
    def __init__(self, data_dir: str | os.PathLike):
        self._db = TinyDB(Path(data_dir) / SETTINGS_NAME, storage=AtomicJSONStorage)
        self._table = self._db.table("box")

    def _doc(self) -> dict:
        docs = self._table.all()
        return dict(docs[0]) if docs else {}

    def _doc_id(self) -> int | None:
        docs = self._table.all()
        return docs[0].doc_id if docs else None

    def get(self, key: str):
        return self.all()[key]

    def all(self) -> dict:
        return {**DEFAULTS, **{k: v for k, v in self._doc().items() if k in DEFAULTS}}

    def set(self, key: str, value) -> None:
        """One atomic write: the old value or the new survives a power cut, nothing in between."""
        value = _validate(key, value)
        doc_id = self._doc_id()
        if doc_id is None:
            self._table.insert({key: value})
        else:
            self._table.update({key: value}, doc_ids=[doc_id])

    def close(self) -> None:
        self._db.close()
