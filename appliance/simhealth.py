"""A SIM its carrier barred or suspended: noticed, and held, before it burns a list and the shop's credit.

A carrier that takes a SIM for a spammer's (an ordinary SIM sending a few
hundred texts an hour often is) does one of two things:

- it refuses every message: a run of +CMS errors for one recipient after
  another (each would fail a customer's message for good); or
- it accepts every message (+CMGS answers with a reference, the credit is
  spent) and delivers none: no delivery report comes back, for anyone.

:class:`BarringWatch` counts the first in the sender (in memory: a run is
recent by nature); :func:`silent_run` reads the second from the queue (the
messages this modem sent, the reports that came). Either holds the SIM
(:class:`SimHolds`, kept in the database: a restart does not forget it) with
the reason; the daemon then sends nothing through it, the counter panel
raises an alert and the page shows the reason, until a person who checked
with the carrier resumes it (the page, or ``smsgenie sim resume LABEL``).
Other SIMs of a pool go on.
"""

from __future__ import annotations

import json
import sqlite3

from appliance import kv
from appliance.clock import Clock
from appliance.db import Database
from appliance.text import from_json, say, to_json

#: Refusals in a row, each for another recipient, that show the SIM (not the numbers) is refused.
REFUSAL_RUN = 5
#: Messages in a row, sent long enough ago, with no delivery report at all, that show a silent drop...
SILENT_RUN = 20
#: ...once this many seconds passed since the last of them was sent (reports take minutes, not hours).
REPORT_WAIT = 3600.0
#: A SIM whose carrier never sent it a report in this many seconds is not judged by reports at all.
REPORTS_SEEN_WITHIN = 30 * 86400.0


class SimHolds:
    """The SIMs held, by modem label, each with why and since when."""

    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock

    def hold(self, label: str, why) -> None:
        with self.db.atomic() as conn:
            kv.put(conn, f"sim_hold:{label}", json.dumps({"why": to_json(why), "at": self.clock.time()}))

    def current(self, label: str, conn: sqlite3.Connection | None = None) -> dict | None:
        """{"why": Text, "at": epoch} while ``label``'s SIM is held, else None."""
        stored = kv.get(conn or self.db.conn, f"sim_hold:{label}")
        if stored is None:
            return None
        data = json.loads(stored)
        return {"why": from_json(data["why"]), "at": data["at"]}

    def release(self, label: str) -> bool:
        """Let the SIM send again; False if it was not held."""
        with self.db.atomic() as conn:
            return bool(kv.delete(conn, f"sim_hold:{label}"))


class BarringWatch:
    """Counts one modem's +CMS refusals in a row, for different recipients; a message that goes resets it."""

    def __init__(self, run: int = REFUSAL_RUN):
        self.run = run
        self._recipients: list[str] = []
        self._reasons: list[str] = []

    def went(self) -> None:
        self._recipients, self._reasons = [], []

    def refused(self, recipient: str, reason: str):
        """Note a refusal; returns why the SIM should be held once the run is long enough, else None."""
        if recipient not in self._recipients:
            self._recipients.append(recipient)
            self._reasons.append(reason)
        if len(self._recipients) < self.run:
            return None
        last = self._reasons[-1]
        self.went()
        return say("the network refused {n} messages in a row, each to another customer (last: {reason}): the "
                   "carrier may have barred or suspended this SIM. Check with the carrier, then resume it",
                   n=self.run, reason=last)


def silent_run(conn: sqlite3.Connection, label: str, now: float, run: int = SILENT_RUN):
    """Why ``label``'s SIM should be held because its last ``run`` messages, all sent over
    :data:`REPORT_WAIT` ago, had no delivery report while its carrier did send reports before; else None."""
    rows = conn.execute(
        "SELECT m.id, m.sent_at, (SELECT COUNT(*) FROM segment s WHERE s.message_id = m.id AND s.status IS NOT NULL)"
        " AS reported FROM message m WHERE m.modem = ? AND m.sent_at IS NOT NULL ORDER BY m.sent_at DESC LIMIT ?",
        (label, run)).fetchall()
    if len(rows) < run or any(r["reported"] for r in rows) or rows[0]["sent_at"] > now - REPORT_WAIT:
        return None
    oldest = rows[-1]["sent_at"]
    reported_before = conn.execute(
        "SELECT 1 FROM segment s JOIN message m ON m.id = s.message_id WHERE m.modem = ? AND s.status IS NOT NULL"
        " AND s.reported_at > ? AND m.sent_at < ? LIMIT 1", (label, now - REPORTS_SEEN_WITHIN, oldest)).fetchone()
    if reported_before is None:
        return None  # a SIM (or a carrier) that gives no reports at all: nothing to judge by
    return say("none of the last {n} messages sent through this SIM got a delivery report, though its carrier "
               "sent reports before: the carrier may be dropping its messages (a barred or suspended SIM), and "
               "each one costs credit. Check with the carrier, then resume it", n=run)
