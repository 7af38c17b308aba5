"""From an uploaded list to what will go out: every row checked, priced, or refused with its reason.

For each row: the number (valid, a mobile, not a duplicate, not opted
out), the message filled from the template, the forbidden-word screen on
the filled text, and its cost. Refused rows keep their row number and
reason; accepted ones are kept compactly for the queue. Totals come by
carrier and by encoding, with the credits needed against the balance, and
a warning when one character (a curly quote, say) turns plain text into
UCS-2 and makes it dearer.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from appliance import phones
from appliance.errors import MessageTextError
from appliance.forbidden import KeywordScreen
from appliance.plan import cost
from appliance.privacy import mask_number
from appliance.sendlist import Table
from appliance.template import Template
from appliance.text import message_of, say
from hw.modem.segments import GSM7, split

SAMPLE_ROWS = 5
#: Refused rows a preview keeps to show (the page shows 200, the command line 50); all are counted.
REFUSED_KEPT = 1000
#: Rows between two progress reports while a list is read.
PROGRESS_EVERY = 1000
#: The same text to this many numbers, with no merge field, looks like spam to carriers.
IDENTICAL_TEXT_WARNING = 50

INVALID = phones.INVALID
NOT_MOBILE = phones.NOT_MOBILE
DUPLICATE = say("duplicate")
OPTED_OUT = say("opted out")
NO_CONSENT = say("no consent on record")
FORBIDDEN = say("blocked by a forbidden word")
UNREADABLE = say("unreadable characters")
TOO_LONG = say("message too long")
EMPTY = say("empty message")
CONTROL = say("control characters")
#: Each row's detail that says the same for every row, made once.
_UNREADABLE_ROW = say("the row has characters that are not valid text; re-save the file as CSV UTF-8")
_ALREADY_LISTED = say("the number is already in the list")
_ASKED_NOT_TO = say("the customer asked not to get texts")
_NOT_REGISTERED = say("marketing goes only to customers who agreed to it: record their consent, or ask them by SMS")
#: Characters no phone shows (C0 and C1 controls), but line breaks, which SMS carries.
_CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Refusal:
    row: int
    value: str
    reason: str
    detail: str = ""


class Accepted(NamedTuple):
    """A row that can go, as the queue takes it (a tuple: a million of them pass through cheaply)."""

    recipient: str
    carrier: str
    text: str
    encoding: str
    segments: int
    row: int = 0
    """The row number in the list (for messages from the API: the message's index)."""
    basis: str = ""
    """Why it may go: "consent:<event id>", "paper" (the relaxed gate) or "" (transactional)."""


@dataclass
class Preview:
    """What a list comes to: counts and totals, the first few messages and the first refused rows.

    Never the rows themselves: a list of a million rows makes a preview of the same small size. The
    accepted rows go, as they are decided, to the ``accept`` of :func:`prepare` (the queue's loader)."""

    list_name: str
    columns: list[str]
    phone_column: str
    encoding: str | None
    template: str
    balance: int
    accepted: int = 0
    refused: int = 0
    refused_rows: list[Refusal] = field(default_factory=list)
    """The first ``keep_refused`` refused rows; ``refused_by_reason`` counts them all."""
    refused_by_reason: Counter = field(default_factory=Counter)
    messages_by_carrier: Counter = field(default_factory=Counter)
    credits_by_carrier: Counter = field(default_factory=Counter)
    by_encoding: Counter = field(default_factory=Counter)
    credits_needed: int = 0
    forced_ucs2_by: str | None = None
    ucs2_extra_credits: int = 0
    samples: list[dict] = field(default_factory=list)
    merge_fields_used: list[str] = field(default_factory=list)
    merge_fields_available: list[str] = field(default_factory=list)
    keep_refused: int = field(default=REFUSED_KEPT, repr=False)
    gate: str = "none"
    """The consent gate this list met: "required", "paper" (relaxed by the shop's setting) or "none"."""

    @property
    def identical_text_warning(self) -> str | None:
        """Carriers flag one text sent unchanged to many numbers as spam; say so, and what to add."""
        if self.merge_fields_used or self.accepted < IDENTICAL_TEXT_WARNING:
            return None
        hint = (f": add a merge field such as {{{self.merge_fields_available[0]}}} so each customer's text differs"
                if self.merge_fields_available else ": add a column such as 姓名 to the list and use it as {姓名}")
        return (f"the same text goes to {self.accepted} numbers without any merge field, which carriers "
                f"flag as spam and may bar the SIM for{hint}")

    @property
    def enough_credit(self) -> bool:
        return self.credits_needed <= self.balance

    @staticmethod
    def _refusal(r: Refusal) -> dict:
        """A refused row for display: numbers that are real customers' are masked."""
        shown = mask_number(r.value) if r.reason in (DUPLICATE, OPTED_OUT, NO_CONSENT) else r.value
        return {"row": r.row, "value": shown, "reason": r.reason, "detail": r.detail}

    def as_dict(self, *, rows: bool = True) -> dict:
        return {
            "list": self.list_name,
            "columns": self.columns,
            "phone_column": self.phone_column,
            "encoding": self.encoding,
            "template": self.template,
            "accepted": self.accepted,
            "refused": self.refused,
            "refused_by_reason": dict(self.refused_by_reason),
            "refused_rows": [self._refusal(r) for r in self.refused_rows] if rows else [],
            "messages_by_carrier": dict(self.messages_by_carrier),
            "credits_by_carrier": dict(self.credits_by_carrier),
            "messages_by_encoding": dict(self.by_encoding),
            "credits_needed": self.credits_needed,
            "balance": self.balance,
            "enough_credit": self.enough_credit,
            "ucs2_warning": ({"character": self.forced_ucs2_by, "extra_credits": self.ucs2_extra_credits}
                             if self.forced_ucs2_by else None),
            "samples": self.samples,
            "identical_text_warning": self.identical_text_warning,
            "consent_gate": self.gate,
        }


def _gsm_cost_without(text: str, culprit: str) -> int:
    """What the text would cost with the one offending character swapped for a plain one."""
    plain = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
             "\u2026": "...", "\u00a0": " "}.get(culprit, "?")
    seg = split(text.replace(culprit, plain))
    return seg.segments if seg.encoding == GSM7 else split(text).segments


