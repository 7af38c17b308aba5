"""Carriers as the network sees them: a number that moved to another carrier (携号转网) keeps its prefix.

The queue routes a message to a SIM of the number's carrier when the pool has
one (same-network texts are cheaper and surer), and the carrier comes from
the number's prefix (appliance/phones.py). A number ported away is then sent
through the wrong carrier's SIM, whose network answers "unknown subscriber".
What the box does about it:

- **the shop says so**: ``smsgenie carrier set NUMBER CARRIER`` (and ``list``,
  ``clear``) - a number's carrier by hand, used by every list after;
- **the network shows it**: when a message to a number fails with a
  subscriber error (+CMS 1, 28, 30) on a SIM of the carrier its prefix
  names, and the pool has SIMs of other carriers, the message is not failed
  but sent again through one of those (:func:`doubt`); if it is delivered
  there, that carrier is learned for the number (:func:`delivered`).

Learned and manual carriers both override the prefix in the preview (so the
list is routed and counted by them); a manual one is never replaced by a
learned one.
"""

from __future__ import annotations

import sqlite3

from appliance.clock import Clock
from appliance.config import normalise_carrier
from appliance.db import Database
from appliance.errors import SettingsError
from appliance.text import say

#: +CMS codes that say the network does not know the number: on its prefix's own carrier, a sign it moved.
SUBSCRIBER_ERRORS = {1, 28, 30}
KNOWN = ("China Mobile", "China Unicom", "China Telecom", "China Broadnet")


class NumberCarriers:
    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock

    def all(self) -> dict[str, str]:
        """number -> carrier, for every number whose carrier is not its prefix's."""
        return {r[0]: r[1] for r in self.db.execute("SELECT number, carrier FROM number_carrier")}

    def rows(self) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT * FROM number_carrier ORDER BY number")]

    def set(self, number: str, carrier: str, note: str = "") -> str:
        """The shop's word for ``number``'s carrier (E.164); returns the carrier as the box names it."""
        name = normalise_carrier(carrier)
        if name not in KNOWN:
            raise SettingsError(say("{carrier!r} is not a carrier the box knows: one of {known}", carrier=carrier,
                                    known=", ".join(KNOWN)))
        with self.db.atomic() as conn:
            conn.execute("INSERT INTO number_carrier (number, carrier, source, at, note) VALUES (?, ?, 'manual', ?, ?)"
                         " ON CONFLICT (number) DO UPDATE SET carrier = excluded.carrier, source = 'manual',"
                         " at = excluded.at, note = excluded.note", (number, name, self.clock.time(), note or None))
            conn.execute("DELETE FROM carrier_doubt WHERE number = ?", (number,))
        return name

    def clear(self, number: str) -> bool:
        """Back to the prefix's carrier; False if the number had none of its own."""
        with self.db.atomic() as conn:
            return conn.execute("DELETE FROM number_carrier WHERE number = ?", (number,)).rowcount == 1


def reroute(queue, message_id: int, number: str, failed_on: str, to: str, reason: str) -> bool:
    """``number`` was unknown to ``failed_on``'s network: send the message again through a SIM of ``to``
    (given back to the queue, refunded) and remember the doubt. False, changing nothing, if the number was
    unknown to ``failed_on`` before (it was tried elsewhere already: the message fails as it would)."""
    with queue.db.atomic() as conn:
        if conn.execute("SELECT 1 FROM carrier_doubt WHERE number = ? AND failed_on = ?",
                        (number, failed_on)).fetchone():
            return False
        conn.execute("INSERT INTO carrier_doubt (number, failed_on, at) VALUES (?, ?, ?)",
                     (number, failed_on, queue.clock.time()))
        conn.execute("UPDATE message SET carrier = ? WHERE id = ?", (to, message_id))
        queue.give_back(message_id, say("{reason}; sent again through a {carrier} SIM: the number may have moved "
                                        "to another carrier", reason=reason, carrier=to))
    return True


def delivered(conn: sqlite3.Connection, number: str, via: str, now: float) -> bool:
    """A message to ``number`` was delivered through a SIM of carrier ``via``: if another carrier's network
    did not know the number, ``via`` is its carrier now (unless the shop set one). Returns whether learned."""
    if not via or not conn.execute("SELECT 1 FROM carrier_doubt WHERE number = ? AND failed_on != ?",
                                   (number, via)).fetchone():
        return False
    conn.execute("DELETE FROM carrier_doubt WHERE number = ?", (number,))
    return conn.execute(
        "INSERT INTO number_carrier (number, carrier, source, at, note) VALUES (?, ?, 'learned', ?, ?)"
        " ON CONFLICT (number) DO UPDATE SET carrier = excluded.carrier, at = excluded.at, note = excluded.note"
        " WHERE number_carrier.source = 'learned'",
        (number, via, now, "delivered through this carrier after the prefix's carrier did not know the number"),
    ).rowcount == 1
