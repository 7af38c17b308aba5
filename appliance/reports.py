"""Delivery reports: the network's word on each part, settling a sent message as delivered, failed
or expired.

A report names the modem's reference for the part (TP-MR, which wraps at
256) and the recipient's number; it finds its part among the parts sent in
the last week, newest first. A report that matches nothing is kept in
``unmatched_report`` for the technician, never dropped. A message is
settled when a part fails or expires, or when every part is delivered, and
the outcome goes into the message record.
"""

from __future__ import annotations

from appliance.clock import Clock
from appliance.db import Database
from appliance.messages import Message
from appliance.sendqueue import SendQueue

#: How far back a delivery report may reach for its message.
REPORT_WINDOW_SECONDS = 7 * 24 * 3600


def same_number(a: str, b: str) -> bool:
    """Do two renderings of a number name the same phone? (+8613..., 8613..., 13...)"""
    da = "".join(c for c in a if c.isdigit())
    db = "".join(c for c in b if c.isdigit())
    if not da or not db:
        return False
    short, long_ = sorted((da, db), key=len)
    return len(short) >= 7 and long_.endswith(short)


class DeliveryReports:
    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock
        self._queue = SendQueue(db, clock)

    def apply(self, reference: int, recipient: str, outcome: str, status_code: int, reason: str) -> Message | None:
        """Record a status report on its part; settle the message when its parts allow.

        Returns the message, or None when no sent part matches (kept in
        ``unmatched_report`` for the technician).
        """
        now = self.clock.time()
        with self.db.atomic() as conn:
            rows = conn.execute(
                "SELECT s.message_id, s.seq, m.recipient FROM segment s JOIN message m ON m.id = s.message_id"
                " WHERE s.reference = ? AND (s.status IS NULL OR s.status = 'pending') AND s.submitted_at >= ?"
                " ORDER BY s.submitted_at DESC, s.message_id DESC",
                (reference, now - REPORT_WINDOW_SECONDS)).fetchall()
            match = next((r for r in rows if same_number(r["recipient"], recipient)), None)
            if match is None:
                conn.execute("INSERT INTO unmatched_report (received_at, reference, recipient, status_code)"
                             " VALUES (?, ?, ?, ?)", (now, reference, recipient, status_code))
                return None
            mid = match["message_id"]
            conn.execute("UPDATE segment SET status = ?, status_code = ?, reported_at = ?"
                         " WHERE message_id = ? AND seq = ?", (outcome, status_code, now, mid, match["seq"]))
            msg = self._queue.get(mid)
            if msg.state in ("sent", "uncertain"):
                statuses = [r[0] for r in conn.execute("SELECT status FROM segment WHERE message_id = ?", (mid,))]
                settled = None
                if "failed" in statuses:
                    settled = "failed"
                elif "expired" in statuses:
                    settled = "expired"
                elif len(statuses) == msg.segments and all(s == "delivered" for s in statuses):
                    settled = "delivered"
                if settled:
                    error = None if settled == "delivered" else reason
                    conn.execute("UPDATE message SET state = ?, error = ?, finished_at = ? WHERE id = ?",
                                 (settled, error, now, mid))
                    row = conn.execute("SELECT * FROM message WHERE id = ?", (mid,)).fetchone()
                    self._queue.audit.record(conn, settled, row, reason if settled != "delivered" else "delivered")
            return self._queue.get(mid)
