"""Small file helpers the data dir's writers share: a file's hash, durable renames and atomic writes."""

from __future__ import annotations

import errno
import hashlib
import os
from typing import BinaryIO, Callable

from appliance.errors import StorageFull
from appliance.text import say


def sha256_file(path: str | os.PathLike) -> str:
    """The file's SHA-256, hex, read in 1 MiB pieces (bundles and backups are large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def fsync_dir(path: str | os.PathLike) -> None:
    """fsync a directory, so that a rename into it survives a power cut (the file's own fsync does not)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` all at once: a power cut leaves the old file or the new, never half.

    Written to ``<path>.tmp`` with ``mode``, fsynced, renamed over ``path``, and the rename fsynced."""
    path = os.fspath(path)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(fd, mode)  # a .tmp left by a power cut keeps its old mode otherwise
        f.write(data)
        f.flush()
        os.fsync(fd)
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(path) or ".")


def not_permitted(path: str | os.PathLike) -> str:
    """What to do when this user may not read or write ``path``: the box's files are the service user's."""
    try:
        import pwd  # noqa: PLC0415 - POSIX only, and only on this path

        user = pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        user = f"uid {os.geteuid()}"
    return (f"this user ({user}) may not read or write {path}: run the command as the box's service user "
            f"(sudo -u smsgenie smsgenie ...), or give the files back to it (sudo chown -R smsgenie: ...)")


def storage_full(directory: str | os.PathLike) -> StorageFull:
    """The data partition is full: what the shop and the technician read (the page, the panel, the log)."""
    return StorageFull(say("the box's data storage is full ({directory}): nothing new is written until there is "
                           "room; nothing already stored is lost. Free space on the data partition, or move to "
                           "a larger card", directory=str(directory)))


def write_new(path: str | os.PathLike, write: Callable[[BinaryIO], object], mode: int = 0o600) -> None:
    """Make ``path`` (it must not exist) with ``mode`` and let ``write`` fill it (an upload's save).

    A full data partition raises :class:`StorageFull` (the page's "storage is full", never a 500) and
    takes the half-written file away with it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
    except OSError as exc:
        os.unlink(path)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise storage_full(os.path.dirname(os.fspath(path)) or ".") from exc
        raise
