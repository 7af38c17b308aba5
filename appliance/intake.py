"""The one way messages get into the queue: read, normalise, screen, price, queue.

A send list uploaded on the page or given to ``smsgenie send``, the
messages of an API call, the counter panel's test SMS and the demo's lists
all come through :class:`Intake`, so every message meets the same rules
(:func:`appliance.preview.prepare`): a valid mobile number, not twice in
one list, not opted out, no forbidden word in the text as the customer
reads it, the shop's signature, a length the modem can send - priced
against the balance before anything is queued.

Checking and queueing are two steps, because people look in between: the
page shows the preview and queues on "Send"; the command line queues unless
``--dry-run``. Queueing a file reads it again and writes each accepted row
as it is decided (appliance/loading.py: bounded memory whatever the size,
short transactions, and a list is sent whole or not at all); the messages
of an API call are queued in one transaction. Every message carries the
config's service code (never empty: the record must say it).

Exactly once: a queueing may carry a key - the page's upload token, or an
API client's ``Idempotency-Key`` - written in the same transaction as the
list (its first batch, for a big list). The transaction takes the
database's write lock first (``BEGIN IMMEDIATE``), so of two requests with
one key (a double click, two tabs, a retried API call) the second waits,
finds the key, and queues nothing: the page says "already sent", the API
replays its first answer.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from appliance import approval
from appliance.audit import AuditLog
from appliance.carriers import NumberCarriers
from appliance.clock import Clock
from appliance.config import Config
from appliance.consent import Consent
from appliance.db import Database
from appliance.errors import (
    KeyReused,
    NoVendorKeywords,
    SendListError,
    ServiceCodeMissing,
    SignatureMissing,
    StartTimeError,
)
from appliance.keywords import KeywordStore
from appliance.loading import ListLoader, NewList, Queued
from appliance.messages import KINDS, MARKETING
from appliance.preview import INVALID, NOT_MOBILE, REFUSED_KEPT, Accepted, Preview, prepare
from appliance.sendlist import Table, open_table
from appliance.sendqueue import SendQueue
from appliance.settings import read_settings
from appliance.template import Template
from appliance.text import say

#: A start time this far in the past is taken as "now" (the form was filled a moment ago).
START_GRACE_SECONDS = 120.0
#: Days a key (an upload token, an API Idempotency-Key) is remembered: a retry after that is a new request.
KEY_DAYS = 7
#: The column an API message's text travels in, as a list's merge field.
TEXT_FIELD = "text"


@dataclass(frozen=True)
class Checked:
    """A list read and decided row by row, not yet queued."""

    preview: Preview
    template: Template
    recorded_template: str | None
    """What the send list records as its template (None for messages that each have their own text)."""


@dataclass(frozen=True)
class Answer:
    """What :meth:`Intake.queue_messages` did: one result per message, and the list it made (if any)."""

    results: list[dict]
    list_id: int | None
    replayed: bool = False
    """True when this is the first answer to the same key, given again: nothing was queued now."""

    @property
    def queued(self) -> int:
        return sum(1 for r in self.results if "id" in r)


def fingerprint(value) -> str:
    """What a request asked for, in a few bytes: a key that comes back with another request is refused."""
    return hashlib.sha256(json.dumps(value, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def refusal_text(reason: str, detail: str) -> str:
    """A refused row's reason in one line (for the API and the panel)."""
    if reason in (INVALID, NOT_MOBILE) and detail:
        return detail
    return f"{reason}: {detail}" if detail else reason


def _limited(rows: Iterator[tuple[int, list[str]]], limit: int, name: str):
    """The rows, refusing the list once it passes ``limit`` rows (before the row past it is decided)."""
    for n, row in enumerate(rows, 1):
        if n > limit:
            raise SendListError(say("{name} has more than {limit:,} rows, the most one list may have (the admin's"
                                    " setting max_list_rows): split it", name=name, limit=limit))
        yield row