def prepare(table: Table, template: Template, *, region: str, screen: KeywordScreen, opted_out: set[str],
            balance: int, accept: Callable[[Accepted], None] | None = None,
            progress: Callable[[int, int], None] | None = None, keep_refused: int = REFUSED_KEPT,
            carriers: dict[str, str] | None = None, consented: dict[int, int] | None = None,
            gate: str = "none") -> Preview:
    """Decide about every row of ``table``, read once; each row that can go goes to ``accept`` at once (kept:
    totals, samples, the first ``keep_refused`` refusals). ``progress(rows, refused)`` every :data:`PROGRESS_EVERY`
    rows. ``carriers``: numbers whose carrier is not their prefix's (appliance/carriers.py). ``gate``
    "required": only numbers in ``consented`` (as integers, to their consent's event id) may go; "paper":
    any number not opted out, on the shop's word (appliance/consent.py)."""
    template.check(table.merge_fields)
    columns = table.columns
    preview = Preview(table.name, columns, columns[table.phone_column], table.encoding, template.text, balance,
                      merge_fields_used=template.fields, merge_fields_available=table.merge_fields,
                      keep_refused=keep_refused, gate=gate)
    no_consent_basis = "paper" if gate == "paper" else ""  # the relaxed gate, or transactional
    consented = consented if gate == "required" else None
    seen: set[int] = set()  # numbers as integers: a million of them in about 60 MB, not 150
    pieces_of = template.pieces_for(columns)
    costs: dict[str, tuple] = {}
    tally: Counter = Counter()  # (carrier, encoding, parts) -> messages: one count per row, totals at the end
    phone = table.phone_column
    read = 0
    for row_no, cells in table.rows:
        read += 1
        if progress is not None and read % PROGRESS_EVERY == 0:
            progress(read, preview.refused)
        if not any(cells):
            continue
        raw = cells[phone] if phone < len(cells) else ""
        if "\ufffd" in "\x00".join(cells):
            _refuse(preview, row_no, raw, UNREADABLE, _UNREADABLE_ROW)
            continue
        refusal, number, event = _recipient(raw, region, seen, opted_out, consented)
        if refusal is not None:
            _refuse(preview, row_no, raw, *refusal)
            continue
        text, refusal, priced = _message(pieces_of(cells), template, screen, costs)
        if refusal is not None:
            _refuse(preview, row_no, raw, *refusal)
            continue
        encoding, segments, forced = priced
        carrier = carriers.get(number.e164, number.carrier) if carriers else number.carrier
        tally[(carrier, encoding, segments)] += 1
        if forced:
            preview.forced_ucs2_by = preview.forced_ucs2_by or forced
            preview.ucs2_extra_credits += segments - _gsm_cost_without(text, forced)
        if len(preview.samples) < SAMPLE_ROWS:
            preview.samples.append({"row": row_no, "to": mask_number(number.e164), "carrier": carrier or "other",
                                    "text": text, "encoding": encoding, "parts": segments})
        if accept is not None:
            accept(Accepted(number.e164, carrier, text, encoding, segments, row_no,
                            no_consent_basis if event is None else f"consent:{event}"))
    _count(preview, tally)
    if progress is not None:
        progress(read, preview.refused)
    return preview


