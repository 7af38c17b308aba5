"""Small named values kept in the database (``kv`` table): the box-wide pause, the boot id, the
set-up PIN's hash, the clock's high-water mark.

They live in SQLite, not in the settings document, because they change with
the queue's state and must commit with it (or survive a power cut exactly as
it does). Every function takes a connection, so a caller can use it inside
its own transaction (``with db.atomic() as conn``).
"""

from __future__ import annotations

import sqlite3


def get(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


def put(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                 (key, value))


def swap(conn: sqlite3.Connection, key: str, value: str) -> str | None:
    """Store ``value`` under ``key``; returns what was there before (call inside a transaction)."""
    before = get(conn, key)
    put(conn, key, value)
    return before


def delete(conn: sqlite3.Connection, *keys: str) -> int:
    """Remove the keys; returns how many were there."""
    return conn.execute(f"DELETE FROM kv WHERE key IN ({', '.join('?' * len(keys))})", keys).rowcount
