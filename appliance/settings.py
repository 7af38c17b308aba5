"""The shop's settings that staff change (signature, region, retention, caps): a small TinyDB document.

This module is the one place that opens, reads and writes it: the command
line, the page, the daemon and the panel call :func:`read_settings` and
:func:`save_setting` (or hold a :class:`ShopSettings` open).

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
from appliance.files import write_atomic
from appliance.text import say

SETTINGS_NAME = "settings.json"
DEFAULTS = {
    "signature": "",
    "default_region": "CN",
    "audit_retention_days": MIN_RETENTION_DAYS,
    "quiet_hours": "21:00-08:00",
    "sim_caps": {},
    "test_number": "",
    "low_credit_alert": 50,
    "panel_language": "zh_CN",
    "session_idle_hours": 8,
    "staff_may_steer": False,
    "max_list_rows": 2_000_000,
    "approval": "marketing",
    "consent_gate": "required",
    "unsubscribe_footer": "回T退订",
    "consent_question": "回复Y确认接收【店名】优惠信息，回T退订",
    "consent_days": 7,
    "signup_word": "加入",
    "auto_replies": {},
    "webhook_url": "",
    "webhook_secret": "",
}
#: The marketing gate (appliance/consent.py): "required" texts only customers with consent on record;
#: "paper" lets through numbers the book has no word on, for a shop that keeps its consent on paper.
CONSENT_GATES = ("required", "paper")
#: Which lists a staff member's (or an API token's) must wait for an admin's approval (appliance/approval.py).
APPROVAL_CHOICES = ("none", "marketing", "all")
PANEL_LANGUAGES = ("zh_CN", "en")

#: The caps a shop admin may set per SIM (the modem's label), over the config file's and the
#: carrier's defaults; see appliance/policy.py. Counts are whole numbers (0 = no cap).
CAP_FIELDS = {"per_minute": int, "per_hour": int, "per_day": int, "distinct_per_day": int,
              "min_gap_seconds": float, "jitter_seconds": float}


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
            raise SettingsError(say("{self_path} is damaged (not JSON); restore it from a backup or delete it to "
                                    "go back to the defaults", self_path=self.path)) from None

    def write(self, data) -> None:
        write_atomic(self.path, json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8"))

    def close(self) -> None:
        pass


def _validate(key: str, value):
    if key not in DEFAULTS:
        raise SettingsError(say("no setting called {key!r}; the settings are: {names}", key=key,
                                names=", ".join(DEFAULTS)))
    if key == "signature":
        value = str(value).strip()
        if len(value) > 20:
            raise SettingsError(say("the signature must be at most 20 characters, e.g. 【小王便利店】"))
    elif key == "default_region":
        value = str(value).upper()
        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise SettingsError(say("{value!r} is not a region code; China is CN", value=value))
    elif key == "quiet_hours":
        from appliance.policy import parse_quiet_hours  # noqa: PLC0415

        value = str(value).strip()
        parse_quiet_hours(value)
    elif key == "sim_caps":
        if not isinstance(value, dict):
            raise SettingsError(say("sim_caps must map a modem's label to its caps, e.g. {{\"modem1\": "
                                    "{{\"per_hour\": 150}}}}"))
        value = {str(label): _validate_caps(str(label), caps) for label, caps in value.items()}
        value = {label: caps for label, caps in value.items() if caps}
    elif key == "test_number":
        value = str(value).strip()
        if value:
            from appliance.phones import NumberProblem, normalise  # noqa: PLC0415

            try:
                value = normalise(value, "CN").e164
            except NumberProblem as exc:
                raise SettingsError(say("the test number: {exc}", exc=exc)) from None
    elif key == "low_credit_alert":
        try:
            value = int(value)
        except (TypeError, ValueError):
            raise SettingsError(say("low_credit_alert must be a whole number of credits (0: no alert)")) from None
        if value < 0:
            raise SettingsError(say("low_credit_alert must be 0 (no alert) or more"))
    elif key == "panel_language":
        value = str(value).strip()
        if value not in PANEL_LANGUAGES:
            raise SettingsError(say("the panel's language must be one of {languages}",
                                    languages=", ".join(PANEL_LANGUAGES)))
    elif key in ("staff_may_steer", "session_idle_hours", "approval"):
        value = _validate_access(key, value)
    elif key in ("max_list_rows", "audit_retention_days"):
        value = _validate_count(key, value)
    elif key in ("consent_gate", "unsubscribe_footer", "consent_question", "consent_days", "signup_word"):
        value = _validate_consent(key, value)
    elif key == "auto_replies":
        value = _validate_replies(value)
    elif key in ("webhook_url", "webhook_secret"):
        value = str(value).strip()
        if key == "webhook_url" and value and not value.startswith(("http://", "https://")):
            raise SettingsError(say("the webhook URL starts with https:// (or http:// on the shop's own network)"))
        if key == "webhook_secret" and value and len(value) < 16:
            raise SettingsError(say("the webhook secret must be at least 16 characters"))
    return value


def _validate_replies(value) -> dict:
    """Keyword auto-replies: a keyword (1 to 10 characters) to its answer (1 to 300 characters)."""
    if isinstance(value, str):  # the page's form: one "keyword = answer" per line
        lines = [line.replace("＝", "=").partition("=") for line in value.splitlines() if line.strip()]
        if any(not sep for _, sep, _ in lines):
            raise SettingsError(say("write each auto-reply as keyword = answer, one per line"))
        value = {k.strip(): v.strip() for k, _, v in lines}
    if not isinstance(value, dict):
        raise SettingsError(say("auto_replies maps a keyword to its answer, e.g. 营业时间 = 每天8:00-22:00营业"))
    out = {}
    for k, v in value.items():
        k, v = " ".join(str(k).split()), str(v).strip()
        if not 1 <= len(k) <= 10 or not 1 <= len(v) <= 300:
            raise SettingsError(say("an auto-reply's keyword is 1 to 10 characters and its answer 1 to 300"))
        out[k] = v
    return out


def _validate_consent(key: str, value):
    """The settings of the customer book's consent: the gate, the footer, the question and the sign-up word."""
    if key == "consent_gate":
        value = str(value).strip().lower()
        if value not in CONSENT_GATES:
            raise SettingsError(say("consent_gate must be 'required' (only customers with consent on record get "
                                    "marketing) or 'paper' (the shop keeps consent on paper)"))
        return value
    if key == "consent_days":
        try:
            value = int(value)
        except (TypeError, ValueError):
            value = 0
        if not 1 <= value <= 90:
            raise SettingsError(say("consent_days must be a whole number of days from 1 to 90: how long a "
                                    "question waits for its reply"))
        return value
    value = " ".join(str(value).split())
    if key == "unsubscribe_footer" and not 2 <= len(value) <= 20:
        raise SettingsError(say("the unsubscribe footer must be 2 to 20 characters, e.g. 回T退订"))
    if key == "signup_word" and not 1 <= len(value) <= 10:
        raise SettingsError(say("the sign-up word must be 1 to 10 characters, e.g. 加入"))
    if key == "consent_question":
        from appliance.plan import cost  # noqa: PLC0415

        if "【店名】" not in value:
            raise SettingsError(say("the question must name the shop: keep 【店名】 in it (it becomes the "
                                    "signature)"))
        if cost(value.replace("【店名】", "【" + "x" * 18 + "】"))[1] != 1:
            raise SettingsError(say("the question must fit in one SMS part (70 Chinese characters with the "
                                    "signature)"))
    return value


