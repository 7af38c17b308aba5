"""The message record kept for lawful queries: what was sent, to whom, when, under which service code.

One row per event in a message's life that involved the network (sent,
delivered, failed, expired, uncertain), with the full text and number.
Rows are only ever appended, each carrying the SHA-256 of the one before
it, so an edited, deleted or inserted row breaks the chain and
``smsgenie audit verify`` says where.

Rows older than the retention (at least 180 days, as the service agreement
requires) may be pruned; the hash of the last pruned row is kept as the
anchor the chain starts from, so what remains still verifies.

What it does not do: someone with root on the box can rewrite the whole
chain after an edit. The head hash, logged daily by the daemon, lets a
vendor or an auditor who wrote it down catch that too.
"""

from __future__ import annotations

import csv
import hashlib
import os
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Iterable, Iterator

from appliance.clock import Clock
from appliance.db import Database
from appliance.errors import ExportRangeError

GENESIS = "0" * 64
MIN_RETENTION_DAYS = 180
#: The last second a local date can be written as (the end of 9999-12-31 UTC): an export's farthest end.
EPOCH_END = 253402300799.0
FIELDS = ("at", "event", "message_id", "send_list_id", "recipient", "content", "service_code", "outcome")


def digest(prev_hash: str, row: dict) -> str:
    parts = [prev_hash] + [repr(row[k]) if k == "at" else str(row[k]) for k in FIELDS]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    rows: int
    head: str
    problem: str | None = None


