"""What a message costs before it is sent: encoding, SMS parts, credits.

1 credit = 1 SMS part (segment). The split itself is the codec's
(``hw.modem.segments``), so the preview and what the modem sends can never
disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.errors import MessageTextError
from appliance.text import say
from hw.errors import TextTooLong
from hw.modem import alphabet
from hw.modem.segments import GSM7, SINGLE_LIMIT, UCS2, split


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


def cost(text: str) -> tuple[str, int, str | None]:
    """What ``text`` costs without splitting it when it fits one SMS: (encoding, SMS parts, the character
    that forced UCS-2 or None) - the same answer as :func:`plan_message`, for the preview's every row.
    Raises MessageTextError for an empty or too long text."""
    if not text or not text.strip():
        raise MessageTextError(say("the message text is empty"))
    encoding = GSM7 if alphabet.is_gsm7(text) else UCS2
    units = alphabet.septet_count(text) if encoding == GSM7 else len(text.encode("utf-16-le")) // 2
    if units <= SINGLE_LIMIT[encoding]:
        segments = 1
    else:
        try:
            segments = len(split(text, encoding).parts)
        except TextTooLong as exc:
            raise MessageTextError(str(exc)) from None
    return encoding, segments, (_forced_by(text) if encoding == UCS2 else None)


def _forced_by(text: str) -> str | None:
    """The one character that makes a UCS-2 text UCS-2, when without it the text would be GSM-7."""
    culprit = alphabet.first_non_gsm7(text)
    return culprit if culprit and alphabet.is_gsm7(text.replace(culprit, "")) else None


def plan_message(text: str) -> MessagePlan:
    """Plan ``text``; raises MessageTextError for an empty or too long text."""
    if not text or not text.strip():
        raise MessageTextError(say("the message text is empty"))
    try:
        seg = split(text)
    except TextTooLong as exc:
        raise MessageTextError(str(exc)) from None
    return MessagePlan(text, seg.encoding, seg.parts, _forced_by(text) if seg.encoding != GSM7 else None)
