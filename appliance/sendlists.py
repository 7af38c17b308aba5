"""Send lists as staff see and steer them: progress by state, pause, resume, cancel.

A list is made, and its messages queued, by :mod:`appliance.intake`; here
are the controls afterwards. Pausing holds the list's queued messages (the
one with the modem finishes); cancelling fails every message not yet sent,
uncharged, each with who cancelled it in the record.

A list's ``state`` column says what staff chose (active, paused,
cancelled), or where it is on its way there (loading, awaiting approval,
declined: appliance/loading.py, appliance/approval.py); :func:`progress_state` adds "done" for an active list whose
every message has its outcome, so nobody reads "sending" on a finished list.
"""

from __future__ import annotations

import sqlite3
import time

from appliance.approval import declined_reason
from appliance.clock import Clock
from appliance.db import Database, is_busy
from appliance.errors import ListStateError, MessageNotFound
from appliance.loading import LOADING_STALE
from appliance.messages import STATES, Message
from appliance.sendqueue import BATCH, SendQueue
from appliance.text import say, stored

#: Seconds a page's (or the command line's) pause, resume or cancel may spend on the list's messages before
#: it answers; the daemon does the rest in the background (a small list is done at once).
INLINE_SECONDS = 0.2
#: Seconds such a request waits for the database's lock before leaving the rest to the daemon.
INLINE_WAIT = 0.05
#: Messages held or freed per batch (a flag each: cheap), against BATCH failed (each written to the record).
HOLD_BATCH = 2000
#: Seconds the lock is left free at least between two batches.
GAP_MIN = 0.01
#: Message states that still have work ahead.
OPEN_STATES = ("queued", "sending")


def cancelled_reason(who: str | None) -> str:
    """What the record says of a message whose list was cancelled before it went."""
    return say("the list was cancelled by {who}; not sent, not charged", who=who or say("staff"))


def progress_state(state: str, counts: dict[str, int]) -> str:
    """What a list is doing: its chosen state, or "done" once an active list has nothing left to send."""
    if state == "active" and not any(counts.get(s, 0) for s in OPEN_STATES):
        return "done"
    return state


