"""Writing a send list into the queue while it is read, in bounded memory and short transactions.

A list of any size goes into the queue as it is decided, row by row
(:func:`appliance.preview.prepare` hands each accepted row here), so
neither the rows nor the messages are ever held whole. How it stays one
list, sent once, and never half-queued:

- A list that fits one batch (:data:`LOAD_BATCH` messages, most lists) is
  written in one transaction, list and messages and key together.
- A bigger list is created "loading" with its first batch, and its
  messages go in held (no modem takes them) in one short transaction per
  batch, so the sender gets the lock between two. After the last row the
  list turns "active" (or "awaiting" an admin's approval) in one statement, and the daemon frees its messages
  in batches as it does for a resumed list (appliance/sendlists.py); the
  first batches are sending meanwhile.
- A load that fails (a damaged row far down the file, a full disk) or
  whose process dies (a power cut) leaves a "loading" list: it is marked
  "discarded" at once, or by the daemon once it has not grown for
  :data:`LOADING_STALE` seconds, and its messages are deleted in batches.
  None was ever sent or charged.
- The key (the page's upload token, an API client's Idempotency-Key) is
  written with the list's first transaction: a second confirm of the same
  preview finds it and queues nothing, even while the first still loads.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.errors import AlreadyQueued, ListStateError
from appliance.preview import Accepted
from appliance.sendqueue import SendQueue

#: Messages per transaction while a big list loads: tens of milliseconds of the write lock each.
LOAD_BATCH = 5000
#: Seconds a "loading" list may go without a new batch before it counts as abandoned.
LOADING_STALE = 600.0


@dataclass(frozen=True)
class Queued:
    list_id: int
    count: int
    """Messages queued."""


@dataclass(frozen=True)
class NewList:
    """What the queue records of a list: its name, service code, template, kind, start and who queued it."""

    name: str
    service_code: str
    template: str | None
    kind: str
    start_at: float | None
    created_by: str | None
    key: str | None = None
    awaiting: bool = False
    """It waits for an admin's approval (appliance/approval.py): whole, it is "awaiting", not "active"."""

    @property
    def whole_state(self) -> str:
        """The list's state once every row is in."""
        return "awaiting" if self.awaiting else "active"


class ListLoader:
    """Takes accepted rows (call it with each) and writes them to the queue a batch at a time;
    :meth:`finish` makes the list sendable, :meth:`abandon` takes back what was written."""

    def __init__(self, queue: SendQueue, new: NewList, *, batch: int = LOAD_BATCH):
        self.queue = queue
        self.new = new
        self.batch = batch
        self.list_id: int | None = None
        self.count = 0
        self._rows: list[Accepted] = []

    def __call__(self, accepted: Accepted) -> None:
        rows = self._rows
        rows.append(accepted)
        if len(rows) >= self.batch:
            self._write(final=False)

    def finish(self, also=None) -> Queued:
        """The rest of the rows, and the list made sendable (its messages freed by the daemon in batches);
        ``also(conn, list_id)`` runs in that last transaction (the record's note of how the list was screened)."""
        self._write(final=True, also=also)
        return Queued(self.list_id, self.count)

    def abandon(self) -> None:
        """Mark a list that loaded part way "discarded": the daemon (or :meth:`SendLists.settle`) deletes
        its messages in batches. Nothing to do when nothing was written."""
        self._rows = []
        if self.list_id is None:
            return
        with self.queue.db.atomic() as conn:
            conn.execute("UPDATE send_list SET state = 'discarded' WHERE id = ? AND state = 'loading'",
                         (self.list_id,))

    def _write(self, *, final: bool, also=None) -> None:
        q, new, now = self.queue, self.new, self.queue.clock.time()
        rows, self._rows = self._rows, []
        with q.db.atomic() as conn:
            if self.list_id is None:
                if new.key is not None:
                    prior = conn.execute("SELECT send_list_id FROM intake_key WHERE key = ?", (new.key,)).fetchone()
                    if prior is not None:
                        raise AlreadyQueued("this list was already sent", prior["send_list_id"])
                self.list_id = q.create_list(new.name, new.service_code, new.template, kind=new.kind,
                                             start_at=new.start_at, created_by=new.created_by,
                                             state=new.whole_state if final else "loading")
                if new.key is not None:
                    conn.execute("INSERT INTO intake_key (key, fingerprint, send_list_id, created_at)"
                                 " VALUES (?, ?, ?, ?)", (new.key, new.key, self.list_id, now))
                held = not final or new.awaiting
            else:
                held = True  # a list that loads in batches frees its messages once it is whole
            if rows:
                q.insert_accepted(conn, self.list_id, rows, new.service_code, kind=new.kind,
                                  start_at=new.start_at, held=held)
                self.count += len(rows)
            if not conn.execute("UPDATE send_list SET loaded_at = ?, state = ? WHERE id = ?"
                                " AND state IN ('loading', 'active', 'awaiting')",
                                (now, new.whole_state if final else "loading", self.list_id)).rowcount:
                raise ListStateError(f"send list {self.list_id} was discarded while it loaded (nothing was "
                                     f"added for {LOADING_STALE / 60:.0f} minutes): send the list again")
            if also is not None:
                also(conn, self.list_id)