class AuditLog:
    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock

    def _head(self, conn: sqlite3.Connection) -> str:
        row = conn.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        if row:
            return row[0]
        anchor = conn.execute("SELECT hash FROM audit_anchor WHERE id = 1").fetchone()
        return anchor[0] if anchor else GENESIS

    def record(self, conn: sqlite3.Connection, event: str, message: sqlite3.Row | dict, outcome: str) -> None:
        """Append an event for ``message`` inside the caller's transaction."""
        self.record_many(conn, event, [message], outcome)

    def record_many(self, conn: sqlite3.Connection, event: str, messages: Iterable[sqlite3.Row | dict],
                    outcome: str) -> None:
        """Append the same event for each of ``messages``, in order, chained, inside the caller's transaction."""
        now, prev, values = self.clock.time(), self._head(conn), []
        for message in messages:
            row = {"at": now, "event": event, "message_id": message["id"], "send_list_id": message["send_list_id"],
                   "recipient": message["recipient"], "content": message["text"],
                   "service_code": message["service_code"], "outcome": outcome}
            link = digest(prev, row)
            values.append((*[row[k] for k in FIELDS], prev, link))
            prev = link
        conn.executemany("INSERT INTO audit (at, event, message_id, send_list_id, recipient, content, service_code,"
                         " outcome, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)

    def verify(self) -> Verdict:
        """Walk the chain from its anchor; the first broken link is the problem. Then check the chain has
        not lost its tail: a chain cut short, emptied, or pruned inside the retention is still a chain, so
        it is checked against the messages (every one sent or settled has its row) and the ledger (every
        charge is for a message still there) - see :meth:`_tail_problem`."""
        verdict = self._walk()
        if not verdict.ok:
            return verdict
        problem = self._tail_problem(self.db.conn)
        return Verdict(False, verdict.rows, verdict.head, problem) if problem else verdict

    def _tail_problem(self, conn: sqlite3.Connection) -> str | None:
        anchor = conn.execute("SELECT at FROM audit_anchor WHERE id = 1").fetchone()
        # a prune removes only rows older than the retention (at least 180 days) when it ran: anything newer
        # than that must still have its row
        since = anchor["at"] - MIN_RETENTION_DAYS * 86400 if anchor else float("-inf")
        missing, first = conn.execute(
            "SELECT COUNT(*), MIN(m.id) FROM message m WHERE m.state NOT IN ('queued', 'sending')"
            " AND COALESCE(m.finished_at, m.sent_at, m.sending_at, m.created_at) > ?"
            " AND NOT EXISTS (SELECT 1 FROM audit a WHERE a.message_id = m.id)", (since,)).fetchone()
        if missing:
            return (f"{missing} message(s) the box sent or settled have no row in the record (message {first} "
                    f"first): rows were deleted, or the record was cut short or replaced")
        gone = conn.execute("SELECT COUNT(*) FROM ledger l WHERE l.message_id IS NOT NULL AND NOT EXISTS"
                            " (SELECT 1 FROM message m WHERE m.id = l.message_id)").fetchone()[0]
        if gone:
            return (f"the ledger charged for {gone} message(s) that are no longer in the box: messages were "
                    f"deleted, with their rows in the record")
        return None

    def _walk(self) -> Verdict:
        conn = self.db.conn
        anchor = conn.execute("SELECT pruned_to, hash FROM audit_anchor WHERE id = 1").fetchone()
        prev, last_id = (anchor["hash"], anchor["pruned_to"]) if anchor else (GENESIS, 0)
        count = 0
        for r in conn.execute("SELECT * FROM audit ORDER BY id"):
            if r["id"] != last_id + 1:
                return Verdict(False, count, prev, f"rows {last_id + 1} to {r['id'] - 1} are missing "
                                                   f"(deleted after they were written)")
            if r["prev_hash"] != prev:
                return Verdict(False, count, prev, f"row {r['id']} does not follow row {last_id} "
                                                   f"(a row was deleted, inserted or changed before it)")
            if digest(prev, dict(r)) != r["hash"]:
                return Verdict(False, count, prev, f"row {r['id']} was changed after it was written")
            prev, last_id = r["hash"], r["id"]
            count += 1
        return Verdict(True, count, prev)

    def prune(self, retention_days: int) -> int:
        """Delete rows older than ``retention_days`` (never under 180); the chain stays verifiable."""
        if retention_days < MIN_RETENTION_DAYS:
            raise ValueError(f"the record must be kept at least {MIN_RETENTION_DAYS} days")
        cutoff = self.clock.time() - retention_days * 86400
        with self.db.atomic() as conn:
            last = conn.execute("SELECT id, hash FROM audit WHERE at < ? ORDER BY id DESC LIMIT 1",
                                (cutoff,)).fetchone()
            if last is None:
                return 0
            count = conn.execute("DELETE FROM audit WHERE id <= ?", (last["id"],)).rowcount
            conn.execute("INSERT INTO audit_anchor (id, pruned_to, hash, at) VALUES (1, ?, ?, ?)"
                         " ON CONFLICT (id) DO UPDATE SET pruned_to = excluded.pruned_to, hash = excluded.hash,"
                         " at = excluded.at", (last["id"], last["hash"], self.clock.time()))
            return count

    def rows(self, start: float, end: float, number: str | None = None) -> Iterator[dict]:
        sql = "SELECT * FROM audit WHERE at >= ? AND at < ?" + (" AND recipient = ?" if number else "") + " ORDER BY id"
        for r in self.db.execute(sql, (start, end, number) if number else (start, end)):
            yield dict(r)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def day_span(first: date, last: date) -> tuple[float, float]:
    """From the start of ``first`` to the end of ``last`` (local days) as epoch seconds, for an export.

    Days outside what the clock can count (before 1970, say, or the year 9999) are taken to the nearest
    day it can: the record holds nothing there anyway."""
    if last < first:
        raise ExportRangeError(f"the last day ({last}) is before the first ({first})")

    def at(day: date) -> float:
        try:
            return datetime.combine(day, time()).timestamp()
        except (OverflowError, ValueError, OSError):
            return 0.0 if day.year < 1970 else EPOCH_END

    end = EPOCH_END if last >= date(9999, 12, 31) else at(last + timedelta(days=1))
    return at(first), end


def safe_cell(value) -> str:
    """A cell a spreadsheet will show as text, never run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def write_csv(rows: Iterable[dict], path: str | os.PathLike, timestamps) -> int:
    """Write the export, mode 0600, never over another file; returns the row count."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    count = 0
    with os.fdopen(fd, "w", newline="", encoding="utf-8-sig") as f:  # BOM: Excel opens Chinese text right
        writer = csv.writer(f)
        writer.writerow(["time", "event", "recipient", "content", "service_code", "send_list_id", "message_id",
                         "outcome"])
        for r in rows:
            writer.writerow([safe_cell(v) for v in (timestamps(r["at"]), r["event"], r["recipient"], r["content"],
                                                    r["service_code"], r["send_list_id"], r["message_id"],
                                                    r["outcome"])])
            count += 1
    return count
