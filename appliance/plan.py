"""What a message costs before it is sent: encoding, SMS parts, credits.

1 credit = 1 SMS part (segment). The split itself is the codec's
(``hw.modem.segments``), so the preview and what the modem sends can never
disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.errors import MessageTextError
from hw.errors import TextTooLong
from hw.modem import alphabet
from hw.modem.segments import GSM7, split


@dataclass(frozen=True)
class MessagePlan:
    text: str
    encoding: str
    parts: tuple[str, ...]
    forced_ucs2_by: str | None
    """The first character that made the text UCS-2, when the rest would fit GSM-7."""

    @property
    def segments(self) -> int:
        return len(self.parts)

    @property
    def credits(self) -> int:
        return len(self.parts)


def plan_message(text: str) -> MessagePlan:
    """Plan ``text``; raises MessageTextError for an empty or too long text."""
    if not text or not text.strip():
        raise MessageTextError("the message text is empty")
    try:
        seg = split(text)
    except TextTooLong as exc:
        raise MessageTextError(str(exc)) from None
    forced = None
    if seg.encoding != GSM7:
        culprit = alphabet.first_non_gsm7(text)
        rest = text.replace(culprit, "") if culprit else text
        if culprit and alphabet.is_gsm7(rest):
            forced = culprit
    return MessagePlan(text, seg.encoding, seg.parts, forced)
