"""Asking customers for consent by SMS, and reading their replies (double opt-in).

The shop asks (one click on the preview for the numbers the gate refused,
the page or ``smsgenie customers ask``), a customer texts the sign-up word
(加入 / JOIN), or a clerk records a yes spoken at the counter: each makes a
question (``consent_ask``) and queues it as a transactional text, one SMS
part, charged like any other. A reply from the same number before the
question expires answers it - yes (Y/是/确认) records consent with the reply
as evidence, TD/退订 records the refusal - and an expired question leaves
the customer as they were. A reply is only ever matched to a question sent
to the number it came from.

The daemon calls :meth:`Asking.send_waiting` between sends: questions made
by an inbound sign-up (the collector, which must not queue while it reads
the modem) are queued there.
"""

from __future__ import annotations

import logging
import sqlite3

from appliance import phones
from appliance.clock import Clock
from appliance.consent import GIVEN, ORIGIN_SOURCE, REFUSED, Consent, is_yes
from appliance.db import Database
from appliance.errors import ConsentError
from appliance.forbidden import normalise
from appliance.messages import TRANSACTIONAL
from appliance.optout import is_opt_out
from appliance.privacy import mask_number
from appliance.text import say

log = logging.getLogger(__name__)

ORIGINS = tuple(ORIGIN_SOURCE)


def question_text(settings: dict) -> str:
    """The question as sent: the shop's wording with 【店名】 as its signature."""
    signature = settings["signature"]
    if not signature:
        raise ConsentError(say("set the shop's 【signature】 first: the question names the shop"))
    return settings["consent_question"].replace("【店名】", signature)


class Asking:
    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock
        self.consent = Consent(db, clock)

    def make(self, conn: sqlite3.Connection, number: str, origin: str, *, days: int, by: str) -> int | None:
        """A question to ``number`` (not yet queued), in the caller's transaction; None when none is needed:
        the customer consented already, or has a question still open."""
        if origin not in ORIGINS:
            raise ValueError(f"a question's origin is one of {ORIGINS}")
        now = self.clock.time()
        state = self.consent.state_in(conn, number)
        if state == GIVEN or (state == REFUSED and origin == "asked"):
            return None  # a refusal is asked again only when the customer asks to join
        if conn.execute("SELECT 1 FROM consent_ask WHERE number = ? AND answered_at IS NULL AND expires_at > ?",
                        (number, now)).fetchone():
            return None
        conn.execute("INSERT INTO customer (number, created_at, created_by, updated_at, updated_by)"
                     " VALUES (?, ?, ?, ?, ?) ON CONFLICT (number) DO NOTHING", (number, now, by, now, by))
        return conn.execute("INSERT INTO consent_ask (number, origin, asked_at, expires_at, asked_by)"
                            " VALUES (?, ?, ?, ?, ?)", (number, origin, now, now + days * 86400, by)).lastrowid

    def ask(self, intake, numbers: list[str], *, origin: str = "asked", by: str) -> int:
        """Make and queue the question for each number that needs one; how many were queued."""
        settings = intake.settings()
        text = question_text(settings)
        with self.db.atomic() as conn:
            asks = {n: a for n in dict.fromkeys(numbers)
                    if (a := self.make(conn, n, origin, days=settings["consent_days"], by=by)) is not None}
        return self._queue(intake, asks, text, by)

    def _queue(self, intake, asks: dict[str, int], text: str, by: str) -> int:
        if not asks:
            return 0
        answer = intake.queue_messages([(n, text) for n in asks], name=say("consent question"),
                                       kind=TRANSACTIONAL, by=by)
        with self.db.atomic() as conn:
            for ask, result in zip(asks.values(), answer.results):
                if "id" in result:
                    conn.execute("UPDATE consent_ask SET message_id = ? WHERE id = ?", (result["id"], ask))
                else:  # not sent (opted out meanwhile, a number the modem cannot take): no open question
                    conn.execute("DELETE FROM consent_ask WHERE id = ?", (ask,))
        return answer.queued

    def send_waiting(self, intake) -> int:
        """Queue the questions made but not yet queued (an inbound sign-up's)."""
        rows = self.db.execute("SELECT id, number FROM consent_ask WHERE message_id IS NULL"
                               " AND answered_at IS NULL AND expires_at > ?", (self.clock.time(),)).fetchall()
        if not rows:
            return 0
        return self._queue(intake, {r["number"]: r["id"] for r in rows}, question_text(intake.settings()), "sms")

    def reply(self, number: str, text: str | None, inbound_id: int | None, settings: dict) -> str | None:
        """What a customer's text does to their consent: "yes", "no", "signup" or None (an ordinary text)."""
        if is_opt_out(text):
            return "no" if self.consent.refuse(number, "sms", f"replied {text.strip()!r}", by="sms",
                                               inbound_id=inbound_id) else None
        now = self.clock.time()
        if is_yes(text):
            with self.db.atomic() as conn:
                # The open question of this number (its message may be a moment from being linked to it: the
                # daemon queues the text, then notes its id - a quick reply must not fall between the two).
                ask = conn.execute("SELECT id, origin FROM consent_ask WHERE number = ? AND answered_at IS NULL"
                                   " AND expires_at > ? ORDER BY id DESC LIMIT 1", (number, now)).fetchone()
                if ask is None:
                    return None  # a yes to nothing asked is just a text
                event = self.consent.record(conn, number, GIVEN, ORIGIN_SOURCE[ask["origin"]],
                                            reference=f"question #{ask['id']}", by="sms", inbound_id=inbound_id,
                                            note=say("replied {text}", text=repr(text.strip())))
                conn.execute("UPDATE consent_ask SET answered_at = ?, answer = 'yes', inbound_id = ? WHERE id = ?",
                             (now, inbound_id, ask["id"]))
            log.info("%s consented by SMS (event %d)", mask_number(number), event)
            return "yes"
        word = settings["signup_word"]
        if text and word and normalise(text) == normalise(word):
            with self.db.atomic() as conn:
                made = self.make(conn, number, "signup", days=settings["consent_days"], by="sms")
            return "signup" if made is not None else None
        return None


#: The most numbers one "ask them" click queues a question to (each question is a credit).
MAX_ASK = 5000


def without_consent(table, region: str, consent: Consent) -> list[str]:
    """The numbers of a list (or a group) the gate would refuse for want of consent: neither consented nor
    refused (at most :data:`MAX_ASK`, in the list's order)."""
    given = consent.gate()
    refused = consent.refused()
    out: dict[str, None] = {}
    for _, cells in table.rows:
        raw = cells[table.phone_column] if table.phone_column < len(cells) else ""
        try:
            number = phones.normalise(raw, region).e164
        except phones.NumberProblem:
            continue
        if int(number[1:]) not in given and number not in refused:
            out[number] = None
            if len(out) >= MAX_ASK:
                break
    return list(out)
