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

import hashlib
import re
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Iterable, Iterator

from appliance import shop
from appliance.clock import Clock
from appliance.consent import basis_words
from appliance.db import Database
from appliance.errors import ExportRangeError

GENESIS = "0" * 64
MIN_RETENTION_DAYS = 180
#: The last second a local date can be written as (the end of 9999-12-31 UTC): an export's farthest end.
EPOCH_END = 253402300799.0
FIELDS = ("at", "event", "message_id", "send_list_id", "recipient", "content", "service_code", "outcome")
#: The second form (since migration 0014) adds who, from where and for whom: who queued the list
#: ("user:3 alice", "api:2 POS", "cli"), who approved it ("" when no approval was needed), the modem's
#: label and its SIM's ICCID, the template's id, the basis ("marketing" or "transactional"; the consent
#: behind it when the customer book exists) and the shop's name and registration or licence number.
FIELDS_2 = FIELDS + ("queued_by", "approved_by", "modem", "sim_iccid", "template_id", "basis", "shop_name",
                     "shop_licence")
FORM = 2
"""The form rows are written in now. A row keeps its form for ever; each verifies by its own."""


def digest(prev_hash: str, row: dict) -> str:
    """The row's link: SHA-256 over the previous link and the row's fields in its form."""
    form = row.get("form", 1)
    if form == 1:
        parts = [prev_hash]
        fields = FIELDS
    else:
        parts = [prev_hash, f"form={form}"]
        fields = FIELDS_2
    parts += [repr(row[k]) if k == "at" else str(row[k]) for k in fields]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def template_id(template: str | None) -> str:
    """A template's id in the record: the first 16 hex digits of its SHA-256 ("" for a list of ready texts).

    Two lists sent with the same words have the same id, so an inspector can find every message a
    template made."""
    return hashlib.sha256(template.encode("utf-8")).hexdigest()[:16] if template else ""


def who(conn: sqlite3.Connection, by: str | None) -> str:
    """``created_by`` as the record writes it: with the user's or token's name as it is now."""
    if not by:
        return ""
    kind, _, ident = by.partition(":")
    table = {"user": "SELECT username FROM users WHERE id = ?",
             "api": "SELECT name FROM api_tokens WHERE id = ?"}.get(kind)
    if table is None or not ident.isdigit():
        return by
    row = conn.execute(table, (int(ident),)).fetchone()
    return f"{by} {row[0]}" if row else by


class _Context:
    """What a message's record row says beyond the message itself, looked up once per list."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.shop = shop.read(conn)
        self.lists: dict[int | None, dict] = {}

    def of(self, message) -> dict:
        list_id = message["send_list_id"]
        if list_id not in self.lists:
            row = self.conn.execute("SELECT created_by, approved_by, template FROM send_list WHERE id = ?",
                                    (list_id,)).fetchone() if list_id is not None else None
            self.lists[list_id] = {
                "queued_by": who(self.conn, row["created_by"]) if row else "",
                "approved_by": who(self.conn, row["approved_by"]) if row else "",
                "template_id": template_id(row["template"]) if row else ""}
        keys = message.keys()
        return {**self.lists[list_id], "modem": message["modem"] or "" if "modem" in keys else "",
                "sim_iccid": message["sim_iccid"] or "" if "sim_iccid" in keys else "",
                "basis": basis_words(self.conn, message["basis"] if "basis" in keys else None,
                                     message["kind"] if "kind" in keys else ""),
                "shop_name": self.shop.name, "shop_licence": self.shop.licence}


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
        context = _Context(conn)
        for message in messages:
            row = {"at": now, "event": event, "message_id": message["id"], "send_list_id": message["send_list_id"],
                   "recipient": message["recipient"], "content": message["text"],
                   "service_code": message["service_code"], "outcome": outcome, "form": FORM,
                   **context.of(message)}
            link = digest(prev, row)
            values.append((*[row[k] for k in FIELDS_2], FORM, prev, link))
            prev = link
        conn.executemany(f"INSERT INTO audit ({', '.join(FIELDS_2)}, form, prev_hash, hash)"
                         f" VALUES ({', '.join('?' * (len(FIELDS_2) + 3))})", values)

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

    def rows(self, start: float, end: float, number: str | None = None, upto: int | None = None) -> Iterator[dict]:
        """Rows written in [start, end), oldest first; only to ``number`` if given, only up to row ``upto``
        (so two passes over a record that grows meanwhile read the same rows).

        Without ``number`` the rows are a stretch of the chain with no gap: from the first row of the range
        to its last, with any row between written at a time outside it (the clock was set back), so the
        chain can be checked link by link."""
        last = upto if upto is not None else 2 ** 63 - 1
        if number:
            sql, params = ("SELECT * FROM audit WHERE at >= ? AND at < ? AND id <= ? AND recipient = ? ORDER BY id",
                           (start, end, last, number))
        else:
            first, final = self.db.execute("SELECT MIN(id), MAX(id) FROM audit WHERE at >= ? AND at < ? AND id <= ?",
                                            (start, end, last)).fetchone()
            sql, params = "SELECT * FROM audit WHERE id BETWEEN ? AND ? ORDER BY id", (first, final)
        for r in self.db.execute(sql, params):
            yield dict(r)

    def state(self, conn: sqlite3.Connection | None = None) -> tuple[int, str]:
        """(rows ever written, head): the number of the last row (pruning does not lower it) and its link.
        A receipt or an export carries both, so a record rolled back or wiped shows when compared."""
        conn = conn or self.db.conn
        row = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        if row:
            return row[0], row[1]
        anchor = conn.execute("SELECT pruned_to, hash FROM audit_anchor WHERE id = 1").fetchone()
        return (anchor[0], anchor[1]) if anchor else (0, GENESIS)


#: A cell starting with one of these is a formula to a spreadsheet, whatever follows.
FORMULA_START = ("=", "@", "\t", "\r")
#: A sign is a formula's start too ("+cmd|...", "-2+3"), unless the cell is a plain number, as a phone
#: number (+8613800138000, "+86 138 0013 8000") or an amount is: a spreadsheet reads those as numbers and
#: runs nothing, and a machine reading the export must get them as they are.
PLAIN_NUMBER = re.compile(r"[+-]\d[\d ]*(?:\.\d+)?")


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
    """A cell a spreadsheet will show as text, never run as a formula; escaped (with a leading ') only
    when a spreadsheet would run it, so numbers stay as they are."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_START) or (text.startswith(("+", "-")) and not PLAIN_NUMBER.fullmatch(text)):
        return "'" + text
    return text
