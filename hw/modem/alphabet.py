"""GSM 7-bit default alphabet (3GPP TS 23.038 §6.2.1) and septet packing.

Kept apart from the PDU layout because both the PDU codec and the cost
preview need to know which characters fit in 7 bits and how many septets a
text takes: an extension-table character (€ [ ] { } ~ ^ \\ | and form feed)
is an escape septet plus one more, so it costs two.
"""

from __future__ import annotations

ESC = 0x1B

#: The 128 characters of the default alphabet, indexed by septet value.
#: 0x1B is the escape to the extension table, never a character of its own.
DEFAULT = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
assert len(DEFAULT) == 128

#: Extension table: character -> septet that follows ESC.
EXTENSION = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}

_TO_SEPTET = {ch: i for i, ch in enumerate(DEFAULT) if i != ESC}
_FROM_EXTENSION = {v: k for k, v in EXTENSION.items()}


def char_septets(ch: str) -> tuple[int, ...] | None:
    """The septet(s) for one character, or None if it is not in GSM-7."""
    septet = _TO_SEPTET.get(ch)
    if septet is not None:
        return (septet,)
    ext = EXTENSION.get(ch)
    if ext is not None:
        return (ESC, ext)
    return None


_ALL = frozenset(_TO_SEPTET) | frozenset(EXTENSION)
_EXT = frozenset(EXTENSION)


def is_gsm7(text: str) -> bool:
    """True if every character of ``text`` has a GSM-7 encoding."""
    return _ALL.issuperset(text)


def septet_count(text: str) -> int:
    """Septets a GSM-7 text takes (extension characters count two)."""
    return len(text) + sum(1 for ch in text if ch in _EXT)


def first_non_gsm7(text: str) -> str | None:
    """The first character that forces UCS-2, or None."""
    for ch in text:
        if ch not in _TO_SEPTET and ch not in EXTENSION:
            return ch
    return None


def encode(text: str) -> list[int]:
    """Text -> septet values. Raises ValueError naming the first bad character."""
    out: list[int] = []
    for ch in text:
        septets = char_septets(ch)
        if septets is None:
            raise ValueError(f"character {ch!r} (U+{ord(ch):04X}) is not in the GSM 7-bit alphabet")
        out.extend(septets)
    return out


def decode(septets: list[int] | bytes) -> str:
    """Septet values -> text.

    An escape followed by a value the extension table does not define is shown
    as the default-alphabet character, as TS 23.038 asks receivers to do; a
    trailing lone escape is dropped.
    """
    out: list[str] = []
    escaped = False
    for s in septets:
        s &= 0x7F
        if escaped:
            escaped = False
            out.append(_FROM_EXTENSION.get(s, DEFAULT[s] if s != ESC else " "))
        elif s == ESC:
            escaped = True
        else:
            out.append(DEFAULT[s])
    return "".join(out)


def pack(septets: list[int], fill_bits: int = 0) -> bytes:
    """Pack septets LSB-first into octets, after ``fill_bits`` zero bits.

    ``fill_bits`` is the padding that aligns the text to a septet boundary
    after a User Data Header (TS 23.040 §9.2.3.24).
    """
    value = 0
    for i, s in enumerate(septets):
        value |= (s & 0x7F) << (fill_bits + 7 * i)
    nbits = fill_bits + 7 * len(septets)
    return value.to_bytes((nbits + 7) // 8, "little")


def unpack(data: bytes, count: int, fill_bits: int = 0) -> list[int]:
    """Unpack ``count`` septets from ``data`` after ``fill_bits`` bits.

    Raises ValueError if ``data`` is too short to hold them.
    """
    needed = (fill_bits + 7 * count + 7) // 8
    if len(data) < needed:
        raise ValueError(f"user data holds {len(data)} octets, {count} septets need {needed}")
    value = int.from_bytes(data, "little")
    return [(value >> (fill_bits + 7 * i)) & 0x7F for i in range(count)]
