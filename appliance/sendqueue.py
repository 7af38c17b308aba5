"""The durable send queue: every message's life, one committed state at a time.

::

    queued -> sending -> sent -> delivered | failed | expired
                 |  \\-> queued (retry later) | failed (permanent)
                 \\-> uncertain (in flight when the box died, or the modem went
                                quiet after taking it; never resent by itself)

A message is claimed (``sending``, fsynced) before its PDU goes to the
modem - the daemon claims the next one while the modem works on the current
one, so the fsync costs no sending time. Right before a PDU is handed over
the daemon notes it in the hand-over journal (``appliance.journal``). Each
part's +CMGS reference is committed as soon as it arrives.

After a crash, :meth:`SendQueue.recover_interrupted` decides: a claimed
message that was never handed over goes back to the queue; one that was
handed over may have gone out and becomes ``uncertain``, for a person to
check and requeue (the journal holds across a power cut: ``appliance.journal``
says how). A part whose reference was recorded is never handed over again.

Delivery reports settle a sent message later (``appliance.reports``).
"""

from __future__ import annotations

from typing import Iterable

from appliance.audit import AuditLog
from appliance.clock import Clock
from appliance.db import Database
from appliance.errors import MessageNotFound, ServiceCodeMissing
from appliance.ledger import Ledger
from appliance.messages import FINISHED, KINDS, MARKETING, STATES, TRANSACTIONAL, Message, RetryPolicy, Shortfall
from appliance.phones import carrier_of
from appliance.plan import MessagePlan
from appliance.text import say, stored, unstored

#: Opted-out messages one claim fails on its way to one it may send (the next claim goes on from there).
SKIP_OPTED_OUT = 100
#: Rows a long change (requeue, a list's cancel) writes per transaction: each holds the write lock briefly.
BATCH = 500
#: A message a modem may take: queued, not held, and not of a list staff paused or cancelled a moment ago
#: (its messages are held or failed in batches afterwards, SendLists.settle, which takes them out of the
#: message_ready indexes: the queries below read those, so held messages, however many, cost nothing).
READY = ("state = 'queued' AND held = 0 AND (send_list_id IS NULL OR send_list_id NOT IN"
         " (SELECT id FROM send_list WHERE state != 'active'))")

# The queue's vocabulary lives in appliance.messages; named here too for those who read the queue.
__all__ = ["AUDITED", "FINISHED", "KINDS", "MARKETING", "STATES", "TRANSACTIONAL", "Message", "RetryPolicy",
           "SendQueue", "Shortfall"]

#: Transitions written to the audit record (delivery reports add delivered/failed/expired).
AUDITED = ("sent", "failed", "uncertain")


def _require(service_code: str) -> None:
    if not service_code or not service_code.strip():
        raise ServiceCodeMissing("every message is recorded with the shop's service code, and none was given: "
                                 "set service_code in the config")


