"""Approval before marketing goes out: a staff member's list waits until an admin says yes.

The service agreement makes the shop answer for every message, so the
shop decides who may send what without a second pair of eyes. The shop's
setting ``approval`` (appliance/settings.py):

- ``none``: every list goes when it is queued;
- ``marketing`` (the default): a marketing list queued by staff, or by an
  API token without the ``send-unapproved`` scope, waits;
- ``all``: every such list waits, transactional ones too.

An admin's own lists, and those queued on the box itself (the command line,
the counter panel, the demo), go at once.

A waiting list is "awaiting" (appliance/sendlists.py): its messages are in
the queue, held, and nothing is charged (credit is taken when a modem
claims a message). An admin approves it on the page or on the counter
panel, and it goes like any list; or declines it, and every message fails,
uncharged, with who declined it in the record. Who approved a list is in
every row of the record its messages write (appliance/audit.py).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from appliance.clock import Clock
from appliance.db import Database
from appliance.errors import ListStateError, MessageNotFound
from appliance.messages import TRANSACTIONAL
from appliance.text import say

AWAITING = "awaiting"
DECLINED = "declined"
#: Those who queue on the box itself: whoever can run them already holds the box.
ON_THE_BOX = ("cli", "panel", "demo")


def needs(conn: sqlite3.Connection, setting: str, kind: str, by: str | None) -> bool:
    """Must a list of ``kind`` queued by ``by`` ("user:<id>", "api:<id>", "cli"...) wait for an admin?"""
    if setting == "none" or (setting == "marketing" and kind == TRANSACTIONAL):
        return False
    if not by or by in ON_THE_BOX:
        return False
    who, _, ident = by.partition(":")
    if who == "user" and ident.isdigit():
        row = conn.execute("SELECT role FROM users WHERE id = ?", (int(ident),)).fetchone()
        return row is None or row["role"] != "admin"
    if who == "api" and ident.isdigit():
        row = conn.execute("SELECT scopes FROM api_tokens WHERE id = ?", (int(ident),)).fetchone()
        return row is None or "send-unapproved" not in row["scopes"].split(",")
    return True


def declined_reason(who: str | None) -> str:
    """What the record says of a message whose list an admin declined."""
    return say("the list was declined by {who} at approval; not sent, not charged", who=who or "an admin")


@dataclass(frozen=True)
class Waiting:
    """A list awaiting approval, as the page and the panel show it."""

    id: int
    name: str
    kind: str
    created_by: str | None
    created_at: float
    messages: int
    parts: int
    """What it will cost, in credits (one a part)."""
    first_text: str


class Approvals:
    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock

    def waiting(self, known: dict[int, Waiting] | None = None) -> list[Waiting]:
        """Lists awaiting approval, oldest first, each with its size and cost (a pass over its messages, so
        a caller asking often passes the ones it ``known`` already: a waiting list does not change)."""
        out = []
        for row in self.db.execute("SELECT id, name, kind, created_by, created_at FROM send_list WHERE state = ?"
                                   " ORDER BY id", (AWAITING,)).fetchall():
            if known and row["id"] in known:
                out.append(known[row["id"]])
                continue
            count, parts = self.db.execute("SELECT COUNT(*), COALESCE(SUM(segments), 0) FROM message"
                                           " WHERE send_list_id = ?", (row["id"],)).fetchone()
            first = self.db.execute("SELECT text FROM message WHERE send_list_id = ? ORDER BY id LIMIT 1",
                                    (row["id"],)).fetchone()
            out.append(Waiting(row["id"], row["name"], row["kind"], row["created_by"], row["created_at"], count,
                               parts, first[0] if first else ""))
        return out

    def approve(self, list_id: int, who: str) -> None:
        """Let the list go (its messages are freed by SendLists.settle, as a resumed list's are)."""
        self._decide(list_id, who, "active")

    def decline(self, list_id: int, who: str) -> None:
        """Fail every message of the list, uncharged, each in the record with who declined it."""
        self._decide(list_id, who, DECLINED)

    def _decide(self, list_id: int, who: str, state: str) -> None:
        with self.db.atomic() as conn:
            row = conn.execute("SELECT state FROM send_list WHERE id = ?", (list_id,)).fetchone()
            if row is None:
                raise MessageNotFound(f"no send list {list_id}")
            if row["state"] != AWAITING:
                raise ListStateError(say("the list is {state}, not awaiting approval: someone decided already",
                                         state=row["state"]))
            conn.execute("UPDATE send_list SET state = ?, approved_by = ?, approved_at = ? WHERE id = ?",
                         (state, who, self.clock.time(), list_id))
        from appliance.sendlists import SendLists  # noqa: PLC0415 - sendlists builds on the queue, as this does

        SendLists(self.db, self.clock).settle_soon()