def _validate_count(key: str, value) -> int:
    """The settings that are whole numbers with a floor: the rows a list may have, the record's days."""
    try:
        value = int(value)
    except (TypeError, ValueError):
        raise SettingsError(say("max_list_rows must be a whole number of rows") if key == "max_list_rows" else
                            say("audit_retention_days must be a whole number of days")) from None
    if key == "max_list_rows" and not 1 <= value <= 100_000_000:
        raise SettingsError(say("max_list_rows must be between 1 and 100,000,000"))
    if key == "audit_retention_days" and value < MIN_RETENTION_DAYS:
        raise SettingsError(say("the message record must be kept at least {days} days (the service "
                                "agreement); {value} is too short", days=MIN_RETENTION_DAYS, value=value))
    return value


def _validate_access(key: str, value):
    """The settings of who may do what on the page, and for how long."""
    if key == "approval":
        value = str(value).strip().lower()
        if value not in APPROVAL_CHOICES:
            raise SettingsError(say("approval must be one of {choices}: which lists staff send only once an admin"
                                    " approved them", choices=', '.join(APPROVAL_CHOICES)))
        return value
    if key == "staff_may_steer":
        if isinstance(value, str):
            value = value.strip().lower() in ("1", "on", "true", "yes")
        return bool(value)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise SettingsError(say("session_idle_hours must be a number of hours, e.g. 8")) from None
    if not 0.25 <= value <= 24 * 30:
        raise SettingsError(say("session_idle_hours must be between 0.25 (15 minutes) and 720 (30 days)"))
    return value


