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
#: The kernel's table of file locks (Linux).
PROC_LOCKS = "/proc/locks"


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
    def held(data_dir: str | os.PathLike, *, proc_locks: str = PROC_LOCKS) -> bool:
        """Is a daemon running on ``data_dir`` right now?

        Asked often (``status``, the dashboard, the panel), so it must never get in the owner's way:
        it takes no lock of its own (a probing lock, however brief, can make a daemon that is just
        starting find the lock taken and refuse to start). It looks the lock up in the kernel's
        table of locks instead, by the lock file's inode; where that table cannot be read, it asks
        whether the process named in the file is alive.
        """
        path = Path(data_dir) / LOCK_NAME
        try:
            st = os.stat(path, follow_symlinks=False)
            pid = int(path.read_text(encoding="ascii").strip() or 0)
        except (OSError, ValueError):
            return False
        try:
            with open(proc_locks, encoding="ascii") as f:
                table = f.read()
        except OSError:
            return pid > 0 and _alive(pid)
        return any(_is_our_flock(line, st) for line in table.splitlines())


def _is_our_flock(line: str, st: os.stat_result) -> bool:
    """A /proc/locks line ('1: FLOCK  ADVISORY  WRITE 4242 b3:02:131 0 EOF') for this file's flock?"""
    fields = line.split()
    try:
        i = fields.index("FLOCK")
        dev_ino = fields[i + 4]
    except (ValueError, IndexError):
        return False
    if fields[i - 1] == "->":  # a waiter, not a holder
        return False
    # By inode alone: some file systems (overlays, FUSE) show another device number here than stat() does.
    try:
        return int(dev_ino.rsplit(":", 1)[1]) == st.st_ino
    except (IndexError, ValueError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's (root asking about the service's daemon is fine too)
        return True
    return True
