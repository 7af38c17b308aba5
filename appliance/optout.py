"""Opt-outs: customers who replied 退订 / TD / STOP are not texted again.

An inbound SMS whose whole text is an unsubscribe word (case, width and
spacing do not matter; "TD 退订" counts too) puts its sender on the list.
Staff can add or remove a number by hand; every change is logged with who
(sms or manual) and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from appliance.clock import Clock
from appliance.db import Database
from appliance.forbidden import normalise

#: Words that mean "no more texts", in their normalised form.
WORDS = ("退订", "unsubscribe", "stop", "td", "t")
_OPT_OUT = re.compile("(?:" + "|".join(WORDS) + ")+")


def is_opt_out(text: str | None) -> bool:
    """Is this reply a request to stop? ('TD', '退订', 'Stop', ' t d ', 'ＴＤ退订' ...)"""
    return bool(text) and _OPT_OUT.fullmatch(normalise(text)) is not None


@dataclass(frozen=True)
class OptOut:
    number: str
    added_at: float
    source: str
    reason: str


class OptOuts:
    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock

    def add(self, number: str, source: str, reason: str) -> bool:
        """Add ``number``; False if it was on the list already."""
        now = self.clock.time()
        with self.db.atomic() as conn:
            added = conn.execute("INSERT OR IGNORE INTO opt_out (number, added_at, source, reason) VALUES (?, ?, ?, ?)",
                                 (number, now, source, reason)).rowcount == 1
            if added:
                conn.execute("INSERT INTO opt_out_log (at, number, action, source, reason) VALUES (?, ?, 'add', ?, ?)",
                             (now, number, source, reason))
            return added

    def remove(self, number: str, reason: str) -> bool:
        if not reason.strip():
            raise ValueError("say why the number may be texted again (e.g. 'customer signed up again on 5 Dec')")
        with self.db.atomic() as conn:
            removed = conn.execute("DELETE FROM opt_out WHERE number = ?", (number,)).rowcount == 1
            if removed:
                conn.execute("INSERT INTO opt_out_log (at, number, action, source, reason)"
                             " VALUES (?, ?, 'remove', 'manual', ?)", (self.clock.time(), number, reason))
            return removed

    def contains(self, number: str) -> bool:
        return self.db.execute("SELECT 1 FROM opt_out WHERE number = ?", (number,)).fetchone() is not None

    def numbers(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT number FROM opt_out")}

    def all(self) -> list[OptOut]:
        return [OptOut(**dict(r)) for r in self.db.execute("SELECT * FROM opt_out ORDER BY added_at")]

    def log(self, number: str | None = None) -> list[dict]:
        sql = "SELECT * FROM opt_out_log" + (" WHERE number = ?" if number else "") + " ORDER BY id"
        return [dict(r) for r in self.db.execute(sql, (number,) if number else ())]
