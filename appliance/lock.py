"""One daemon per data directory, enforced with an flock.

The lock also answers "is the daemon running?" for ``smsgenie status``
without trusting a pid file: the kernel drops the lock when the process
dies, however it dies.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from appliance.errors import DaemonAlreadyRunning, DataDirError

LOCK_NAME = "daemon.lock"


class DataDirLock:
    def __init__(self, data_dir: str | os.PathLike):
        self.path = Path(data_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "DataDirLock":
        try:  # never through a link: root (restore, update) takes this lock in the service user's directory
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise DataDirError(f"cannot take the lock {self.path}: {exc.strerror}"
                               + (" (a symbolic link: remove it)" if exc.errno == errno.ELOOP else "")) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DaemonAlreadyRunning(
                f"another smsgenie daemon (pid {pid}) is already running on {self.path.parent}; "
                f"stop it first (systemctl stop smsgenie)") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "DataDirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    @staticmethod
    def held(data_dir: str | os.PathLike) -> bool:
        """Is a daemon running on ``data_dir`` right now?"""
        path = Path(data_dir) / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False