def _open_limited(path, name: str | None, limit: int) -> Table:
    """A list file opened for reading (use it in ``with``), refused once it passes ``limit`` rows."""
    table = open_table(path, name=name)
    return dataclasses.replace(table, rows=_limited(table.rows, limit, table.name))


class Intake:
    def __init__(self, db: Database, clock: Clock, config: Config):
        self.db = db
        self.clock = clock
        self.config = config
        self.queue = SendQueue(db, clock)

    def settings(self) -> dict:
        return read_settings(self.config.data_dir)

    # --- checking ---------------------------------------------------------------------------

    def template(self, text: str, *, literal: bool = False, shop: dict | None = None,
                 kind: str = MARKETING) -> Template:
        """The message as written, with the shop's signature, and for marketing the unsubscribe footer;
        ``literal``: braces are text, not fields."""
        if literal:
            text = text.replace("{", "{{").replace("}", "}}")
        shop = shop or read_settings(self.config.data_dir)
        return Template(text, shop["signature"], shop["unsubscribe_footer"] if kind == MARKETING else "")

    def check_file(self, path: str | os.PathLike, text: str, *, name: str | None = None, literal: bool = False,
                   kind: str = MARKETING, progress: Callable[[int, int], None] | None = None) -> Checked:
        """Read a CSV or XLSX list and decide about every row; ``text`` is the template (or, ``literal``,
        the same text for everyone). ``progress(rows read, rows refused)`` is told how far it got, every
        :data:`appliance.preview.PROGRESS_EVERY` rows. Nothing is queued and nothing but totals is kept."""
        shop = read_settings(self.config.data_dir)
        self.require_marketing_basics(kind, shop)
        template = self.template(text, literal=literal, shop=shop, kind=kind)
        with _open_limited(path, name, shop["max_list_rows"]) as table:
            return self.check_table(table, template, shop=shop, kind=kind, progress=progress)

    def queue_file(self, path: str | os.PathLike, text: str, *, name: str | None = None, literal: bool = False,
                   kind: str = MARKETING, start_at: float | None = None, key: str | None = None,
                   by: str | None = None, progress: Callable[[int, int], None] | None = None,
                   ) -> tuple[Queued | None, Preview]:
        """Read, decide and queue a list in one pass, each accepted row written as it is decided
        (appliance/loading.py: bounded memory, short transactions, all or nothing). With a ``key``, at
        most once: :class:`AlreadyQueued` names the list queued the first time. ``by``: who queues it
        ("user:<id>", "api:<token id>", "cli", "panel", "demo"). When no row can go, nothing is queued
        and the answer is (None, the preview with the reasons)."""
        shop = read_settings(self.config.data_dir)
        with _open_limited(path, name, shop["max_list_rows"]) as table:
            return self.queue_table(table, text, literal=literal, kind=kind, start_at=start_at, key=key, by=by,
                                    progress=progress, shop=shop)

    def queue_table(self, table: Table, text: str, *, literal: bool = False, kind: str = MARKETING,
                    start_at: float | None = None, key: str | None = None, by: str | None = None,
                    progress: Callable[[int, int], None] | None = None, shop: dict | None = None,
                    ) -> tuple[Queued | None, Preview]:
        """:meth:`queue_file` for any table: a file's, or the customer book's (a group, the birthdays)."""
        if kind not in KINDS:
            raise ValueError(f"a send list is {' or '.join(KINDS)}, not {kind!r}")
        shop = shop or read_settings(self.config.data_dir)
        self.require_marketing_basics(kind, shop)
        code = self.service_code()
        start_at = self.check_start(start_at)
        template = self.template(text, literal=literal, shop=shop, kind=kind)
        awaiting = approval.needs(self.db.conn, shop["approval"], kind, by)
        loader = ListLoader(self.queue, NewList(table.name, code, template.text, kind, start_at, by, key, awaiting))
        try:
            preview = self.check_table(table, template, shop=shop, kind=kind, accept=loader,
                                       progress=progress).preview
            if not preview.accepted:
                return None, preview
            return loader.finish(also=functools.partial(self._record_screening, code=code, kind=kind,
                                                        preview=preview)), preview
        except BaseException:
            loader.abandon()
            raise

    def check_table(self, table: Table, template: Template, *, shop: dict, kind: str, accept=None,
                    progress=None, keep_refused: int = REFUSED_KEPT) -> Checked:
        """Decide about every row of a table (a file's, the book's group's, an API call's messages)."""
        preview = self._prepare(table, template, shop, accept, progress, keep_refused, kind)
        return Checked(preview, template, template.text)

    def check_messages(self, messages: Sequence[tuple[str, str]], *, name: str, kind: str = MARKETING,
                       accept: Callable[[Accepted], None] | None = None) -> Checked:
        """Messages that each carry their own text, (number, text) pairs, as rows of one list.

        The row number of each is its index in ``messages``."""
        shop = read_settings(self.config.data_dir)
        self.require_marketing_basics(kind, shop)
        template = self.template("{%s}" % TEXT_FIELD, shop=shop, kind=kind)
        table = Table(name=name, columns=["to", TEXT_FIELD], phone_column=0, encoding=None,
                      rows=((i, [to, text]) for i, (to, text) in enumerate(messages)))
        # every refusal kept: each message of an API call gets its own answer
        preview = self._prepare(table, template, shop, accept, keep_refused=len(messages), kind=kind)
        return Checked(preview, template, None)

    def _prepare(self, table: Table, template: Template, shop: dict, accept=None, progress=None,
                 keep_refused: int = REFUSED_KEPT, kind: str = MARKETING) -> Preview:
        gate = shop["consent_gate"] if kind == MARKETING else "none"
        consent = Consent(self.db, self.clock)
        return prepare(table, template, region=shop["default_region"],
                       screen=KeywordStore(self.db, self.clock).screen(),
                       opted_out=consent.refused(), balance=self.queue.ledger.balance(),
                       accept=accept, progress=progress, keep_refused=keep_refused,
                       carriers=NumberCarriers(self.db, self.clock).all(),
                       consented=consent.gate() if gate == "required" else None, gate=gate)

    # --- queueing ---------------------------------------------------------------------------

    def _record_screening(self, conn, list_id: int, *, code: str, kind: str, preview: Preview) -> None:
        """The record's row for how a list was screened: what went, what was refused and why (by reason,
        counts only: a refused number was not texted), and the consent gate it met."""
        refused = "; ".join(f"{reason} {n}" for reason, n in sorted(preview.refused_by_reason.items()))
        summary = (f"{preview.accepted} queued, {preview.refused} refused" + (f" ({refused})" if refused else "")
                   + f"; consent gate {preview.gate}")
        AuditLog(self.db, self.clock).record(conn, "screened", {
            "id": None, "send_list_id": list_id, "recipient": "", "text": summary, "service_code": code,
            "kind": kind}, summary)

    def service_code(self) -> str:
        code = self.config.service_code.strip()
        if not code:
            raise ServiceCodeMissing(
                say("{source} has no service_code: add the line service_code = \"...\" with the code of the shop's "
                    "SMS service agreement (it is recorded with every message), then restart",
                    source=self.config.source))
        return code

    def require_marketing_basics(self, kind: str, shop: dict) -> None:
        """Marketing goes only from a box that has the vendor's forbidden words (appliance/keywords.py) and
        the shop's 【signature】: the rules want every marketing text to say who sent it."""
        if kind != MARKETING:
            return
        if not shop["signature"]:
            raise SignatureMissing(say(
                "marketing texts must name the shop: set its 【signature】 first (admin page, settings; or "
                "'smsgenie settings set signature 【店名】')"))
        if KeywordStore(self.db, self.clock).vendor_list() is None:
            raise NoVendorKeywords(say(
                "this box has no forbidden-word list from the vendor yet, so marketing lists are refused: the "
                "admin imports the vendor's signed list (admin page, or 'smsgenie keywords import FILE'). "
                "Transactional messages (a customer's own order or appointment) can be sent meanwhile"))

    def check_start(self, start_at: float | None) -> float | None:
        """A start time for a list: None (now) or a time to come; one a moment ago counts as now."""
        if start_at is None:
            return None
        now = self.clock.time()
        if start_at < now - START_GRACE_SECONDS:
            raise StartTimeError(say("the start time has already passed: choose a later time, or leave it empty "
                                     "to send now"))
        return start_at if start_at > now else None

    def queued_for(self, key: str) -> int | None:
        """The list queued under ``key`` before (None: nothing was, or nothing was accepted)."""
        row = self.db.execute("SELECT send_list_id FROM intake_key WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def forget_keys(self, older_than: float = KEY_DAYS * 86400) -> int:
        """Drop keys older than ``older_than`` seconds (the daemon does this daily); returns how many."""
        with self.db.atomic() as conn:
            return conn.execute("DELETE FROM intake_key WHERE created_at < ?",
                                (self.clock.time() - older_than,)).rowcount

    def _key_taken(self, conn, key: str, asked: str):
        """The row for ``key`` if it was used before for the same request; KeyReused if for another."""
        row = conn.execute("SELECT fingerprint, send_list_id, answer FROM intake_key WHERE key = ?",
                           (key,)).fetchone()
        if row is not None and row["fingerprint"] != asked:
            raise KeyReused(say("this Idempotency-Key was used before for another request: use a new key for a "
                                "new request"))
        return row

    def queue_messages(self, messages: Sequence[tuple[str, str]], *, name: str, kind: str = MARKETING,
                       key: str | None = None, asked: str | None = None, by: str | None = None) -> Answer:
        """Check and queue messages that each carry their own text (the API, the panel's test SMS).

        The results are one per message, in order - ``{"index", "id", "parts"}`` or ``{"index",
        "error"}``. With a ``key`` (an API client's Idempotency-Key) a second call gives the first
        answer again and queues nothing; ``asked`` fingerprints the request (default: the messages and
        kind), and a key that comes back with another request is refused (:class:`KeyReused`)."""
        asked = asked or fingerprint([list(map(list, messages)), kind])
        self.require_marketing_basics(kind, read_settings(self.config.data_dir))
        with self.db.atomic() as conn:  # the write lock first: a second call with the key waits, then replays
            if key is not None:
                prior = self._key_taken(conn, key, asked)
                if prior is not None:
                    return Answer(json.loads(prior["answer"]), prior["send_list_id"], replayed=True)
            accepted: list[Accepted] = []
            preview = self.check_messages(messages, name=name, kind=kind, accept=accepted.append).preview
            results: dict[int, dict] = {r.row: {"index": r.row, "error": refusal_text(r.reason, r.detail)}
                                        for r in preview.refused_rows}
            list_id = None
            if accepted:
                code = self.service_code()
                awaiting = approval.needs(conn, read_settings(self.config.data_dir)["approval"], kind, by)
                list_id = self.queue.create_list(name, code, None, kind=kind, created_by=by,
                                                 state="awaiting" if awaiting else "active")
                ids = self.queue.insert_accepted(conn, list_id, accepted, code, kind=kind, start_at=None,
                                                 held=awaiting)
                for a, mid in zip(accepted, ids):
                    results[a.row] = {"index": a.row, "id": mid, "parts": a.segments}
                self._record_screening(conn, list_id, code=code, kind=kind, preview=preview)
            for i in range(len(messages)):
                results.setdefault(i, {"index": i, "error": "the message has no number and no text"})
            answer = Answer([results[i] for i in range(len(messages))], list_id)
            if key is not None:
                conn.execute("INSERT INTO intake_key (key, fingerprint, send_list_id, answer, created_at)"
                             " VALUES (?, ?, ?, ?, ?)", (key, asked, answer.list_id,
                                                         json.dumps(answer.results), self.clock.time()))
        return answer
