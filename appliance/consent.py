"""Consent on record: who agreed to marketing texts, who refused, and the evidence for each.

China's rules for commercial SMS (通信短信息服务管理规定) and the shop's service
agreement allow marketing texts to registered recipients only: a customer
who agreed, and never one who refused. So each customer in the book
(appliance/book.py) carries a consent state - ``unknown``, ``given`` or
``refused`` - and every change of it is a :class:`Event` kept for good: the
source (a paper form and its reference, an SMS sign-up, an SMS double
opt-in, the counter confirmed by SMS, an import the shop attested, an
opt-out by SMS or by the shop), when, who recorded it and, for an SMS, the
inbound text's id. The marketing gate (:meth:`Consent.gate`) reads the
states; a message the gate let through records the event it relied on.

Asking by SMS (double opt-in): the box sends a question (:data:`QUESTION`,
the shop may edit it) and a reply Y/是/确认 from the same number before the
question expires records consent with that reply as evidence; TD/退订
refuses. A reply is matched to the open question of the number it came
from, never to another's. A customer who texts the shop's sign-up word
(加入 / JOIN) is asked the same question.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from appliance.clock import Clock
from appliance.db import Database
from appliance.errors import ConsentError
from appliance.forbidden import normalise
from appliance.text import Text, say, stored, unstored

UNKNOWN, GIVEN, REFUSED = "unknown", "given", "refused"
STATES = (UNKNOWN, GIVEN, REFUSED)
#: Where a consent came from, and how a person reads it.
SOURCES = {
    "paper": say("paper form"),
    "sms-signup": say("SMS sign-up"),
    "sms-double-opt-in": say("SMS double opt-in"),
    "counter-sms": say("at the counter, confirmed by SMS"),
    "import-attested": say("imported with the shop's attestation"),
    "sms": say("by SMS"),
    "manual": say("entered by the shop"),
}
#: Sources a person may give for a consent they record by hand (the SMS ones the box records itself).
GIVEN_BY_HAND = ("paper", "import-attested")
#: How a question came to be asked (appliance/asking.py), and the source of the consent its yes records.
ORIGIN_SOURCE = {"asked": "sms-double-opt-in", "signup": "sms-signup", "counter": "counter-sms"}
#: Replies that say yes, in their normalised form (appliance/forbidden.normalise).
YES_WORDS = ("y", "yes", "是", "是的", "确认", "好", "同意")
_YES = re.compile("(?:" + "|".join(YES_WORDS) + ")+")
#: The question, as sent unless the shop edits it (setting ``consent_question``); 【店名】 becomes the signature.
QUESTION = "回复Y确认接收【店名】优惠信息，回T退订"
SHOP_PLACEHOLDER = "【店名】"


def is_yes(text: str | None) -> bool:
    """Is this reply a yes? ('Y', '是', '确认', ' yes ', 'Ｙ' ...)"""
    return bool(text) and _YES.fullmatch(normalise(text).strip("!.。！,，~")) is not None


def source_words(source: str) -> str:
    return SOURCES.get(source, source)


@dataclass(frozen=True)
class Event:
    id: int
    number: str
    at: float
    state: str
    source: str
    reference: str
    recorded_by: str
    inbound_id: int | None
    note: str
    """Why, in the words of whoever recorded it; a Text when the box wrote it (kept as JSON: appliance/text.py)."""

    def __post_init__(self):
        object.__setattr__(self, "note", unstored(self.note))

    @property
    def evidence(self) -> Text:
        """The evidence in one line, as the record (in English) and a person (in their language) read it."""
        reference = f" {self.reference}" if self.reference else ""
        if self.inbound_id is not None:
            return say("{source}{reference} (inbound #{id})", source=source_words(self.source), reference=reference,
                       id=self.inbound_id)
        return say("{source}{reference}", source=source_words(self.source), reference=reference)


def basis_words(conn: sqlite3.Connection, basis: str | None, kind: str) -> str:
    """A message's basis as the record writes it: the consent's evidence, "transactional", or the relaxed gate."""
    if not basis:
        return kind
    if basis.startswith("consent:"):
        row = conn.execute("SELECT * FROM consent_event WHERE id = ?", (int(basis[8:]),)).fetchone()
        return f"consent #{basis[8:]}: {Event(**dict(row)).evidence}" if row else basis
    if basis == "paper":
        return "marketing; consent kept on paper by the shop (gate relaxed)"
    return basis


class Consent:
    """The consent states of the book's customers, their evidence, and the questions asked by SMS."""

    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock

    # --- recording --------------------------------------------------------------------------

    def record(self, conn: sqlite3.Connection, number: str, state: str, source: str, *, reference: str = "",
               by: str = "", inbound_id: int | None = None, note: str = "") -> int:
        """Write a consent event and make it the customer's state (adding the customer if new), in the
        caller's transaction. Returns the event's id."""
        if state not in STATES:
            raise ValueError(f"consent is one of {STATES}, not {state!r}")
        now = self.clock.time()
        event = conn.execute(
            "INSERT INTO consent_event (number, at, state, source, reference, recorded_by, inbound_id, note)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (number, now, state, source, reference, by, inbound_id, stored(note))).lastrowid
        conn.execute(
            "INSERT INTO customer (number, consent, consent_event, created_at, created_by, updated_at, updated_by)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (number) DO UPDATE SET consent = excluded.consent,"
            " consent_event = excluded.consent_event, updated_at = excluded.updated_at,"
            " updated_by = excluded.updated_by", (number, state, event, now, by, now, by))
        return event

    def give(self, number: str, source: str, reference: str, *, by: str, note: str = "") -> int:
        """Consent a person records by hand: a paper form (its reference: the form's number or where it is
        filed) or an attested import; the SMS sources are recorded by the box when the customer replies."""
        if source not in GIVEN_BY_HAND:
            raise ConsentError(say("consent recorded by hand comes from a paper form or an attested import; "
                                   "consent by SMS is recorded when the customer replies"))
        if not reference.strip():
            raise ConsentError(say("say where the evidence is: the paper form's number or where it is filed, or "
                                   "the attestation"))
        with self.db.atomic() as conn:
            return self.record(conn, number, GIVEN, source, reference=reference.strip(), by=by, note=note)

    def refuse(self, number: str, source: str, note: str, *, by: str = "", inbound_id: int | None = None) -> bool:
        """The customer does not want texts (an SMS reply, or the shop's entry); False if they had refused."""
        with self.db.atomic() as conn:
            if self.state_in(conn, number) == REFUSED:
                return False
            self.record(conn, number, REFUSED, source, by=by, inbound_id=inbound_id, note=note)
            conn.execute("UPDATE consent_ask SET answered_at = ?, answer = 'no', inbound_id = ?"
                         " WHERE number = ? AND answered_at IS NULL", (self.clock.time(), inbound_id, number))
            return True

    def unrefuse(self, number: str, reason: str, *, by: str) -> bool:
        """Take a refusal back (the customer signed up again): consent is unknown again, not given."""
        if not reason.strip():
            raise ConsentError(say("say why the number may be texted again (e.g. 'customer signed up again on "
                                   "5 Dec')"))
        with self.db.atomic() as conn:
            if self.state_in(conn, number) != REFUSED:
                return False
            self.record(conn, number, UNKNOWN, "manual", by=by, note=reason.strip())
            return True

    # --- reading ----------------------------------------------------------------------------

    @staticmethod
    def state_in(conn: sqlite3.Connection, number: str) -> str:
        row = conn.execute("SELECT consent FROM customer WHERE number = ?", (number,)).fetchone()
        return row[0] if row else UNKNOWN

    def state(self, number: str) -> str:
        return self.state_in(self.db.conn, number)

    def evidence(self, number: str) -> Event | None:
        """The event behind the customer's state now."""
        row = self.db.execute("SELECT e.* FROM customer c JOIN consent_event e ON e.id = c.consent_event"
                              " WHERE c.number = ?", (number,)).fetchone()
        return Event(**dict(row)) if row else None

    def history(self, number: str | None = None, limit: int = 1000) -> list[Event]:
        sql = "SELECT * FROM consent_event" + (" WHERE number = ?" if number else "") + " ORDER BY id DESC LIMIT ?"
        return [Event(**dict(r)) for r in self.db.execute(sql, ((number,) if number else ()) + (limit,))]

    def refused(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT number FROM customer WHERE consent = 'refused'")}

    def gate(self) -> dict[int, int]:
        """The numbers with consent, as integers (a 100,000-customer book in a few MB), to their evidence."""
        return {int(n[1:]): e for n, e in self.db.execute(
            "SELECT number, consent_event FROM customer WHERE consent = 'given' AND number LIKE '+%'")}
