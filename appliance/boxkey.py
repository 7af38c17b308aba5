"""The box's own signing key: what makes an export of its record, or a top-up receipt, provably its own.

An Ed25519 key made the first time the box needs it (the daemon asks at
start, so on a new box that is its first boot), kept in the data dir as
``box.key`` (mode 0600, the service user's only), never replaced: a key
that changed would make every export signed before look forged. Backups
carry it, so a box restored onto a new card keeps its identity.

Its public half is a one-line ``ed25519:...`` (as the vendor's key is) with
a short fingerprint; the panel, the admin page and ``smsgenie box-key``
show it, and the vendor writes it down when the box is sold, so an
inspector or the vendor can check what the box signs without trusting the
box at the time of checking.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.errors import DataDirError
from appliance.files import fsync_dir
from appliance.vendor import key_id, public_key_line

KEY_FILE = "box.key"


@dataclass(frozen=True)
class BoxKey:
    private: Ed25519PrivateKey

    @property
    def public_line(self) -> str:
        """``ed25519:<base64>``: the line to print for the vendor, and what ``--key`` takes."""
        return public_key_line(self.private.public_key())

    @property
    def key_id(self) -> str:
        """A short fingerprint (8 characters) to read off the panel and compare."""
        raw = self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return key_id(raw)

    def sign(self, domain: bytes, data: bytes) -> bytes:
        """Sign ``data`` under ``domain`` (a label ending in NUL), so no signature is ever taken for another."""
        return self.private.sign(domain + data)


def _read(path: Path) -> BoxKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise DataDirError(f"cannot read the box's signing key {path}: {exc.strerror or exc}") from None
    except (ValueError, TypeError):
        raise DataDirError(f"the box's signing key {path} is damaged; restore it from a backup (a new key "
                           f"would make the exports and receipts signed before unverifiable)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise DataDirError(f"{path} is not an Ed25519 key")
    return BoxKey(key)


def load(data_dir: str | os.PathLike) -> BoxKey:
    """The box's key, made now if it has none. Two processes asking at once get the same key."""
    path = Path(data_dir) / KEY_FILE
    if path.exists():
        return _read(path)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    try:
        fd, name = tempfile.mkstemp(prefix=f".{KEY_FILE}.", dir=path.parent)  # mode 0600
    except OSError as exc:
        raise DataDirError(f"cannot make the box's signing key in {path.parent}: {exc.strerror or exc}") from None
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # never over a key another process made a moment ago
        except FileExistsError:
            return _read(path)
        fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return BoxKey(private)
