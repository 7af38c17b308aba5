"""Send lists as staff see and steer them: progress by state, pause, resume, cancel.

A list is made, and its messages queued, by :mod:`appliance.intake`; here
are the controls afterwards. Pausing holds the list's queued messages (the
one with the modem finishes); cancelling fails every message not yet sent,
uncharged, each with who cancelled it in the record.

A list's ``state`` column says what staff chose (active, paused,
cancelled); :func:`progress_state` adds "done" for an active list whose
every message has its outcome, so nobody reads "sending" on a finished list.
"""

from __future__ import annotations

from appliance.clock import Clock
from appliance.db import Database
from appliance.errors import ListStateError, MessageNotFound
from appliance.messages import STATES, Message
from appliance.sendqueue import SendQueue

#: Message states that still have work ahead.
OPEN_STATES = ("queued", "sending")


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

    def pause(self, list_id: int) -> int:
        """Hold a list's queued messages (the one with the modem finishes); returns how many."""
        with self.db.atomic() as conn:
            self._change_state(conn, list_id, "paused", ("active",))
            return conn.execute("UPDATE message SET held = 1 WHERE send_list_id = ? AND state = 'queued'",
                                (list_id,)).rowcount

    def resume(self, list_id: int) -> int:
        with self.db.atomic() as conn:
            self._change_state(conn, list_id, "active", ("paused",))
            return conn.execute("UPDATE message SET held = 0 WHERE send_list_id = ? AND state = 'queued'",
                                (list_id,)).rowcount

    def cancel(self, list_id: int, who: str) -> int:
        """Fail every message of the list not yet sent (nothing was charged for them); returns how many."""
        with self.db.atomic() as conn:
            self._change_state(conn, list_id, "cancelled", ("active", "paused"))
            return self._queue.fail_queued(list_id, f"the list was cancelled by {who}; not sent, not charged")

    def _change_state(self, conn, list_id: int, state: str, allowed_from: tuple[str, ...]) -> None:
        row = conn.execute("SELECT state FROM send_list WHERE id = ?", (list_id,)).fetchone()
        if row is None:
            raise MessageNotFound(f"no send list {list_id}")
        if row["state"] not in allowed_from:
            raise ListStateError(f"the list is {row['state']}; it cannot be {state} now")
        conn.execute("UPDATE send_list SET state = ? WHERE id = ?", (state, list_id))

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
