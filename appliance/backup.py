"""Backups of the data dir to a USB stick, and restoring one onto a new card.

The message record must outlive an SD card (it is kept at least 6 months for
lawful queries), so the technician copies it off the box: ``smsgenie backup
/media/usb``. A backup holds the database (queue, ledger, spent codes,
opt-outs, the hash-chained record, accounts), the shop's settings and the
box's signing key (appliance/boxkey.py); not the web page's session key (a
new one is made) nor transient files.

It holds every customer's phone number, so a lost stick must not give them
away: the file is encrypted with a passphrase the technician chooses (scrypt
for the key, ChaCha20-Poly1305 over 1 MiB chunks, each chunk's nonce its
number plus a last-chunk flag, so a cut, reordered or changed file is
refused, not half restored). The header, in clear, says only which box made
it and when.

The database is copied with SQLite's online backup, so the daemon may keep
sending while a backup is made. Restoring needs the daemon stopped; whatever
the data dir held before is moved aside (``before-restore-<time>/``), never
deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import struct
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from appliance.audit import AuditLog
from appliance.boxkey import KEY_FILE
from appliance.clock import SystemClock
from appliance.db import DB_NAME, Database
from appliance.errors import SmsGenieError
from appliance.files import fsync_dir, sha256_file
from appliance.lock import DataDirLock
from appliance.settings import SETTINGS_NAME

MAGIC = b"SMSGENIE-BACKUP-1\n"
FORMAT = "smsgenie-backup-1"
CHUNK = 1 << 20
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 15, 8, 1
MIN_PASSPHRASE = 8
#: What a backup holds, besides the database.
FILES = (SETTINGS_NAME, KEY_FILE)


class BackupError(SmsGenieError):
    """A backup could not be made, or a file could not be restored. Nothing was changed."""


class WrongPassphrase(BackupError):
    """The passphrase does not open this backup (or the file was changed)."""


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    device_id: str
    created: str
    version: str
    messages: int
    audit_head: str


def _key(passphrase: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(passphrase.encode("utf-8"))


def _nonce(counter: int, last: bool) -> bytes:
    return struct.pack(">QI", counter, 1 if last else 0)  # 12 bytes


#: The header's key check: an empty message sealed under a nonce no chunk uses. It tells a wrong
#: passphrase apart from a damaged file.
_CHECK_NONCE = struct.pack(">QI", 2**64 - 1, 2)


def _key_check(key: bytes) -> str:
    return ChaCha20Poly1305(key).encrypt(_CHECK_NONCE, b"", MAGIC).hex()


class _Sealer:
    """A write-only file object: plaintext in, length-prefixed sealed chunks out."""

    def __init__(self, out, key: bytes, aad: bytes):
        self._out, self._aead, self._aad = out, ChaCha20Poly1305(key), aad
        self._buf = bytearray()
        self._n = 0

    def write(self, data: bytes) -> int:
        self._buf += data
        while len(self._buf) > CHUNK:  # keep at least one byte back: the last chunk is sealed as last
            self._seal(bytes(self._buf[:CHUNK]), last=False)
            del self._buf[:CHUNK]
        return len(data)

    def _seal(self, chunk: bytes, last: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._n, last), chunk, self._aad)
        self._out.write(struct.pack(">I", len(sealed)) + sealed)
        self._n += 1

    def close(self) -> None:
        self._seal(bytes(self._buf), last=True)
        self._buf.clear()


class _Opener:
    """A read-only file object over sealed chunks; raises WrongPassphrase on any change."""

    def __init__(self, src, key: bytes, aad: bytes, name: str):
        self._src, self._aead, self._aad, self._name = src, ChaCha20Poly1305(key), aad, name
        self._buf = b""
        self._n = 0
        self._done = False

    def _next(self) -> None:
        head = self._src.read(4)
        if len(head) < 4:
            raise BackupError(f"{self._name} is cut short (copied before the stick was full?): copy it again")
        (size,) = struct.unpack(">I", head)
        sealed = self._src.read(size)
        if len(sealed) < size or size > CHUNK + 16:
            raise BackupError(f"{self._name} is cut short or damaged: copy it again")
        for last in (False, True):
            try:
                self._buf += self._aead.decrypt(_nonce(self._n, last), sealed, self._aad)
            except InvalidTag:
                continue
            self._n += 1
            self._done = last
            return
        raise BackupError(f"{self._name} was changed or damaged after it was written: refused")

    def drain(self) -> None:
        """Read to the last chunk: tar stops at its end-of-archive blocks, the file does not."""
        while not self._done:
            self._next()
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        while not self._done and (n < 0 or len(self._buf) < n):
            self._next()
        if n < 0:
            n = len(self._buf)
        out, self._buf = self._buf[:n], self._buf[n:]
        return out


def _check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise BackupError(f"the backup passphrase needs at least {MIN_PASSPHRASE} characters")


def _read_header(f, name: str) -> tuple[dict, bytes]:
    if f.read(len(MAGIC)) != MAGIC:
        raise BackupError(f"{name} is not an SMS Genie backup")
    line = f.readline(4096)
    try:
        header = json.loads(line)
        if header["format"] != FORMAT:
            raise BackupError(f"{name} is a {header['format']!r} backup; this box reads {FORMAT!r}")
        bytes.fromhex(header["salt"])
    except (ValueError, KeyError, TypeError):
        raise BackupError(f"{name}'s header is damaged: not a backup this box can read") from None
    return header, MAGIC + line


def make(data_dir: str | os.PathLike, dest_dir: str | os.PathLike, passphrase: str, *, device_id: str,
         version: str, now: datetime | None = None) -> BackupInfo:
    """Write an encrypted backup of ``data_dir`` into ``dest_dir``; read it back to check it."""
    _check_passphrase(passphrase)
    data_dir, dest_dir = Path(data_dir), Path(dest_dir)
    if not (data_dir / DB_NAME).exists():
        raise BackupError(f"{data_dir} holds no SMS Genie database: nothing to back up")
    for name in (DB_NAME, *FILES):  # run as root in the service user's directory: only real files
        if (data_dir / name).is_symlink():
            raise BackupError(f"{data_dir / name} is a symbolic link, not the box's file: refused")
    if not dest_dir.is_dir():
        raise BackupError(f"{dest_dir} is not a directory: mount the USB stick first (see docs/hardware.md)")
    now = now or datetime.now(timezone.utc)
    out = dest_dir / f"smsgenie-backup-{device_id.replace('-', '')}-{now.strftime('%Y%m%d-%H%M%S')}.sgbk"
    with tempfile.TemporaryDirectory(prefix=".backup-", dir=data_dir) as tmp:
        files, manifest = _snapshot(data_dir, Path(tmp), device_id=device_id, version=version, now=now)
        _seal(out, files, manifest, passphrase)
    # Read back from the stick: its bytes decrypt and match the manifest (the record's chain was
    # verified on the snapshot a moment ago; walking it again would double the time for nothing).
    return inspect(out, passphrase, check_record=False)


def _snapshot(data_dir: Path, tmp: Path, *, device_id: str, version: str,
              now: datetime) -> tuple[dict[str, Path], dict]:
    """A consistent copy of the database (even while the daemon writes) and the small files, in ``tmp``,
    with their manifest (written there too)."""
    snap = tmp / DB_NAME
    src = sqlite3.connect(data_dir / DB_NAME)
    dst = sqlite3.connect(snap)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    db = Database(snap)
    try:
        verdict = AuditLog(db, SystemClock()).verify()
        messages = db.conn.execute("SELECT COUNT(*) FROM message").fetchone()[0]
    finally:
        db.close()
    files = {DB_NAME: snap}
    for extra in FILES:
        if (data_dir / extra).exists():
            shutil.copy2(data_dir / extra, tmp / extra)
            files[extra] = tmp / extra
    manifest = {"format": FORMAT, "device_id": device_id, "version": version,
                "created": now.isoformat(timespec="seconds"), "messages": messages,
                "audit_head": verdict.head, "audit_ok": verdict.ok,
                "files": {n: sha256_file(p) for n, p in files.items()}}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return files, manifest


def _seal(out: Path, files: dict[str, Path], manifest: dict, passphrase: str) -> None:
    """Encrypt the manifest and files into ``out`` (written as .part, fsynced, then renamed)."""
    salt = os.urandom(16)
    key = _key(passphrase, salt)
    header = {"format": FORMAT, "device_id": manifest["device_id"], "created": manifest["created"],
              "salt": salt.hex(), "check": _key_check(key)}
    aad = MAGIC + (json.dumps(header) + "\n").encode()
    part = out.with_name(out.name + ".part")
    manifest_file = files[DB_NAME].parent / "manifest.json"
    try:
        with open(part, "wb") as f:
            f.write(aad)
            sealer = _Sealer(f, key, aad)
            with tarfile.open(fileobj=sealer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                tar.add(manifest_file, arcname="manifest.json")
                for n, p in files.items():
                    tar.add(p, arcname=n)
            sealer.close()
            f.flush()
            os.fsync(f.fileno())
        os.replace(part, out)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise BackupError(f"cannot write the backup to {out.parent}: {exc.strerror or exc} "
                          f"(stick full, or pulled out?)") from None


def inspect(path: str | os.PathLike, passphrase: str, *, check_record: bool = True) -> BackupInfo:
    """Decrypt and check a whole backup without restoring it."""
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="smsgenie-restore-") as tmp:
        manifest = _unpack(path, passphrase, Path(tmp), check_record=check_record)
    return _info(path, manifest)


def _info(path: Path, manifest: dict) -> BackupInfo:
    return BackupInfo(path=path, device_id=manifest["device_id"], created=manifest["created"],
                      version=manifest["version"], messages=manifest["messages"], audit_head=manifest["audit_head"])


def _unpack(path: Path, passphrase: str, into: Path, *, check_record: bool = True) -> dict:
    """Decrypt ``path`` into ``into`` and check every file against the manifest (and, with
    ``check_record``, the database's integrity and the record's hash chain)."""
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror or exc}") from None
    with f:
        header, aad = _read_header(f, path.name)
        key = _key(passphrase, bytes.fromhex(header["salt"]))
        if _key_check(key) != header.get("check"):
            raise WrongPassphrase(f"the passphrase does not open {path.name}")
        reader = _Opener(f, key, aad, path.name)
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tar:
                for m in tar:
                    if not m.isfile() or "/" in m.name or m.name.startswith("."):
                        raise BackupError(f"{path.name} holds {m.name!r}, which no backup has: refused")
                    with open(into / m.name, "xb") as out:
                        shutil.copyfileobj(tar.extractfile(m), out)
        except tarfile.TarError:
            raise BackupError(f"{path.name} is damaged inside: refused") from None
        reader.drain()
        if f.read(1):
            raise BackupError(f"{path.name} has data after its end: refused")
    try:
        manifest = json.loads((into / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise BackupError(f"{path.name} has no readable manifest") from None
    for name, digest in manifest["files"].items():
        if name not in (DB_NAME, *FILES) or not (into / name).exists() or sha256_file(into / name) != digest:
            raise BackupError(f"{path.name}: {name} does not match the backup's manifest: refused")
    if not check_record:
        return manifest
    db = Database(into / DB_NAME)
    try:
        if db.conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise BackupError(f"{path.name}: the database inside fails SQLite's integrity check")
        verdict = AuditLog(db, SystemClock()).verify()
    finally:
        db.close()
    if not verdict.ok:
        raise BackupError(f"{path.name}: the message record inside does not verify ({verdict.problem})")
    return manifest


def _has_data(data_dir: Path) -> bool:
    if not (data_dir / DB_NAME).exists():
        return False
    db = Database(data_dir / DB_NAME)
    try:
        return any(db.conn.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() for t in ("message", "ledger", "users"))
    finally:
        db.close()


def restore(path: str | os.PathLike, data_dir: str | os.PathLike, passphrase: str, *, force: bool = False,
            now: datetime | None = None) -> tuple[BackupInfo, Path | None]:
    """Put a backup in place of the data dir's database and settings. The daemon must be stopped.

    Returns (what was restored, where the data dir's previous files went, if any)."""
    path, data_dir = Path(path), Path(data_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = now or datetime.now(timezone.utc)
    with DataDirLock(data_dir):  # refuses while the daemon runs
        for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", *FILES):  # root, in the service user's dir
            if (data_dir / name).is_symlink():
                raise BackupError(f"{data_dir / name} is a symbolic link, not the box's file: refused")
        if _has_data(data_dir) and not force:
            raise BackupError(f"{data_dir} already holds messages or credit: restoring would replace them. "
                              f"Add --force to restore anyway (the current files are kept aside)")
        staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=data_dir))  # same file system: renames
        try:
            manifest = _unpack(path, passphrase, staging)
            owner = data_dir.stat()
            aside = None
            # a backup made before boxes had their own key leaves this box's key where it is
            present = [n for n in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", *FILES) if (data_dir / n).exists()
                       and (n != KEY_FILE or n in manifest["files"])]
            if present:
                aside = data_dir / f"before-restore-{now.strftime('%Y%m%d-%H%M%S')}"
                aside.mkdir(mode=0o700)
                for n in present:
                    os.replace(data_dir / n, aside / n)
            for n in manifest["files"]:
                if os.geteuid() == 0:
                    os.chown(staging / n, owner.st_uid, owner.st_gid)
                os.chmod(staging / n, 0o600)
                os.replace(staging / n, data_dir / n)
            fsync_dir(data_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return _info(path, manifest), aside
