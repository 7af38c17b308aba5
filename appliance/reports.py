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
from appliance.network import network_words
from appliance.privacy import mask_number
from appliance.sendqueue import SendQueue
from appliance.text import stored

#: How far back a delivery report may reach for its message.
REPORT_WINDOW_SECONDS = 7 * 24 * 3600
#: How much earlier than the send began the network's clock may put a message it took (clocks differ).
CLOCK_SLACK = 300.0


def same_number(a: str, b: str) -> bool:
    """Do two renderings of a number name the same phone? (+8613..., 8613..., 13...)"""
    da = "".join(c for c in a if c.isdigit())
    db = "".join(c for c in b if c.isdigit())
    if not da or not db:
        return False
    short, long_ = sorted((da, db), key=len)
    return len(short) >= 7 and long_.endswith(short)


def _erased(kept: str, reported: str) -> bool:
    """Is ``kept`` the masked number of ``reported``? A customer erased while a message to them was with the
    network (appliance/erasure.py) has only their masked number left on it; its report still settles it,
    and their number is not kept among the unmatched reports."""
    return "*" in kept and mask_number(reported) == kept


class DeliveryReports:
    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock
        self._queue = SendQueue(db, clock)

    def apply(self, reference: int, recipient: str, outcome: str, status_code: int, reason: str, *,
              submitted_at: float | None = None) -> Message | None:
        """Record a status report on its part; settle the message when its parts allow.

        ``submitted_at``: when the network says it took the message (the report's TP-SCTS). Returns the
        message, or None when no part matches (kept in ``unmatched_report`` for the technician) - unless
        the report can only be an uncertain message's own (:meth:`_resolve_uncertain`).
        """
        now = self.clock.time()
        with self.db.atomic() as conn:
            rows = conn.execute(
                "SELECT s.message_id, s.seq, m.recipient FROM segment s JOIN message m ON m.id = s.message_id"
                " WHERE s.reference = ? AND (s.status IS NULL OR s.status = 'pending') AND s.submitted_at >= ?"
                " ORDER BY s.submitted_at DESC, s.message_id DESC",
                (reference, now - REPORT_WINDOW_SECONDS)).fetchall()
            match = next((r for r in rows if same_number(r["recipient"], recipient)), None) or \
                next((r for r in rows if _erased(r["recipient"], recipient)), None)
            if match is None:
                resolved = self._resolve_uncertain(conn, reference, recipient, outcome, status_code, reason,
                                                   submitted_at, now)
                if resolved is not None:
                    return resolved
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
                    error = None if settled == "delivered" else network_words(reason)
                    conn.execute("UPDATE message SET state = ?, error = ?, finished_at = ? WHERE id = ?",
                                 (settled, stored(error), now, mid))
                    row = conn.execute("SELECT * FROM message WHERE id = ?", (mid,)).fetchone()
                    self._queue.audit.record(conn, settled, row, reason if settled != "delivered" else "delivered")
            return self._queue.get(mid)

    def _resolve_uncertain(self, conn, reference: int, recipient: str, outcome: str, status_code: int, reason: str,
                           submitted_at: float | None, now: float) -> Message | None:
        """A report no sent part claims, for a number with exactly one message that could be its own.

        A message left uncertain (the box stopped after the modem took it, before its reference was
        written) is that message when: it is one part, no other message to the number is with the modem
        or awaiting a report, and the network took the reported message after this one's send began. Then
        the report is its own: its part is recorded and it is settled, and the record says how."""
        if submitted_at is None:
            return None
        since = now - REPORT_WINDOW_SECONDS
        mine = [r for r in conn.execute(
            "SELECT id, recipient, segments, sending_at FROM message WHERE state = 'uncertain' AND sending_at >= ?",
            (since,)) if same_number(r["recipient"], recipient)]
        if len(mine) != 1 or mine[0]["segments"] != 1:
            return None
        candidate = mine[0]
        if submitted_at < candidate["sending_at"] - CLOCK_SLACK or conn.execute(
                "SELECT 1 FROM segment WHERE message_id = ?", (candidate["id"],)).fetchone():
            return None
        awaiting = conn.execute(
            "SELECT m.recipient FROM message m WHERE m.id != ? AND m.sending_at >= ? AND (m.state = 'sending'"
            " OR (m.state = 'sent' AND EXISTS (SELECT 1 FROM segment s WHERE s.message_id = m.id"
            " AND (s.status IS NULL OR s.status = 'pending'))))", (candidate["id"], since)).fetchall()
        if any(same_number(r["recipient"], recipient) for r in awaiting):
            return None
        mid = candidate["id"]
        how = (f"resolved from uncertain: the network's report (reference {reference}) can only be this "
               f"message's, the only one to this number it could be")
        conn.execute("INSERT INTO segment (message_id, seq, reference, submitted_at, status, status_code, reported_at)"
                     " VALUES (?, 1, ?, ?, ?, ?, ?)", (mid, reference, submitted_at, outcome, status_code, now))
        settled = outcome if outcome in ("delivered", "failed", "expired") else "sent"
        conn.execute("UPDATE message SET state = ?, error = ?, sent_at = COALESCE(sent_at, ?), finished_at = ?"
                     " WHERE id = ?", (settled, None if settled in ("delivered", "sent") else reason, submitted_at,
                                       now if settled != "sent" else None, mid))
        row = conn.execute("SELECT * FROM message WHERE id = ?", (mid,)).fetchone()
        self._queue.audit.record(conn, settled, row, f"{outcome}; {how}" if outcome != "delivered" else
                                 f"delivered; {how}")
        return self._queue.get(mid)