def _validate_caps(label: str, caps) -> dict:
    if not isinstance(caps, dict):
        raise SettingsError(say("the caps of {label} must be a table of {fields}", label=label,
                                fields=", ".join(CAP_FIELDS)))
    out = {}
    for name, raw in caps.items():
        kind = CAP_FIELDS.get(name)
        if kind is None:
            raise SettingsError(say("{name!r} is not a cap; the caps are: {fields}", name=name,
                                    fields=", ".join(CAP_FIELDS)))
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue  # empty: back to the config file's or the carrier's default
        try:
            number = kind(raw.strip() if isinstance(raw, str) else raw)
        except (TypeError, ValueError):
            what = say("a whole number (0 for no cap)") if kind is int else say("a number of seconds")
            raise SettingsError(say("{label} {name}: {raw!r} is not {what}", label=label, name=name, raw=raw,
                                    what=what)) from None
        if isinstance(raw, float) and kind is int and raw != int(raw):
            raise SettingsError(say("{label} {name}: {raw!r} is not a whole number", label=label, name=name,
                                    raw=raw))
        if number < 0 or number > (100_000 if kind is int else 3600):
            raise SettingsError(say("{label} {name}: {raw} is out of range (0 to {most})", label=label, name=name,
                                    raw=raw, most=100_000 if kind is int else say("3600 seconds")))
        out[name] = number
    return out


class ShopSettings:
    """The settings document of one data dir; :meth:`close` it (or use ``with``)."""

    def __init__(self, data_dir: str | os.PathLike):
        self._db = TinyDB(Path(data_dir) / SETTINGS_NAME, storage=AtomicJSONStorage)
        self._table = self._db.table("box")  # the document's table name since the first release: kept

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

    def is_set(self, key: str) -> bool:
        """Whether the shop chose this value (False: the default applies)."""
        return key in self._doc()

    def set(self, key: str, value) -> None:
        """One atomic write: the old value or the new survives a power cut, nothing in between."""
        value = _validate(key, value)
        doc_id = self._doc_id()
        if doc_id is None:
            self._table.insert({key: value})
        else:
            self._table.update({key: value}, doc_ids=[doc_id])

    def set_caps(self, label: str, caps: dict) -> None:
        """Replace one SIM's caps (fields left empty go back to the default); one atomic write."""
        all_caps = dict(self.get("sim_caps"))
        all_caps[label] = caps
        self.set("sim_caps", all_caps)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ShopSettings":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_setting(key: str, value):
    """A value as :func:`save_setting` would store it, or :class:`SettingsError`; nothing is written."""
    return _validate(key, value)


def read_settings(data_dir: str | os.PathLike) -> dict:
    """Every setting, the shop's value or the default."""
    with ShopSettings(data_dir) as s:
        return s.all()


def save_setting(data_dir: str | os.PathLike, key: str, value):
    """Validate and store one setting (one atomic write); returns the value as stored."""
    with ShopSettings(data_dir) as s:
        s.set(key, value)
        return s.get(key)


def save_caps(data_dir: str | os.PathLike, label: str, caps: dict) -> dict:
    """Replace one SIM's caps (empty fields go back to the default); returns what is stored for it."""
    with ShopSettings(data_dir) as s:
        s.set_caps(label, caps)
        return s.get("sim_caps").get(label, {})


def setting_is_set(data_dir: str | os.PathLike, key: str) -> bool:
    """Whether the shop chose this value (False: the default applies)."""
    with ShopSettings(data_dir) as s:
        return s.is_set(key)
