"""The box's SQLite database: everything that must survive a power cut.

WAL mode with ``synchronous=FULL``: every commit is fsynced before it
returns. The daemon's claim of a message ("sending") is on the card before
the message goes to the modem, so after any power cut the database says at
least as much as the modem did; the daemon claims while the modem is busy
with the previous message, so the fsync costs no sending time (see
docs/sending.md).

One ``Database`` per thread; the daemon and the CLI each open their own.

Schema changes are named migrations (appliance/schema.py), applied in order
and recorded in the ``migrations`` table, so a box upgraded from any earlier
version ends up with the same schema.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Iterator

from appliance.errors import DatabaseDamaged, DataDirError, StorageFull
from appliance.files import not_permitted, storage_full
from appliance.schema import MIGRATIONS

DB_NAME = "smsgenie.db"
#: Seconds a connection waits for another's write to end before "database is locked".
BUSY_TIMEOUT = 30.0

class Database:
    """A connection to the box's database, with transactions that nest."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            if self.path.exists() and not os.access(self.path, os.R_OK | os.W_OK):
                raise DataDirError(not_permitted(self.path))
            if not self.path.exists():
                # Created 0600: numbers and message texts are for the service user only.
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT,
                                        check_same_thread=False)
        except DataDirError:
            raise
        except PermissionError:
            raise DataDirError(not_permitted(self.path)) from None
        except (OSError, sqlite3.Error) as exc:
            raise DataDirError(f"cannot open the database {self.path}: {exc}") from exc
        self.conn.row_factory = sqlite3.Row
        self._depth = 0
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.migrate()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            if is_full(exc):
                raise self.full() from exc
            raise self.damaged(str(exc)) from exc

    def damaged(self, what: str) -> DatabaseDamaged:
        return DatabaseDamaged(
            f"{self.path} is damaged or not an SMS Genie database ({what}): restore the last backup - "
            f"sudo systemctl stop smsgenie; sudo smsgenie restore /media/usb/smsgenie-backup-....sgbk --force "
            f"(the damaged file is kept aside)")

    def full(self) -> StorageFull:
        return storage_full(self.path.parent)

    def quick_check(self) -> None:
        """Raise :class:`DatabaseDamaged` if SQLite finds the file damaged (a quick look, at start)."""
        try:
            answer = [r[0] for r in self.conn.execute("PRAGMA quick_check(5)")]
        except sqlite3.DatabaseError as exc:
            raise self.damaged(str(exc)) from exc
        if answer != ["ok"]:
            raise self.damaged("; ".join(answer))

    @classmethod
    def in_data_dir(cls, data_dir: str | os.PathLike) -> "Database":
        return cls(ensure_data_dir(data_dir) / DB_NAME)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def impatient(self, seconds: float) -> Iterator[None]:
        """Within the block, give up on the write lock after ``seconds`` (a "database is locked" error)
        instead of waiting up to :data:`BUSY_TIMEOUT`: for work that may as well be left to later."""
        self.conn.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
        try:
            yield
        finally:
            self.conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")

    @contextlib.contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """One transaction (BEGIN IMMEDIATE); nested calls become savepoints."""
        if self._depth == 0:
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            self.conn.execute(f"SAVEPOINT sp{self._depth}")
        self._depth += 1
        try:
            yield self.conn
        except BaseException as exc:
            self._depth -= 1
            if self._depth == 0:
                if self.conn.in_transaction:  # SQLite may have rolled back itself (a full disk)
                    self.conn.execute("ROLLBACK")
                if is_full(exc):
                    raise self.full() from exc
            elif self.conn.in_transaction:  # else SQLite already rolled the whole transaction back
                self.conn.execute(f"ROLLBACK TO sp{self._depth}")
                self.conn.execute(f"RELEASE sp{self._depth}")
            raise
        self._depth -= 1
        if self._depth == 0:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                if is_full(exc):
                    raise self.full() from exc
                raise
        else:
            self.conn.execute(f"RELEASE sp{self._depth}")

    def execute(self, sql: str, params=()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def migrate(self) -> list[str]:
        """Apply the migrations this database has not had yet; returns their names."""
        self.conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL)")
        done = {r[0] for r in self.conn.execute("SELECT name FROM migrations")}
        applied = []
        for name, fn in MIGRATIONS:
            if name in done:
                continue
            with self.atomic() as conn:
                fn(conn)
                conn.execute("INSERT INTO migrations VALUES (?, strftime('%s','now'))", (name,))
            applied.append(name)
        return applied


def is_full(exc: BaseException) -> bool:
    """SQLite's "database or disk is full" (the data partition, or the database's page limit)."""
    return isinstance(exc, sqlite3.OperationalError) and "full" in str(exc)


def is_busy(exc: BaseException) -> bool:
    """Is this SQLite's "database is locked/busy" - another connection held the write lock past the
    timeout - which means wait and try again, not that anything is wrong?"""
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


class NoBoxHere(DataDirError):
    """The data dir holds no box (no database): a mistyped --data-dir, or a box never started."""


def existing_box(data_dir: str | os.PathLike) -> Path:
    """The data dir, if it holds a box's database; never creates one (only ``run`` and ``init`` do)."""
    path = Path(data_dir)
    try:
        found = (path / DB_NAME).is_file()
    except PermissionError:
        raise DataDirError(not_permitted(path)) from None
    if not found:
        why = "does not exist" if not path.exists() else f"holds no SMS Genie database ({DB_NAME})"
        raise NoBoxHere(f"{path} {why}: check --data-dir (or data_dir in the config); a new box is made by "
                        f"starting it ('smsgenie run') or with 'smsgenie init'")
    return path


def ensure_data_dir(data_dir: str | os.PathLike) -> Path:
    """Create the data dir (mode 0700) if needed and return it."""
    path = Path(data_dir)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(f"cannot create the data directory {path}: {exc}. "
                           f"Create it, owned by the service user, or pass --data-dir") from exc
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise DataDirError(not_permitted(path) + "; or pass --data-dir")
    return path
