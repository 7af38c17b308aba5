"""The credit ledger: prepaid, per SMS part, never below zero.

1 credit = 1 SMS part (segment). The balance is the running total of the
ledger's entries: top-ups (from vendor codes), debits (a message claimed
for sending pays for the parts it will hand to the modem), refunds (parts
that did not go: a permanent refusal, a retry, a message put back) and
adjustments (the vendor's corrections).

Every entry is written inside the caller's transaction, with the message
state it pays for, so a debit never exists without its claim or the other
way round. The ``balance >= 0`` CHECK makes "never negative" a property
of the database, not only of this code.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from appliance.clock import Clock
from appliance.db import Database
from appliance.errors import InsufficientCredit
from appliance.text import say, stored, unstored

KINDS = ("topup", "debit", "refund", "adjustment")
#: Each kind of entry as a person reads it (the page and the command line translate it).
KIND_WORDS = {"topup": say("top-up"), "debit": say("charged"), "refund": say("refunded"),
              "adjustment": say("correction")}


def kind_words(kind: str):
    return KIND_WORDS.get(kind, kind)


@dataclass(frozen=True)
class Entry:
    id: int
    at: float
    kind: str
    credits: int
    balance: int
    message_id: int | None
    code_serial: str | None
    note: str | None
    """Why (a Text when the box wrote it, so a person reads it in their language)."""
    message_state: str | None = None
    """The paid-for message's state now (an ``uncertain`` one stays charged)."""


class Ledger:
    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock

    def balance(self, conn: sqlite3.Connection | None = None) -> int:
        row = (conn or self.db.conn).execute("SELECT balance FROM ledger ORDER BY id DESC LIMIT 1").fetchone()
        return row[0] if row else 0

    def record(self, conn: sqlite3.Connection, kind: str, credits: int, *, message_id: int | None = None,
               code_serial: str | None = None, note: str | None = None) -> int:
        """Add an entry inside the caller's transaction; returns the new balance.

        Raises InsufficientCredit rather than let the balance go below zero.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown ledger entry kind {kind!r}")
        balance = self.balance(conn) + credits
        if balance < 0:
            raise InsufficientCredit(f"{-credits} credits needed, the balance is {balance - credits}")
        conn.execute("INSERT INTO ledger (at, kind, credits, balance, message_id, code_serial, note)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (self.clock.time(), kind, credits, balance, message_id, code_serial, stored(note)))
        return balance

    def adjust(self, credits: int, note: str) -> int:
        """A correction by the vendor's technician; the note says why."""
        if not note.strip():
            raise ValueError("an adjustment needs a note saying why")
        with self.db.atomic() as conn:
            return self.record(conn, "adjustment", credits, note=note)

    def history(self, limit: int = 100) -> list[Entry]:
        """The newest ``limit`` entries, oldest first, each with the balance after it."""
        rows = self.db.execute(
            "SELECT l.*, m.state AS message_state FROM (SELECT * FROM ledger ORDER BY id DESC LIMIT ?) l"
            " LEFT JOIN message m ON m.id = l.message_id ORDER BY l.id", (limit,)).fetchall()
        return [Entry(**{k: unstored(r[k]) if k == "note" else r[k] for k in r.keys()}) for r in rows]

    def charged(self, message_id: int) -> int:
        """Credits a message has cost so far (debits less refunds)."""
        row = self.db.execute("SELECT COALESCE(-SUM(credits), 0) FROM ledger WHERE message_id = ?",
                              (message_id,)).fetchone()
        return row[0]
