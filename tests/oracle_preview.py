"""The preview as it was before lists were streamed (issue 14), kept as the oracle the streamed one must equal
row for row. Not used by the box.

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

from appliance import phones
from appliance.errors import MessageTextError
from appliance.forbidden import KeywordScreen
from appliance.plan import MessagePlan, plan_message
from appliance.privacy import mask_number
from appliance.sendlist import Table
from appliance.template import Template
from hw.modem.segments import GSM7, split

SAMPLE_ROWS = 5
#: The same text to this many numbers, with no merge field, looks like spam to carriers.
IDENTICAL_TEXT_WARNING = 50

INVALID = "invalid"
NOT_MOBILE = "not a mobile number"
DUPLICATE = "duplicate"
OPTED_OUT = "opted out"
FORBIDDEN = "blocked by a forbidden word"
UNREADABLE = "unreadable characters"
TOO_LONG = "message too long"
EMPTY = "empty message"
CONTROL = "control characters"
#: Characters no phone shows (C0 and C1 controls), but line breaks, which SMS carries.
_CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Refusal:
    row: int
    value: str
    reason: str
    detail: str = ""


@dataclass
class Accepted:
    recipient: str
    plan: MessagePlan
    row: int = 0
    """The row number in the list (for messages from the API: the message's index)."""


@dataclass
class Preview:
    list_name: str
    columns: list[str]
    phone_column: str
    encoding: str | None
    template: str
    balance: int
    accepted: list[Accepted] = field(default_factory=list, repr=False)
    refused: list[Refusal] = field(default_factory=list)
    messages_by_carrier: Counter = field(default_factory=Counter)
    credits_by_carrier: Counter = field(default_factory=Counter)
    by_encoding: Counter = field(default_factory=Counter)
    credits_needed: int = 0
    forced_ucs2_by: str | None = None
    ucs2_extra_credits: int = 0
    samples: list[dict] = field(default_factory=list)
    merge_fields_used: list[str] = field(default_factory=list)
    merge_fields_available: list[str] = field(default_factory=list)

    @property
    def identical_text_warning(self) -> str | None:
        """Carriers flag one text sent unchanged to many numbers as spam; say so, and what to add."""
        if self.merge_fields_used or len(self.accepted) < IDENTICAL_TEXT_WARNING:
            return None
        hint = (f": add a merge field such as {{{self.merge_fields_available[0]}}} so each customer's text differs"
                if self.merge_fields_available else ": add a column such as 姓名 to the list and use it as {姓名}")
        return (f"the same text goes to {len(self.accepted)} numbers without any merge field, which carriers "
                f"flag as spam and may bar the SIM for{hint}")

    @property
    def refused_by_reason(self) -> Counter:
        return Counter(r.reason for r in self.refused)

    @property
    def enough_credit(self) -> bool:
        return self.credits_needed <= self.balance

    @staticmethod
    def _refusal(r: Refusal) -> dict:
        """A refused row for display: numbers that are real customers' are masked."""
        shown = mask_number(r.value) if r.reason in (DUPLICATE, OPTED_OUT) else r.value
        return {"row": r.row, "value": shown, "reason": r.reason, "detail": r.detail}

    def as_dict(self, *, rows: bool = True) -> dict:
        return {
            "list": self.list_name,
            "columns": self.columns,
            "phone_column": self.phone_column,
            "encoding": self.encoding,
            "template": self.template,
            "accepted": len(self.accepted),
            "refused": len(self.refused),
            "refused_by_reason": dict(self.refused_by_reason),
            "refused_rows": [self._refusal(r) for r in self.refused] if rows else [],
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
            "consent_gate": "none",  # the oracle predates the consent gate: it decides as with the gate off
        }


def _gsm_cost_without(text: str, culprit: str) -> int:
    """What the text would cost with the one offending character swapped for a plain one."""
    plain = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
             "\u2026": "...", "\u00a0": " "}.get(culprit, "?")
    seg = split(text.replace(culprit, plain))
    return seg.segments if seg.encoding == GSM7 else split(text).segments


