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
from appliance.consent import REFUSED, Consent
from appliance.db import Database
from appliance.forbidden import normalise
from appliance.text import unstored

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
    """The customers who refused texts, as the opt-out list they once were: since the customer book
    (migration 0017) they are its customers whose consent is "refused" (appliance/consent.py), and the
    list's log is their consent events."""

    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock
        self.consent = Consent(db, clock)

    def add(self, number: str, source: str, reason: str, *, by: str = "", inbound_id: int | None = None) -> bool:
        """Add ``number``; False if it was on the list already. ``source``: "sms" or "manual"."""
        return self.consent.refuse(number, "sms" if source == "sms" else "manual", reason, by=by or source,
                                   inbound_id=inbound_id)

    def remove(self, number: str, reason: str, *, by: str = "manual") -> bool:
        return self.consent.unrefuse(number, reason, by=by)

    def contains(self, number: str) -> bool:
        return self.consent.state(number) == REFUSED

    def numbers(self) -> set[str]:
        return self.consent.refused()

    def all(self) -> list[OptOut]:
        rows = self.db.execute("SELECT c.number, e.at, e.source, e.note FROM customer c JOIN consent_event e"
                               " ON e.id = c.consent_event WHERE c.consent = 'refused' ORDER BY e.at, e.id")
        return [OptOut(r[0], r[1], r[2], unstored(r[3])) for r in rows]

    def log(self, number: str | None = None) -> list[dict]:
        """The opt-out list's changes: refusals ("add") and refusals taken back ("remove"), oldest first."""
        sql = ("SELECT id, at, number, state, source, note FROM consent_event WHERE (state = 'refused' OR id IN"
               " (SELECT b.id FROM consent_event b WHERE b.state = 'unknown' AND b.source = 'manual'))"
               + (" AND number = ?" if number else "") + " ORDER BY id")
        return [{"id": r["id"], "at": r["at"], "number": r["number"],
                 "action": "add" if r["state"] == REFUSED else "remove", "source": r["source"],
                 "reason": unstored(r["note"])} for r in self.db.execute(sql, (number,) if number else ())]