class SendQueue:
    """The queue over a :class:`Database`. Timestamps come from ``clock``."""

    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock
        self.ledger = Ledger(db, clock)
        self.audit = AuditLog(db, clock)
        self.shortfall: Shortfall | None = None
        """Set when the last claim found the next message not covered by the balance."""

    # --- putting messages in ---------------------------------------------------------

    def create_list(self, name: str, service_code: str, template: str | None = None, *, kind: str = MARKETING,
                    start_at: float | None = None, created_by: str | None = None, state: str = "active") -> int:
        if kind not in KINDS:
            raise ValueError(f"a send list is {' or '.join(KINDS)}, not {kind!r}")
        _require(service_code)
        with self.db.atomic() as conn:
            cur = conn.execute("INSERT INTO send_list (name, service_code, created_at, template, kind, start_at,"
                               " created_by, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                               (name, service_code, self.clock.time(), template, kind, start_at, created_by, state))
            return cur.lastrowid

    def enqueue(self, send_list_id: int | None, recipients: Iterable[str], plan: MessagePlan,
                service_code: str) -> list[int]:
        """Queue ``plan``'s text for every recipient, in one transaction; returns the ids."""
        return self.enqueue_many(send_list_id, ((r, plan) for r in recipients), service_code)

    def enqueue_many(self, send_list_id: int | None, items: Iterable[tuple[str, MessagePlan]],
                     service_code: str) -> list[int]:
        """Queue (recipient, plan) pairs - each its own text - in one transaction; returns the ids.

        The list's kind and start time (if any) apply to every message.
        """
        _require(service_code)
        with self.db.atomic() as conn:
            kind, start_at = MARKETING, None
            if send_list_id is not None:
                row = conn.execute("SELECT kind, start_at FROM send_list WHERE id = ?", (send_list_id,)).fetchone()
                if row is not None:
                    kind, start_at = row["kind"], row["start_at"]
            return list(self.insert_accepted(conn, send_list_id, (
                (recipient, carrier_of(recipient), plan.text, plan.encoding, plan.segments)
                for recipient, plan in items), service_code, kind=kind, start_at=start_at))

    def insert_accepted(self, conn, send_list_id: int | None, rows: Iterable, service_code: str, *,
                        kind: str, start_at: float | None, held: bool = False) -> range:
        """Write messages - (recipient, carrier, text, encoding, segments, ...) each, as
        :class:`appliance.preview.Accepted` - in the caller's transaction; ``held``: no modem takes them
        until they are freed (a list still loading). Returns their ids."""
        _require(service_code)
        now = self.clock.time()
        due = max(now, start_at or now)
        first = next_id = conn.execute("SELECT COALESCE(MAX(id), 0) FROM message").fetchone()[0] + 1
        values = []
        for recipient, carrier, text, encoding, segments, *more in rows:  # more: row, basis (the consent)
            values.append((next_id, send_list_id, recipient, text, encoding, segments, service_code, due,
                           next_id & 0xFF, now, carrier, kind, int(held), more[1] or None if len(more) > 1 else None))
            next_id += 1
        conn.executemany(
            "INSERT INTO message (id, send_list_id, recipient, text, encoding, segments, service_code,"
            " next_attempt_at, concat_ref, created_at, carrier, kind, held, basis)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
        return range(first, next_id)

    # --- the daemon's side ---------------------------------------------------------------

    def claim(self, *, max_parts: int | None = None, carrier: str | None = None, avoid: Iterable[str] = (),
              quiet: bool = False, modem: str = "", sim: str = "") -> Message | None:
        """Take the next due message, pay for it, and mark it ``sending`` - one transaction.

        Routing: a modem on ``carrier`` takes that carrier's oldest message
        first, else the oldest of any carrier not in ``avoid`` (carriers whose
        own modem is free). In ``quiet`` hours only transactional messages go.
        A message needing more than ``max_parts`` (what the caps allow now)
        waits. It pays for the parts it will hand to the modem (all, or those
        the network has not confirmed yet). If the balance does not cover
        them, nothing is claimed: the queue waits, in order, and
        :attr:`shortfall` says why until a top-up. ``modem`` (its label) and ``sim`` (its ICCID) are kept
        with the message for the record.

        The search is a plain read, before the write lock is taken: however long it takes (a big list
        paused a moment ago, not yet held), it keeps nobody else from the database. Under the lock the
        one message found is checked again and claimed.
        """
        now = self.clock.time()
        for _ in range(SKIP_OPTED_OUT):
            found = self._candidate(self.db.conn, now, carrier, tuple(avoid), quiet)
            if found is None:
                self.shortfall = None
                return None
            with self.db.atomic() as conn:
                row = conn.execute(f"SELECT id, segments, recipient FROM message WHERE id = ? AND {READY}",
                                   (found["id"],)).fetchone()
                if row is None:
                    continue  # another modem of the pool took it, or its list stopped, a moment ago
                if conn.execute("SELECT 1 FROM customer WHERE number = ? AND consent = 'refused'",
                                (row["recipient"],)).fetchone():
                    # The customer replied TD after the list was queued: never send, never charge.
                    self._set(row["id"], "failed", say("the customer opted out (replied TD/退订) after the list "
                                                       "was queued; not sent, not charged"), finished_at=now)
                    continue
                return self._pay_and_take(conn, row, now, max_parts, (modem, sim))
        return None

    def _pay_and_take(self, conn, row, now: float, max_parts: int | None, via: tuple[str, str]) -> Message | None:
        """Charge for a found message and mark it ``sending`` (in the claim's transaction)."""
        mid = row["id"]
        need = row["segments"] - self._accepted_count(conn, mid)
        if max_parts is not None and need > max_parts:
            return None
        balance = self.ledger.balance(conn)
        if need > balance:
            self.shortfall = Shortfall(mid, need, balance)
            return None
        self.shortfall = None
        if need:
            self.ledger.record(conn, "debit", -need, message_id=mid)
        conn.execute("UPDATE message SET state = 'sending', attempts = attempts + 1, sending_at = ?,"
                     " claim_charge = ?, modem = ?, sim_iccid = ? WHERE id = ?", (now, need, *via, mid))
        return self.get(mid)

    @staticmethod
    def _candidate(conn, now: float, carrier: str | None, avoid: tuple[str, ...], quiet: bool):
        kind = " AND kind = 'transactional'" if quiet else ""
        if carrier:
            row = conn.execute(f"SELECT id, segments, recipient FROM message INDEXED BY message_ready_carrier"
                               f" WHERE {READY} AND next_attempt_at <= ? AND carrier = ?{kind}"
                               f" ORDER BY next_attempt_at, id LIMIT 1", (now, carrier)).fetchone()
            if row is not None:
                return row
        skip = f" AND carrier NOT IN ({', '.join('?' * len(avoid))})" if avoid else ""
        return conn.execute(f"SELECT id, segments, recipient FROM message INDEXED BY message_ready WHERE {READY}"
                            f" AND next_attempt_at <= ?{skip}{kind} ORDER BY next_attempt_at, id LIMIT 1",
                            (now, *avoid)).fetchone()

    def waiting_for_credit(self) -> Shortfall | None:
        """Is the next due message held back because the balance does not cover it? (Read only.)"""
        conn = self.db.conn
        row = conn.execute(f"SELECT id, segments FROM message INDEXED BY message_ready WHERE {READY}"
                           f" AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT 1",
                           (self.clock.time(),)).fetchone()
        if row is None:
            return None
        need = row["segments"] - self._accepted_count(conn, row["id"])
        balance = self.ledger.balance(conn)
        return Shortfall(row["id"], need, balance) if need > balance else None

    def unclaim(self, message_id: int) -> None:
        """Put back a claimed message that was never handed to the modem, as it was (refunded)."""
        with self.db.atomic() as conn:
            if conn.execute("UPDATE message SET state = 'queued', attempts = MAX(0, attempts - 1)"
                            " WHERE id = ? AND state = 'sending'", (message_id,)).rowcount:
                self._refund_unsent(conn, message_id, say("put back before sending"))

    def _accepted_count(self, conn, message_id: int) -> int:
        return conn.execute("SELECT COUNT(*) FROM segment WHERE message_id = ?", (message_id,)).fetchone()[0]

    def _refund_unsent(self, conn, message_id: int, why: str) -> None:
        """The claim ended without sending: refund the parts the network did not confirm."""
        row = conn.execute("SELECT segments, claim_charge FROM message WHERE id = ?", (message_id,)).fetchone()
        if row and row["claim_charge"]:
            refund = min(row["claim_charge"], row["segments"] - self._accepted_count(conn, message_id))
            if refund > 0:
                self.ledger.record(conn, "refund", refund, message_id=message_id, note=why)
            conn.execute("UPDATE message SET claim_charge = 0 WHERE id = ?", (message_id,))

    def has_due(self, *, marketing_only: bool = False, more_parts_than: int | None = None) -> bool:
        """Is a queued message due now (of a marketing list / needing more parts than given)?"""
        sql = f"SELECT 1 FROM message INDEXED BY message_ready WHERE {READY} AND next_attempt_at <= ?"
        params: list = [self.clock.time()]
        if marketing_only:
            sql += " AND kind = 'marketing'"
        if more_parts_than is not None:
            sql += " AND segments > ?"
            params.append(more_parts_than)
        return self.db.execute(sql + " LIMIT 1", params).fetchone() is not None

    def next_due_at(self) -> float | None:
        row = self.db.execute(f"SELECT MIN(next_attempt_at) FROM message INDEXED BY message_ready WHERE {READY}"
                              ).fetchone()
        return row[0]

    def record_segment(self, message_id: int, seq: int, reference: int | None, *, at: float | None = None,
                       modem: str | None = None) -> None:
        """The network accepted part ``seq`` (+CMGS: <reference>) at ``at``, through ``modem`` (counted
        against its caps)."""
        at = self.clock.time() if at is None else at
        with self.db.atomic() as conn:
            conn.execute("INSERT INTO segment (message_id, seq, reference, submitted_at) VALUES (?, ?, ?, ?)",
                         (message_id, seq, reference, at))
            if modem is not None:
                conn.execute("INSERT INTO send_log (modem, at, recipient, message_id)"
                             " SELECT ?, ?, recipient, id FROM message WHERE id = ?", (modem, at, message_id))

    def mark_sent(self, message_id: int, *, at: float | None = None) -> None:
        self._set(message_id, "sent", None, sent_at=self.clock.time() if at is None else at,
                  only_from=("sending",), claim_charge=0)

    def fail(self, message_id: int, reason: str) -> None:
        """Failed for good; parts the network never took are refunded."""
        with self.db.atomic() as conn:
            self._refund_unsent(conn, message_id, reason)
            self._set(message_id, "failed", reason, finished_at=self.clock.time())

    def mark_uncertain(self, message_id: int, reason: str) -> None:
        """It may have gone out: it stays paid for."""
        self._set(message_id, "uncertain", reason, claim_charge=0)

    def retry_later(self, message_id: int, reason: str, policy: RetryPolicy) -> str:
        """A passing problem: queue again after a backoff (refunded until it goes), or fail
        once attempts run out."""
        msg = self.get(message_id)
        if msg.attempts >= policy.max_attempts:
            self.fail(message_id, say("gave up after {n} attempts: {reason}", n=msg.attempts, reason=reason))
            return "failed"
        with self.db.atomic() as conn:
            self._refund_unsent(conn, message_id, reason)
            self._set(message_id, "queued", reason, next_attempt_at=self.clock.time() + policy.delay(msg.attempts))
        return "queued"

    def give_back(self, message_id: int, reason: str) -> None:
        """The box, not the message, could not send (no SIM, no network, port gone):
        queue it again at once without counting the attempt, refunded."""
        with self.db.atomic() as conn:
            if conn.execute("UPDATE message SET state = 'queued', attempts = MAX(0, attempts - 1), error = ?,"
                            " next_attempt_at = ? WHERE id = ? AND state = 'sending'",
                            (stored(reason), self.clock.time(), message_id)).rowcount:
                self._refund_unsent(conn, message_id, reason)

    def recover_interrupted(self, handed: set[tuple[int, float]] | None) -> tuple[int, int]:
        """At start: settle what was ``sending`` when the daemon stopped.

        ``handed``: the hand-over journal's (id, claimed at) pairs when it can
        be trusted (fsynced, or the machine did not restart), else None.
        Returns (requeued, uncertain).
        """
        if handed is None:
            why = ("the box lost power while this message was being sent, or just before; it may have "
                   "gone out. Check with the customer, then requeue it if it did not arrive")
        else:
            why = ("the box stopped while this message was with the modem; it may have gone out. "
                   "Check with the customer, then requeue it if it did not arrive")
        requeued = uncertain = 0
        with self.db.atomic() as conn:
            for row in conn.execute("SELECT id, sending_at FROM message WHERE state = 'sending'").fetchall():
                if handed is not None and (row["id"], row["sending_at"]) not in handed:
                    conn.execute("UPDATE message SET state = 'queued', attempts = MAX(0, attempts - 1)"
                                 " WHERE id = ?", (row["id"],))
                    self._refund_unsent(conn, row["id"], say("claimed, not sent, when the box stopped"))
                    requeued += 1
                else:  # it most likely went out: it stays paid for
                    conn.execute("UPDATE message SET state = 'uncertain', error = ?, claim_charge = 0 WHERE id = ?",
                                 (why, row["id"]))
                    self.audit.record(conn, "uncertain", conn.execute("SELECT * FROM message WHERE id = ?",
                                                                      (row["id"],)).fetchone(), why)
                    uncertain += 1
        return requeued, uncertain

    def requeue_uncertain(self, ids: Iterable[int] | None = None) -> int:
        """A person decided: send the uncertain messages (only their unconfirmed parts) again.

        In batches of :data:`BATCH`, each its own short transaction: requeueing many never keeps the
        sender from the database for long."""
        now = self.clock.time()
        sql = ("UPDATE message SET state = 'queued', attempts = 0, error = NULL, next_attempt_at = ?"
               " WHERE id IN ({}) AND state = 'uncertain'")
        count = 0
        if ids is not None:
            wanted = list(ids)
            for i in range(0, len(wanted), BATCH):
                chunk = wanted[i:i + BATCH]
                with self.db.atomic() as conn:
                    count += conn.execute(sql.format(", ".join("?" * len(chunk))), (now, *chunk)).rowcount
            return count
        while True:
            with self.db.atomic() as conn:
                n = conn.execute(sql.format("SELECT id FROM message WHERE state = 'uncertain' LIMIT ?"),
                                 (now, BATCH)).rowcount
            count += n
            if n < BATCH:
                return count

    def _set(self, message_id: int, state: str, error: str | None, *, only_from: tuple[str, ...] | None = None,
             **columns: float | int) -> None:
        """Change a message's state; the ones the record needs (sent, failed, uncertain) are audited."""
        sets = ", ".join(["state = ?", "error = ?"] + [f"{k} = ?" for k in columns])
        sql = f"UPDATE message SET {sets} WHERE id = ?"
        params = [state, stored(error), *columns.values(), message_id]
        if only_from:
            sql += f" AND state IN ({', '.join('?' * len(only_from))})"
            params += list(only_from)
        with self.db.atomic() as conn:
            changed = conn.execute(sql, params).rowcount
            if changed == 0 and not only_from:
                raise MessageNotFound(f"no message {message_id}")
            if changed and state in AUDITED:
                row = conn.execute("SELECT * FROM message WHERE id = ?", (message_id,)).fetchone()
                self.audit.record(conn, state, row, error or state)

    # --- reading -------------------------------------------------------------------------

    def get(self, message_id: int) -> Message:
        row = self.db.execute("SELECT * FROM message WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            raise MessageNotFound(f"no message {message_id}")
        return self.from_row(row)

    def from_row(self, row) -> Message:
        """A ``message`` row as a :class:`Message`, with the parts the network accepted."""
        accepted = frozenset(r[0] for r in self.db.execute(
            "SELECT seq FROM segment WHERE message_id = ?", (row["id"],)))
        return Message(**{k: unstored(row[k]) if k == "error" else row[k] for k in row.keys()}, accepted=accepted)

    def segments(self, message_id: int) -> list[dict]:
        """The parts the network accepted, in order, with their delivery reports."""
        return [dict(r) for r in self.db.execute("SELECT * FROM segment WHERE message_id = ? ORDER BY seq",
                                                 (message_id,))]

    def messages(self, state: str | None = None, limit: int = 1000) -> list[Message]:
        sql = "SELECT id FROM message" + (" WHERE state = ?" if state else "") + " ORDER BY id LIMIT ?"
        params = (state, limit) if state else (limit,)
        return [self.get(r[0]) for r in self.db.execute(sql, params).fetchall()]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATES, 0)
        for state, n in self.db.execute("SELECT state, COUNT(*) FROM message GROUP BY state"):
            out[state] = n
        return out

    def sent_total(self) -> int:
        """Messages the network accepted in full (every part has its +CMGS reference)."""
        return self.db.execute(
            "SELECT COUNT(*) FROM message m WHERE state IN ('sent', 'delivered', 'expired')"
            " OR (state IN ('failed', 'uncertain')"
            "     AND (SELECT COUNT(*) FROM segment s WHERE s.message_id = m.id) = m.segments)").fetchone()[0]