class SendLists:
    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock
        self._queue = SendQueue(db, clock)
        self.longest_batch = 0.0
        """The longest one batch of :meth:`settle` worked under the write lock, in seconds, up to its commit (for
        tests and benchmarks). The commit's fsync is the disk's, the same for every writer, and not counted."""

    def pause(self, list_id: int) -> None:
        """Hold a list's queued messages (the one with the modem finishes)."""
        with self.db.atomic() as conn:
            self._change_state(conn, list_id, "paused", ("active",))
        self.settle_soon()

    def resume(self, list_id: int) -> None:
        with self.db.atomic() as conn:
            self._change_state(conn, list_id, "active", ("paused",))
        self.settle_soon()

    def cancel(self, list_id: int, who: str) -> None:
        """Fail every message of the list not yet sent (nothing was charged for them), each in the record."""
        with self.db.atomic() as conn:
            self._change_state(conn, list_id, "cancelled", ("active", "paused", "awaiting"))
            conn.execute("UPDATE send_list SET cancelled_by = ? WHERE id = ?", (who, list_id))
        self.settle_soon()

    def settle_soon(self) -> None:
        """What a page's request may do of the batches before it answers: a little, and never wait for the
        lock - the daemon goes on in the background (and a claim checks the list's state meanwhile)."""
        try:
            with self.db.impatient(INLINE_WAIT):
                self.settle(budget=INLINE_SECONDS)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise

    def settle(self, *, budget: float = 0.0) -> int:
        """Bring messages in line with their lists, in batches: hold a paused list's, free a resumed
        list's, fail a cancelled list's. Each batch is one short transaction (the sender takes the lock
        between two); stops when nothing is left or ``budget`` seconds are spent. Returns the rows changed.

        The list's own state changed at once when staff asked; until its messages are reached here, a
        claim finds the list's state and holds or fails the message itself (SendQueue.claim)."""
        started, total = time.monotonic(), 0
        while True:
            with self.db.atomic() as conn:
                t = time.monotonic()  # the lock is ours from here to the commit
                n = self._settle_batch(conn)
                self.longest_batch = max(self.longest_batch, time.monotonic() - t)
            took = time.monotonic() - t
            total += n
            if n == 0 or time.monotonic() - started >= budget:
                return total
            # Leave the lock free as long as it was held: a sender waiting for it gets in (SQLite's waiters
            # poll; back-to-back batches would keep missing them).
            time.sleep(max(GAP_MIN, took))

    def _settle_batch(self, conn) -> int:
        """One short transaction of work: first hold what a paused or cancelled list has waiting (cheap, and
        it takes them out of what a claim reads), then free a resumed (or fully loaded) list's, then fail a
        cancelled list's, then delete a discarded load's."""
        hold = conn.execute(
            "UPDATE message SET held = 1 WHERE id IN (SELECT id FROM message INDEXED BY message_list_free"
            " WHERE state = 'queued' AND held = 0"
            " AND send_list_id IN (SELECT id FROM send_list WHERE state != 'active') LIMIT ?)", (HOLD_BATCH,)).rowcount
        if hold:
            return hold
        free = conn.execute(
            "UPDATE message SET held = 0 WHERE id IN (SELECT id FROM message INDEXED BY message_list_held"
            " WHERE state = 'queued' AND held = 1"
            " AND send_list_id IN (SELECT id FROM send_list WHERE state = 'active') LIMIT ?)", (HOLD_BATCH,)).rowcount
        if free:
            return free
        doomed = conn.execute(
            "SELECT m.id, l.state, l.cancelled_by, l.approved_by FROM message m JOIN send_list l"
            " ON l.id = m.send_list_id WHERE m.state = 'queued' AND m.send_list_id IN"
            " (SELECT id FROM send_list WHERE state IN ('cancelled', 'declined')) LIMIT ?", (BATCH,)).fetchall()
        failed = 0
        reasons = {r["id"]: cancelled_reason(r["cancelled_by"]) if r["state"] == "cancelled"
                   else declined_reason(r["approved_by"]) for r in doomed}
        for reason in set(reasons.values()):
            failed += self._fail_unsent(conn, [i for i, why in reasons.items() if why == reason], reason)
        return failed or self._discard_batch(conn)

    def _discard_batch(self, conn) -> int:
        """Lists whose load failed or stopped (appliance/loading.py): their messages, never sent nor
        charged nor in the record, deleted a batch at a time; then the lists themselves and their keys."""
        conn.execute("UPDATE send_list SET state = 'discarded' WHERE state = 'loading' AND loaded_at < ?",
                     (self.clock.time() - LOADING_STALE,))
        gone = conn.execute(
            "DELETE FROM message WHERE id IN (SELECT id FROM message INDEXED BY message_list_held"
            " WHERE state = 'queued' AND held = 1"
            " AND send_list_id IN (SELECT id FROM send_list WHERE state = 'discarded') LIMIT ?)",
            (HOLD_BATCH,)).rowcount
        if gone:
            return gone
        conn.execute("DELETE FROM intake_key WHERE send_list_id IN"
                     " (SELECT id FROM send_list WHERE state = 'discarded')")
        return conn.execute("DELETE FROM send_list WHERE state = 'discarded'"
                            " AND NOT EXISTS (SELECT 1 FROM message WHERE send_list_id = send_list.id)").rowcount

    def _change_state(self, conn, list_id: int, state: str, allowed_from: tuple[str, ...]) -> None:
        row = conn.execute("SELECT state FROM send_list WHERE id = ?", (list_id,)).fetchone()
        if row is None:
            raise MessageNotFound(f"no send list {list_id}")
        if row["state"] not in allowed_from:
            raise ListStateError(say("the list is {now}; it cannot be {state} now", now=row["state"], state=state))
        conn.execute("UPDATE send_list SET state = ? WHERE id = ?", (state, list_id))

    def _fail_unsent(self, conn, ids: list[int], reason: str) -> int:
        """Fail these messages if still queued (none was charged), each into the record; in the caller's
        transaction, set-based. Returns how many."""
        if not ids:
            return 0
        marks = ", ".join("?" * len(ids))
        failed = conn.execute(f"UPDATE message SET state = 'failed', error = ?, finished_at = ?, held = 0"
                              f" WHERE id IN ({marks}) AND state = 'queued' RETURNING id",
                              (stored(reason), self.clock.time(), *ids)).fetchall()
        done = sorted(r[0] for r in failed)
        self._queue.audit.record_many(conn, "failed", conn.execute(
            f"SELECT * FROM message WHERE id IN ({', '.join('?' * len(done))}) ORDER BY id", done), reason)
        return len(done)

    def recent(self, limit: int = 50) -> list[dict]:
        """Send lists, newest first, with their messages counted by state."""
        rows = self.db.execute("SELECT * FROM send_list ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [self._summary(r) for r in rows]

    def get(self, list_id: int) -> dict:
        row = self.db.execute("SELECT * FROM send_list WHERE id = ?", (list_id,)).fetchone()
        if row is None:
            raise MessageNotFound(f"no send list {list_id}")
        return self._summary(row)

    def _summary(self, row) -> dict:
        counts = dict.fromkeys(STATES, 0)
        for state, n in self.db.execute("SELECT state, COUNT(*) FROM message WHERE send_list_id = ?"
                                        " GROUP BY state", (row["id"],)):
            counts[state] = n
        return {**dict(row), "counts": counts, "total": sum(counts.values()),
                "progress": progress_state(row["state"], counts)}

    def messages(self, list_id: int, limit: int = 500, offset: int = 0) -> list[Message]:
        rows = self.db.execute("SELECT * FROM message WHERE send_list_id = ? ORDER BY id LIMIT ? OFFSET ?",
                               (list_id, limit, offset)).fetchall()
        return [self._queue.from_row(r) for r in rows]
