"""The fields of an SMS PDU (3GPP TS 23.040 §9.1.2 and §9.2.3; TS 23.038 for the alphabets).

Addresses (semi-octet BCD or GSM-7 alphanumeric), service-centre
timestamps, the relative validity period, TP-Status and what it means, and
the user data with its header (concatenation, national language shifts).
:mod:`hw.modem.pdu` builds and reads whole PDUs from these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from hw.errors import PduError
from hw.modem import alphabet
from hw.modem.segments import GSM7, UCS2

EIGHT_BIT = "8bit"

IEI_CONCAT_8 = 0x00
IEI_CONCAT_16 = 0x08
#: National language single / locking shift tables (TS 23.038 §6.2.1.2.4).
IEI_SINGLE_SHIFT = 0x24
IEI_LOCKING_SHIFT = 0x25

_BCD_DIGITS = "0123456789*#abc"


@dataclass(frozen=True)
class Concat:
    """Concatenation header: which part of which long message this is."""

    reference: int
    total: int
    sequence: int


@dataclass
class UserData:
    """Decoded TP-UD. ``text`` is None when it could not be decoded; ``problem`` says why."""

    encoding: str
    text: str | None
    concat: Concat | None = None
    header: list[tuple[int, bytes]] = field(default_factory=list)
    raw: bytes = b""
    problem: str | None = None


# --- TP-ST -------------------------------------------------------------------

_ST_TEMPORARY = {
    0x00: "network congestion",
    0x01: "the phone was busy",
    0x02: "no response from the phone",
    0x03: "service rejected",
    0x04: "quality of service not available",
    0x05: "error in the phone",
}
_ST_PERMANENT = {
    0x40: "remote procedure error",
    0x41: "incompatible destination",
    0x42: "rejected by the phone",
    0x43: "number not obtainable",
    0x44: "quality of service not available",
    0x45: "no interworking available",
    0x46: "validity period expired before delivery",
    0x47: "deleted by the sender",
    0x48: "deleted by the operator",
    0x49: "the message does not exist at the service centre",
}


def status_meaning(st: int) -> tuple[str, str]:
    """TP-Status (TS 23.040 §9.2.3.15) -> (outcome, plain-language reason)."""
    if st <= 0x1F:
        reason = {0x00: "received by the phone", 0x01: "forwarded, delivery not confirmed",
                  0x02: "replaced by the service centre"}.get(st, "delivered")
        return "delivered", reason
    if st <= 0x3F:
        return "pending", "still trying: " + _ST_TEMPORARY.get(st - 0x20, "temporary error")
    if st == 0x46:
        return "expired", _ST_PERMANENT[st]
    if st <= 0x5F:
        return "failed", _ST_PERMANENT.get(st, "permanent error")
    if st <= 0x7F:
        return "failed", "gave up: " + _ST_TEMPORARY.get(st - 0x60, "temporary error")
    return "failed", f"unknown delivery status 0x{st:02X}"


# --- addresses ---------------------------------------------------------------


def _bcd(digits: str) -> bytes:
    if len(digits) % 2:
        digits += "F"
    return bytes(int(digits[i + 1] + digits[i], 16) for i in range(0, len(digits), 2))


def encode_address(number: str) -> bytes:
    """TP-DA/OA: digit count, type of address, swapped BCD digits."""
    international = number.startswith("+")
    digits = number[1:] if international else number
    if not digits or not digits.isdigit() or not digits.isascii():
        raise PduError(f"{number!r} is not a phone number (digits, optionally with a leading +)")
    if len(digits) > 20:
        raise PduError(f"{number!r} has more than 20 digits")
    toa = 0x91 if international else 0x81
    return bytes([len(digits), toa]) + _bcd(digits)


def encode_alphanumeric_address(name: str) -> bytes:
    """An alphanumeric sender (e.g. a bank's name), as the simulator sends it."""
    septets = alphabet.encode(name)
    packed = alphabet.pack(septets)
    return bytes([len(packed) * 2, 0xD0]) + packed


def encode_smsc(number: str | None) -> bytes:
    """The SMSC field: ``00`` means 'use the SMSC stored in the modem'."""
    if not number:
        return b"\x00"
    addr = encode_address(number)
    return bytes([len(addr) - 1]) + addr[1:]


def _decode_digits(data: bytes, count: int) -> str:
    out = []
    for b in data:
        for nibble in (b & 0x0F, b >> 4):
            if nibble == 0x0F:
                continue
            out.append(_BCD_DIGITS[nibble])
    return "".join(out[:count])


def _decode_number(toa: int, body: bytes, count: int) -> str:
    ton = (toa >> 4) & 0x07
    if ton == 0b101:  # alphanumeric, GSM-7 packed
        return alphabet.decode(alphabet.unpack(body, count * 4 // 7))
    digits = _decode_digits(body, count)
    return ("+" + digits) if ton == 0b001 and digits else digits


class _Reader:
    """Octet cursor over a PDU that raises PduError instead of IndexError."""

    def __init__(self, data: bytes, what: str):
        self.data = data
        self.pos = 0
        self.what = what

    def take(self, n: int, field_name: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise PduError(f"{self.what} ends inside {field_name} (at octet {self.pos} of {len(self.data)})")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def octet(self, field_name: str) -> int:
        return self.take(1, field_name)[0]

    def rest(self) -> bytes:
        chunk = self.data[self.pos:]
        self.pos = len(self.data)
        return chunk

    def address(self, field_name: str) -> str:
        count = self.octet(field_name)
        toa = self.octet(field_name)
        return _decode_number(toa, self.take((count + 1) // 2, field_name), count)

    def smsc(self) -> str | None:
        length = self.octet("SMSC address")
        if length == 0:
            return None
        body = self.take(length, "SMSC address")
        return _decode_number(body[0], body[1:], (length - 1) * 2)

    def timestamp(self, field_name: str) -> datetime | None:
        return decode_timestamp(self.take(7, field_name))


# --- timestamps --------------------------------------------------------------


def encode_timestamp(when: datetime) -> bytes:
    """TP-SCTS: seven swapped-BCD octets, the last the zone in quarter hours."""
    if when.tzinfo is None:
        raise PduError("timestamps need a time zone")
    offset = when.utcoffset() or timedelta(0)
    quarters = int(offset.total_seconds() // 900)
    fields = [when.year % 100, when.month, when.day, when.hour, when.minute, when.second]
    out = bytes(((v % 10) << 4) | (v // 10) for v in fields)
    q = abs(quarters)
    tz = ((q % 10) << 4) | (q // 10) | (0x08 if quarters < 0 else 0)
    return out + bytes([tz])


def decode_timestamp(data: bytes) -> datetime | None:
    """TP-SCTS -> aware datetime, or None when the fields are not a valid time."""
    def swapped(b: int) -> int:
        return (b & 0x0F) * 10 + (b >> 4)

    try:
        year, month, day, hour, minute, second = (swapped(b) for b in data[:6])
        tz = data[6]
        quarters = (tz & 0x07) * 10 + (tz >> 4)
        if tz & 0x08:
            quarters = -quarters
        century = 1900 if year >= 90 else 2000  # the SMS era began in the 1990s
        return datetime(century + year, month, day, hour, minute, second,
                        tzinfo=timezone(timedelta(minutes=15 * quarters)))
    except (ValueError, IndexError):
        return None


# --- validity period ---------------------------------------------------------


def encode_validity(period: timedelta) -> int:
    """Relative TP-VP octet for at least ``period`` (TS 23.040 §9.2.3.12.1)."""
    minutes = period.total_seconds() / 60
    if minutes <= 12 * 60:
        return max(0, math.ceil(minutes / 5) - 1)
    if minutes <= 24 * 60:
        return 143 + math.ceil((minutes - 12 * 60) / 30)
    days = minutes / (24 * 60)
    if days <= 30:
        return 166 + math.ceil(days)
    return min(255, 192 + math.ceil(days / 7))


def decode_validity(vp: int) -> timedelta:
    if vp <= 143:
        return timedelta(minutes=(vp + 1) * 5)
    if vp <= 167:
        return timedelta(hours=12, minutes=(vp - 143) * 30)
    if vp <= 196:
        return timedelta(days=vp - 166)
    return timedelta(weeks=vp - 192)


# --- user data ---------------------------------------------------------------


def _concat_header(concat: Concat) -> bytes:
    return bytes([0x05, IEI_CONCAT_8, 0x03, concat.reference & 0xFF, concat.total, concat.sequence])


def encode_user_data(text: str, encoding: str, concat: Concat | None = None) -> tuple[int, bytes]:
    """-> (TP-UDL, TP-UD) for ``text`` in ``encoding``, with an optional concat header."""
    header = _concat_header(concat) if concat else b""
    if encoding == GSM7:
        septets = alphabet.encode(text)
        # Fill bits after the header align the text to a septet boundary.
        fill = (7 - len(header) * 8 % 7) % 7
        header_septets = (len(header) * 8 + fill) // 7
        return header_septets + len(septets), header + alphabet.pack(septets, fill)
    if encoding == UCS2:
        ud = header + text.encode("utf-16-be")
        return len(ud), ud
    raise PduError(f"cannot send text in encoding {encoding!r}")


def _parse_header(udh: bytes) -> tuple[list[tuple[int, bytes]], Concat | None]:
    elements: list[tuple[int, bytes]] = []
    concat = None
    i = 0
    while i + 2 <= len(udh):
        iei, length = udh[i], udh[i + 1]
        value = udh[i + 2:i + 2 + length]
        if len(value) < length:
            raise PduError("user data header element runs past the header")
        elements.append((iei, value))
        if iei == IEI_CONCAT_8 and length == 3 and value[1] and 1 <= value[2] <= value[1]:
            concat = Concat(value[0], value[1], value[2])
        elif iei == IEI_CONCAT_16 and length == 4 and value[2] and 1 <= value[3] <= value[2]:
            concat = Concat((value[0] << 8) | value[1], value[2], value[3])
        i += 2 + length
    return elements, concat


def dcs_alphabet(dcs: int) -> tuple[str, str | None]:
    """TP-DCS -> (encoding, problem). Reserved groups read as GSM-7, as TS 23.038 says."""
    group = dcs >> 4
    if group <= 0b0111:  # general data coding, with or without auto-deletion
        if dcs & 0x20:
            return EIGHT_BIT, "compressed text (not supported)"
        return {0: GSM7, 1: EIGHT_BIT, 2: UCS2, 3: GSM7}[(dcs >> 2) & 0x03], None
    if group in (0b1100, 0b1101):
        return GSM7, None
    if group == 0b1110:
        return UCS2, None
    if group == 0b1111:
        return (EIGHT_BIT if dcs & 0x04 else GSM7), None
    return GSM7, None


def decode_user_data(udl: int, ud: bytes, dcs: int, has_header: bool) -> UserData:
    """TP-UD -> UserData. Undecodable content keeps its raw octets and a reason, never raises."""
    encoding, problem = dcs_alphabet(dcs)
    header: list[tuple[int, bytes]] = []
    concat = None
    header_octets = 0
    try:
        if has_header:
            if not ud:
                raise PduError("header indicated but user data is empty")
            header_octets = ud[0] + 1
            if header_octets > len(ud):
                raise PduError("user data header is longer than the user data")
            header, concat = _parse_header(ud[1:header_octets])
        if problem:
            return UserData(encoding, None, concat, header, ud, problem)
        if encoding == GSM7:
            fill = (7 - header_octets * 8 % 7) % 7
            count = udl - (header_octets * 8 + fill) // 7
            if count < 0:
                raise PduError("user data length is shorter than its header")
            septets = alphabet.unpack(ud[header_octets:], count, fill)
            shifts = [iei for iei, _ in header if iei in (IEI_SINGLE_SHIFT, IEI_LOCKING_SHIFT)]
            if shifts:
                # Turkish, Spanish, Portuguese and Indian phones may use these; we only have the
                # default table, so the text is kept, and marked as possibly wrong.
                return UserData(encoding, alphabet.decode(septets), concat, header, ud,
                                "uses a national language table this box does not have; some letters may be wrong")
            return UserData(encoding, alphabet.decode(septets), concat, header, ud)
        body = ud[header_octets:udl]
        if encoding == UCS2:
            if len(body) % 2:
                body = body[:-1]
                problem = "odd number of octets in UCS-2 text; last octet dropped"
            return UserData(encoding, body.decode("utf-16-be", errors="replace"), concat, header, ud, problem)
        return UserData(encoding, None, concat, header, ud, "8-bit data, not text")
    except (PduError, ValueError) as exc:
        return UserData(encoding, None, concat, header, ud, str(exc))