def prepare(table: Table, template: Template, *, region: str, screen: KeywordScreen, opted_out: set[str],
            balance: int) -> Preview:
    """Read every row of ``table`` once and decide about it."""
    template.check(table.merge_fields)
    columns = table.columns
    preview = Preview(table.name, columns, columns[table.phone_column], table.encoding, template.text, balance,
                      merge_fields_used=template.fields, merge_fields_available=table.merge_fields)
    seen: set[str] = set()
    plans: dict[str, MessagePlan] = {}
    phone = table.phone_column
    for row_no, cells in table.rows:
        if not any(cells):
            continue
        raw = cells[phone] if phone < len(cells) else ""

        def refuse(reason: str, detail: str = "", raw=raw, row_no=row_no) -> None:
            preview.refused.append(Refusal(row_no, raw, reason, detail))

        if any("\ufffd" in c for c in cells):
            refuse(UNREADABLE, "the row has characters that are not valid text; re-save the file as CSV UTF-8")
            continue
        try:
            number = phones.normalise(raw, region)
        except phones.NumberProblem as problem:
            refuse(problem.reason, str(problem))
            continue
        if number.e164 in seen:
            refuse(DUPLICATE, "the number is already in the list")
            continue
        seen.add(number.e164)
        if number.e164 in opted_out:
            refuse(OPTED_OUT, "the customer asked not to get texts")
            continue
        values = {name: (cells[i] if i < len(cells) else "") for i, name in enumerate(columns)}
        text = template.render(values)
        problem = _text_problem(text, template.signature, screen)
        if problem is not None:
            refuse(*problem)
            continue
        plan = plans.get(text)
        if plan is None:
            try:
                plan = plan_message(text)
            except MessageTextError as exc:
                refuse(TOO_LONG, str(exc))
                continue
            if len(plans) < 10_000:  # identical texts (no merge fields) are planned once
                plans[text] = plan
        _accept(preview, row_no, number, text, plan)
    return preview


def _text_problem(text: str, signature: str, screen: KeywordScreen) -> tuple[str, str] | None:
    """Why this text, as the customer would read it, cannot go: nothing but the signature, a character no
    phone shows, or a forbidden word (reason, detail); None when it can."""
    if not (text.replace(signature, "") if signature else text).strip():
        return EMPTY, "the message has no text" + (" but the signature" if signature else "")
    control = _CONTROL.search(text)
    if control is not None:
        return CONTROL, (f"the text has the control character U+{ord(control.group()):04X}, which no phone shows: "
                         f"remove it")
    hit = screen.find(text)
    if hit is not None:
        return FORBIDDEN, f"contains {hit.word!r} ({'vendor list' if hit.source == 'vendor' else 'shop list'})"
    return None


def _accept(preview: Preview, row_no: int, number: phones.Number, text: str, plan: MessagePlan) -> None:
    """Count an accepted row into the totals (by carrier, by encoding, credits) and the samples."""
    preview.accepted.append(Accepted(number.e164, plan, row_no))
    carrier = number.carrier or "other"
    preview.messages_by_carrier[carrier] += 1
    preview.credits_by_carrier[carrier] += plan.credits
    preview.by_encoding[plan.encoding] += 1
    preview.credits_needed += plan.credits
    if plan.forced_ucs2_by:
        preview.forced_ucs2_by = preview.forced_ucs2_by or plan.forced_ucs2_by
        preview.ucs2_extra_credits += plan.credits - _gsm_cost_without(text, plan.forced_ucs2_by)
    if len(preview.samples) < SAMPLE_ROWS:
        preview.samples.append({"row": row_no, "to": mask_number(number.e164), "carrier": carrier,
                                "text": text, "encoding": plan.encoding, "parts": plan.segments})
