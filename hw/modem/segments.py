"""How a text is split into SMS segments (3GPP TS 23.038 / 23.040).

This is the part of the codec the cost preview needs: the encoding, the
number of segments, and the text of each. GSM-7 carries 160 septets in one
SMS, 153 per part once a concatenation header is needed; UCS-2 carries 70
UTF-16 code units, 67 per part.

A split falls only between two characters as the customer sees them -
extended grapheme clusters (Unicode UAX #29, the ``regex`` module's ``\\X``):
never inside a flag (🇨🇳 is two code points), a skin-toned or ZWJ emoji
(👍🏽, 👨‍👩‍👧), a keycap or an emoji with its variation selector (❤️), a
letter and its combining accent, CR LF, an escape sequence (``€`` is two
septets) or a surrogate pair. Phones that show each part as it comes would
otherwise show half a character twice. Only a cluster longer than a whole
part (dozens of stacked accents) is cut, by code point.
"""

from __future__ import annotations

from dataclasses import dataclass

import regex

from hw.errors import TextTooLong
from hw.modem import alphabet

GSM7 = "gsm7"
UCS2 = "ucs2"

SINGLE_LIMIT = {GSM7: 160, UCS2: 70}
PART_LIMIT = {GSM7: 153, UCS2: 67}
#: An 8-bit concatenation reference counts parts in one octet.
MAX_SEGMENTS = 255
_GRAPHEME = regex.compile(r"\X")


@dataclass(frozen=True)
class Segmented:
    """A text ready for PDUs: its encoding and the text of each segment."""

    encoding: str
    parts: tuple[str, ...]
    units: int
    """Septets (GSM-7) or UTF-16 code units (UCS-2) of the whole text."""

    @property
    def segments(self) -> int:
        return len(self.parts)

    @property
    def concatenated(self) -> bool:
        return len(self.parts) > 1


def char_units(ch: str, encoding: str) -> int:
    """Septets or UTF-16 code units that one character takes."""
    if encoding == GSM7:
        septets = alphabet.char_septets(ch)
        if septets is None:
            raise ValueError(f"{ch!r} is not GSM-7")
        return len(septets)
    return 2 if ord(ch) > 0xFFFF else 1


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def choose_encoding(text: str) -> str:
    """GSM-7 when every character fits, else UCS-2."""
    return GSM7 if alphabet.is_gsm7(text) else UCS2


def split(text: str, encoding: str | None = None) -> Segmented:
    """Split ``text`` into segments.

    Raises :class:`TextTooLong` beyond :data:`MAX_SEGMENTS` parts.
    """
    encoding = encoding or choose_encoding(text)
    # Most texts are one SMS: count their units at C speed before walking characters.
    total = alphabet.septet_count(text) if encoding == GSM7 else len(text.encode("utf-16-le")) // 2
    if total <= SINGLE_LIMIT[encoding]:
        return Segmented(encoding, (text,), total)
    limit = PART_LIMIT[encoding]
    parts: list[str] = []
    part: list[str] = []
    used = 0
    count = alphabet.septet_count if encoding == GSM7 else _utf16_units
    for cluster in _GRAPHEME.findall(text):
        size = count(cluster)
        if size > limit:  # one "character" longer than a part (a pile of combining marks): cut it by code point
            pieces = [(ch, char_units(ch, encoding)) for ch in cluster]
        else:
            pieces = [(cluster, size)]
        for piece, units in pieces:
            if used + units > limit:
                parts.append("".join(part))
                part, used = [], 0
            part.append(piece)
            used += units
    parts.append("".join(part))
    if len(parts) > MAX_SEGMENTS:
        raise TextTooLong(
            f"the text is {len(text)} characters and needs {len(parts)} SMS parts; "
            f"one message can have at most {MAX_SEGMENTS}. Shorten it."
        )
    return Segmented(encoding, tuple(parts), total)