def _recipient(raw: str, region: str, seen: set[int], opted_out: set[str], consented: dict[int, int] | None):
    """A row's number: (why it cannot be texted or None, the number, the consent's event id or None)."""
    try:
        number = phones.normalise(raw, region)
    except phones.NumberProblem as problem:
        return (problem.reason, message_of(problem)), None, None
    key = int(number.e164[1:])
    if key in seen:
        return (DUPLICATE, _ALREADY_LISTED), number, None
    seen.add(key)
    if number.e164 in opted_out:
        return (OPTED_OUT, _ASKED_NOT_TO), number, None
    if consented is None:
        return None, number, None
    event = consented.get(key)
    return ((NO_CONSENT, _NOT_REGISTERED) if event is None else None), number, event


def _refuse(preview: Preview, row_no: int, raw: str, reason: str, detail: str = "") -> None:
    preview.refused += 1
    preview.refused_by_reason[reason] += 1
    if len(preview.refused_rows) < preview.keep_refused:
        preview.refused_rows.append(Refusal(row_no, raw, reason, detail))


def _message(pieces: list[str], template: Template, screen: KeywordScreen, costs: dict) -> tuple[str, tuple | None,
                                                                                          tuple | None]:
    """A row's text, why it cannot go (reason, detail) or None, and what it costs (encoding, parts,
    forced_by) when it can."""
    text = "".join(pieces)
    refusal = _text_problem(text, pieces, template, screen)
    if refusal is not None:
        return text, refusal, None
    try:
        return text, None, _priced(costs, text)
    except MessageTextError as exc:
        return text, (TOO_LONG, message_of(exc)), None


def _priced(costs: dict, text: str) -> tuple[str, int, str | None]:
    """:func:`appliance.plan.cost` of ``text``; identical texts (a list with no merge fields) priced once."""
    known = costs.get(text)
    if known is None:
        known = cost(text)
        if len(costs) < 10_000:
            costs[text] = known
    return known


def _text_problem(text: str, pieces: list[str], template: Template, screen: KeywordScreen) -> tuple[str, str] | None:
    """Why this text, as the customer would read it, cannot go: nothing but the signature (and footer), a
    character no phone shows, or a forbidden word (reason, detail); None when it can."""
    signature, ending = template.signature, template.ending
    body = text.replace(signature, "") if signature else text
    if ending and body.endswith(ending):
        body = body[:-len(ending)]
    if not body.strip():
        return EMPTY, say("the message has no text but the signature") if signature else say("the message has no text")
    control = None if text.isprintable() else _CONTROL.search(text)  # (a line break is not printable: look)
    if control is not None:
        return CONTROL, say("the text has the control character U+{code:04X}, which no phone shows: remove it",
                            code=ord(control.group()))
    hit = screen.find_pieces(pieces)
    if hit is not None:
        return FORBIDDEN, say("contains {word!r} ({list})", word=hit.word,
                              list=say("vendor list") if hit.source == "vendor" else say("shop list"))
    return None


def _count(preview: Preview, tally: Counter) -> None:
    """The accepted rows' totals: by carrier, by encoding, credits."""
    for (carrier, encoding, parts), n in tally.items():
        carrier = carrier or "other"
        preview.accepted += n
        preview.messages_by_carrier[carrier] += n
        preview.credits_by_carrier[carrier] += n * parts
        preview.by_encoding[encoding] += n
        preview.credits_needed += n * parts
