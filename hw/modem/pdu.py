"""SMS PDUs in both directions (3GPP TS 23.040, 23.038; 27.005 PDU mode).

What the box sends: SMS-SUBMIT with a status-report request, a relative
validity period and, for long texts, a concatenation header. What it reads:
SMS-DELIVER (inbound texts, possibly in parts) and SMS-STATUS-REPORT
(delivery reports). The simulator also needs the other direction of each
(decode SUBMIT, encode DELIVER and STATUS-REPORT), so they live here too.

All PDUs are hex strings as they travel over AT. A PDU read from a modem
starts with the SMSC address; the TPDU length an AT command reports tells
whether it is there (some modems leave it out of +CDS). The fields these
PDUs are made of (addresses, timestamps, validity, user data) are in
:mod:`hw.modem.fields`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hw.errors import PduError
from hw.modem.fields import (
    EIGHT_BIT,
    Concat,
    UserData,
    _Reader,
    decode_timestamp,
    decode_user_data,
    decode_validity,
    encode_address,
    encode_alphanumeric_address,
    encode_smsc,
    encode_timestamp,
    encode_user_data,
    encode_validity,
    status_meaning,
)
from hw.modem.segments import UCS2, Segmented, split

# The fields are TS 23.040's building blocks (hw.modem.fields); named here too for whoever reads PDUs.
__all__ = ["EIGHT_BIT", "Concat", "Deliver", "Pdu", "Reassembler", "StatusReport", "Submit", "UserData",
           "decode_deliver", "decode_incoming", "decode_status_report", "decode_submit", "decode_timestamp",
           "decode_validity", "encode_deliver", "encode_message", "encode_status_report", "encode_submit",
           "encode_timestamp", "encode_validity", "status_meaning"]


# TP-MTI values (lowest two bits of the first octet).
MTI_DELIVER = 0b00
MTI_SUBMIT = 0b01
MTI_STATUS_REPORT = 0b10


DEFAULT_VALIDITY = timedelta(days=1)



# --- small value types -------------------------------------------------------


@dataclass(frozen=True)
class Pdu:
    """An encoded PDU ready for AT+CMGS: hex with the SMSC part, and the TPDU length."""

    hex: str
    tpdu_length: int


@dataclass
class Submit:
    """A decoded SMS-SUBMIT (what a phone or this box hands to the network)."""

    recipient: str
    reference: int
    status_report: bool
    validity: timedelta | None
    user_data: UserData
    smsc: str | None = None

    @property
    def text(self) -> str | None:
        return self.user_data.text


@dataclass
class Deliver:
    """A decoded SMS-DELIVER (an inbound text, or one part of it)."""

    sender: str
    timestamp: datetime | None
    user_data: UserData
    smsc: str | None = None
    pid: int = 0
    dcs: int = 0

    @property
    def text(self) -> str | None:
        return self.user_data.text

    @property
    def concat(self) -> Concat | None:
        return self.user_data.concat


@dataclass
class StatusReport:
    """A decoded SMS-STATUS-REPORT: what became of a message we sent."""

    reference: int
    recipient: str
    status: int
    submitted: datetime | None
    discharged: datetime | None
    smsc: str | None = None

    @property
    def outcome(self) -> str:
        """``delivered``, ``pending``, ``failed`` or ``expired``."""
        return status_meaning(self.status)[0]

    @property
    def reason(self) -> str:
        return status_meaning(self.status)[1]


# --- SMS-SUBMIT --------------------------------------------------------------


def encode_submit(
    recipient: str,
    text: str,
    *,
    encoding: str | None = None,
    concat: Concat | None = None,
    status_report: bool = True,
    validity: timedelta | None = DEFAULT_VALIDITY,
    reference: int = 0,
    smsc: str | None = None,
) -> Pdu:
    """One SMS-SUBMIT PDU for one segment of text.

    ``reference`` 0 lets the modem choose TP-MR; it reports the value it used
    in ``+CMGS: <mr>``, and delivery reports carry it back.
    """
    encoding = encoding or split(text).encoding
    first = MTI_SUBMIT
    if validity is not None:
        first |= 0b10 << 3  # TP-VPF relative
    if status_report:
        first |= 0x20
    if concat:
        first |= 0x40
    udl, ud = encode_user_data(text, encoding, concat)
    dcs = 0x08 if encoding == UCS2 else 0x00
    tpdu = bytes([first, reference & 0xFF]) + encode_address(recipient) + bytes([0x00, dcs])
    if validity is not None:
        tpdu += bytes([encode_validity(validity)])
    tpdu += bytes([udl]) + ud
    if len(tpdu) > 164:
        raise PduError(f"SMS-SUBMIT would be {len(tpdu)} octets; segment too long for one SMS")
    return Pdu((encode_smsc(smsc) + tpdu).hex().upper(), len(tpdu))


def encode_message(
    recipient: str,
    text: str | Segmented,
    *,
    concat_reference: int = 0,
    status_report: bool = True,
    validity: timedelta | None = DEFAULT_VALIDITY,
) -> list[Pdu]:
    """Every SMS-SUBMIT needed for ``text``: one, or a concatenated series."""
    plan = text if isinstance(text, Segmented) else split(text)
    if not plan.concatenated:
        return [encode_submit(recipient, plan.parts[0], encoding=plan.encoding,
                              status_report=status_report, validity=validity)]
    return [
        encode_submit(recipient, part, encoding=plan.encoding,
                      concat=Concat(concat_reference & 0xFF, plan.segments, i),
                      status_report=status_report, validity=validity)
        for i, part in enumerate(plan.parts, start=1)
    ]


def _has_sca(data: bytes, tpdu_length: int | None) -> bool:
    """27.005 puts the SMSC address before the TPDU; a few modems leave it out of +CDS.

    When the TPDU length is known and the PDU is exactly that long, there is none.
    """
    return tpdu_length is None or len(data) != tpdu_length


def _from_hex(pdu_hex: str, what: str) -> bytes:
    try:
        return bytes.fromhex(pdu_hex.strip())
    except ValueError:
        raise PduError(f"{what} is not hexadecimal: {pdu_hex[:40]!r}") from None


def _open(pdu_hex: str, tpdu_length: int | None, what: str, mti: int) -> tuple[_Reader, str | None, int]:
    """Read the part every PDU type shares: SMSC address (if present) and first octet."""
    data = _from_hex(pdu_hex, what)
    r = _Reader(data, what)
    smsc = r.smsc() if _has_sca(data, tpdu_length) else None
    first = r.octet("first octet")
    if first & 0x03 != mti:
        raise PduError(f"not an {what} (message type {first & 0x03})")
    return r, smsc, first


def decode_submit(pdu_hex: str, tpdu_length: int | None = None) -> Submit:
    r, smsc, first = _open(pdu_hex, tpdu_length, "SMS-SUBMIT", MTI_SUBMIT)
    reference = r.octet("message reference")
    recipient = r.address("destination address")
    r.octet("protocol identifier")
    dcs = r.octet("data coding scheme")
    vpf = (first >> 3) & 0x03
    validity = None
    if vpf == 0b10:
        validity = decode_validity(r.octet("validity period"))
    elif vpf in (0b01, 0b11):
        r.take(7, "validity period")
    udl = r.octet("user data length")
    ud = r.rest()
    return Submit(recipient, reference, bool(first & 0x20), validity,
                  decode_user_data(udl, ud, dcs, bool(first & 0x40)), smsc)


# --- SMS-DELIVER and SMS-STATUS-REPORT (inbound) -------------------------------


def encode_deliver(
    sender: str,
    text: str,
    when: datetime,
    *,
    encoding: str | None = None,
    concat: Concat | None = None,
    smsc: str | None = "+8613800100500",
) -> Pdu:
    """An SMS-DELIVER as a modem would report it; used by the simulator."""
    encoding = encoding or split(text).encoding
    first = MTI_DELIVER | 0x04  # TP-MMS: no more messages waiting
    if concat:
        first |= 0x40
    if sender and not sender.lstrip("+").isdigit():
        addr = encode_alphanumeric_address(sender)
    else:
        addr = encode_address(sender)
    udl, ud = encode_user_data(text, encoding, concat)
    dcs = 0x08 if encoding == UCS2 else 0x00
    tpdu = bytes([first]) + addr + bytes([0x00, dcs]) + encode_timestamp(when) + bytes([udl]) + ud
    return Pdu((encode_smsc(smsc) + tpdu).hex().upper(), len(tpdu))


def encode_status_report(
    reference: int,
    recipient: str,
    status: int,
    submitted: datetime,
    discharged: datetime,
    *,
    smsc: str | None = "+8613800100500",
) -> Pdu:
    """An SMS-STATUS-REPORT as a modem would report it; used by the simulator."""
    first = MTI_STATUS_REPORT | 0x04
    tpdu = (bytes([first, reference & 0xFF]) + encode_address(recipient)
            + encode_timestamp(submitted) + encode_timestamp(discharged) + bytes([status & 0xFF]))
    return Pdu((encode_smsc(smsc) + tpdu).hex().upper(), len(tpdu))


def decode_deliver(pdu_hex: str, tpdu_length: int | None = None) -> Deliver:
    r, smsc, first = _open(pdu_hex, tpdu_length, "SMS-DELIVER", MTI_DELIVER)
    sender = r.address("originating address")
    pid = r.octet("protocol identifier")
    dcs = r.octet("data coding scheme")
    when = r.timestamp("service centre time stamp")
    udl = r.octet("user data length")
    return Deliver(sender, when, decode_user_data(udl, r.rest(), dcs, bool(first & 0x40)), smsc, pid, dcs)


def decode_status_report(pdu_hex: str, tpdu_length: int | None = None) -> StatusReport:
    r, smsc, first = _open(pdu_hex, tpdu_length, "SMS-STATUS-REPORT", MTI_STATUS_REPORT)
    reference = r.octet("message reference")
    recipient = r.address("recipient address")
    submitted = r.timestamp("service centre time stamp")
    discharged = r.timestamp("discharge time")
    status = r.octet("status")
    return StatusReport(reference, recipient, status, submitted, discharged, smsc)


def decode_incoming(pdu_hex: str, tpdu_length: int | None = None) -> Deliver | StatusReport:
    """A PDU the modem reported or stored: DELIVER or STATUS-REPORT, by its type."""
    data = _from_hex(pdu_hex, "PDU")
    offset = (data[0] + 1) if _has_sca(data, tpdu_length) and data else 0
    if offset >= len(data):
        raise PduError("PDU ends before its first octet")
    mti = data[offset] & 0x03
    if mti == MTI_DELIVER:
        return decode_deliver(pdu_hex, tpdu_length)
    if mti == MTI_STATUS_REPORT:
        return decode_status_report(pdu_hex, tpdu_length)
    raise PduError(f"unexpected message type {mti} in an inbound PDU")


# --- reassembly --------------------------------------------------------------


class Reassembler:
    """Collects the parts of concatenated inbound texts until each is whole.

    Keyed by sender and reference; a part seen twice (a modem that reports a
    message again after a restart) is kept once.
    """

    def __init__(self) -> None:
        self._parts: dict[tuple[str, int, int], dict[int, str]] = {}

    def add(self, deliver: Deliver) -> str | None:
        """Add a part; returns the whole text when the last part arrives, else None."""
        concat = deliver.concat
        text = deliver.text if deliver.text is not None else "\ufffd"
        if concat is None:
            return text
        key = (deliver.sender, concat.reference, concat.total)
        parts = self._parts.setdefault(key, {})
        parts[concat.sequence] = text
        if len(parts) == concat.total:
            del self._parts[key]
            return "".join(parts[i] for i in sorted(parts))
        return None

    @property
    def waiting(self) -> int:
        return len(self._parts)
