"""Crockford base32: the alphabet for things people read aloud or type.

No I, L, O or U, so nothing is misread; on input, case does not matter and
O is read as 0, I and L as 1. The bit work is the standard library's
base32, with the alphabet swapped.
"""

from __future__ import annotations

import base64
import binascii

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RFC4648 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_TO = str.maketrans(_RFC4648, ALPHABET)
_FROM = str.maketrans(ALPHABET, _RFC4648)
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def encode(data: bytes) -> str:
    """Bytes -> Crockford base32, no padding."""
    return base64.b32encode(data).decode("ascii").rstrip("=").translate(_TO)


def decode(text: str) -> bytes:
    """Normalised Crockford base32 -> bytes; ValueError naming a character that is not used."""
    bad = [c for c in text if c not in ALPHABET]
    if bad:
        raise ValueError(f"{bad[0]!r} is not used in codes")
    padded = text.translate(_FROM)
    return base64.b32decode(padded + "=" * (-len(padded) % 8))


def normalise(text: str) -> str:
    """What someone typed -> bare characters: no spaces or dashes, upper case, O->0, I/L->1."""
    return "".join(ch for ch in text.upper() if ch not in " -\t\r\n").translate(_READ_AS)


#: Characters per group when a code is shown (a dash between groups).
GROUP = 5


class CheckDigitsWrong(ValueError):
    """A code's check digits do not match its body: a character was mistyped."""


def encode_checked(body: bytes) -> str:
    """``body`` and its CRC-16/CCITT in Crockford base32, in dashed groups of five: a code a person types
    back (top-up codes, receipts), whose typo is caught before anything else is looked at."""
    raw = encode(body + binascii.crc_hqx(body, 0xFFFF).to_bytes(2, "big"))
    return "-".join(raw[i:i + GROUP] for i in range(0, len(raw), GROUP))


def decode_checked(raw: str) -> bytes:
    """:func:`encode_checked` undone, from :func:`normalise`'d text: the body, or ValueError naming a
    character not used, or :class:`CheckDigitsWrong`."""
    data = decode(raw)
    body = data[:-2]
    if binascii.crc_hqx(body, 0xFFFF) != int.from_bytes(data[-2:], "big"):
        raise CheckDigitsWrong("the check digits do not match")
    return body
