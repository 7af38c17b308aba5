"""Top-up codes: prepaid credit the vendor signs and the box checks offline.

A code carries a small payload and the vendor's Ed25519 signature over it;
the box holds only the vendor's *public* key (``[vendor] public_key`` in its
config), so it can check a code without the internet and cannot make one.

Payload (20 bytes, big-endian)::

    version   1   format version, 1
    device    5   the box's device id (see appliance.device)
    serial    6   random, unique per code: spent serials are remembered
    credits   4   credits to add
    issued    2   days since 2024-01-01 (UTC)
    expires   2   last valid day, days since 2024-01-01 (box local date); 0 = never

Format 2 (22 bytes) adds, at the end::

    keywords  2   the oldest vendor keyword list (its version) the box must have to take the code

so new forbidden words reach boxes with the credit they buy: a box with an
older list refuses the code (nothing spent) until the list the vendor sent
with it is imported (appliance/keywords.py). The vendor mints format 2 only
when it asks for a list (``vendor mint --min-keywords N``).

The code is payload + signature (64 bytes) + CRC-16/CCITT of both (2 bytes),
in Crockford base32 (no I, L, O, U; read case-insensitively, O as 0, I and L
as 1), in groups of five: 138 characters (format 2: 141). The CRC catches a
typo before the signature is even checked, so a clerk hears "typo" rather
than "forged".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance import crockford
from appliance.device import format_device_id
from appliance.errors import (
    TopUpAlreadyRedeemed,
    TopUpExpired,
    TopUpForged,
    TopUpNeedsKeywords,
    TopUpTypo,
    TopUpUnsupported,
    TopUpWrongDevice,
)
from appliance.text import say

VERSION = 2
EPOCH = date(2024, 1, 1)
DOMAIN = b"smsgenie topup v1\x00"  # signatures over codes can never be mistaken for other signatures
#: The payload of each format this box reads.
PAYLOADS = {1: struct.Struct(">B5s6sIHH"), 2: struct.Struct(">B5s6sIHHH")}
SIGNATURE_BYTES = 64
#: Characters of a code of each format.
CHARS = {v: -(-(p.size + SIGNATURE_BYTES + 2) * 8 // 5) for v, p in PAYLOADS.items()}


def day_number(d: date) -> int:
    return (d - EPOCH).days


@dataclass(frozen=True)
class TopUpCode:
    device: bytes
    serial: bytes
    credits: int
    issued: date
    expires: date | None
    key_id: str
    """Fingerprint of the vendor key that signed it: spent serials are kept per key."""
    min_keywords: int = 0
    """The oldest vendor keyword list version the box must have to take it (0: any, or none)."""

    @property
    def serial_text(self) -> str:
        return crockford.encode(self.serial)


def sign(private_key: Ed25519PrivateKey, *, device: bytes, serial: bytes, credits: int, issued: date,
         expires: date | None, min_keywords: int = 0) -> str:
    """Make a code (the vendor's side); format 2 when it asks for a keyword list version."""
    if not 0 < credits < 2 ** 32:
        raise ValueError("credits must be between 1 and 4,294,967,295")
    if len(device) != 5 or len(serial) != 6:
        raise ValueError("device id must be 5 bytes and serial 6 bytes")
    if expires is not None and expires < issued:
        raise ValueError(f"the code would expire ({expires}) before it is issued ({issued})")
    if not 0 <= min_keywords < 2 ** 16:
        raise ValueError("the keyword list version must be between 0 and 65,535")
    fields = [device, serial, credits, day_number(issued), day_number(expires) if expires else 0]
    payload = (PAYLOADS[2].pack(2, *fields, min_keywords) if min_keywords else PAYLOADS[1].pack(1, *fields))
    body = payload + private_key.sign(DOMAIN + payload)
    return crockford.encode_checked(body)


def verify(code: str, public_key: Ed25519PublicKey, key_id: str, device: bytes, today: date) -> TopUpCode:
    """Check a code for this box; each reason for refusal has its own exception and message."""
    raw = crockford.normalise(code)
    if len(raw) not in CHARS.values():
        if len(raw) < CHARS[1]:
            raise TopUpTypo(say("the code is too short: {n} characters, a top-up code has {chars} (or {chars2}). "
                                "Copy it again, whole", n=len(raw), chars=CHARS[1], chars2=CHARS[2]))
        raise TopUpTypo(say("the code is too long: {n} characters, a top-up code has {chars} (or {chars2}). Copy "
                            "it again, whole", n=len(raw), chars=CHARS[1], chars2=CHARS[2]))
    try:
        body = crockford.decode_checked(raw)
    except crockford.CheckDigitsWrong:
        raise TopUpTypo(say("the code has a typo (its check digits do not match): check it character by "
                            "character")) from None
    except ValueError as exc:
        raise TopUpTypo(say("the code has a typo ({what}): check it character by character",
                            what=str(exc))) from None
    version = body[0]
    layout = PAYLOADS.get(version)
    if layout is None or len(body) != layout.size + SIGNATURE_BYTES:
        if layout is not None or version <= VERSION:
            raise TopUpTypo(say("the code has a typo (its length does not match its format): copy it again, whole"))
        raise TopUpUnsupported(say("this code is of format {version}; this box reads formats up to {latest}. Update "
                                   "the box's software, or ask the vendor for a format {latest} code",
                                   version=version, latest=VERSION))
    payload, signature = body[:layout.size], body[layout.size:]
    version, dev, serial, credits, issued, expires, *more = layout.unpack(payload)
    try:
        public_key.verify(signature, DOMAIN + payload)
    except InvalidSignature:
        raise TopUpForged(say("this code was not issued by your vendor (its signature does not match the vendor "
                              "key in the box's config). Ask your vendor for a new code")) from None
    if dev != device:
        raise TopUpWrongDevice(say("this code is for box {other}, and this box is {this}. Ask your vendor for a "
                                   "code for this box", other=format_device_id(dev), this=format_device_id(device)))
    expiry = EPOCH + timedelta(days=expires) if expires else None
    if expiry is not None and today > expiry:
        raise TopUpExpired(say("this code expired on {day}. Ask your vendor for a new one", day=expiry.isoformat()))
    return TopUpCode(dev, serial, credits, EPOCH + timedelta(days=issued), expiry, key_id, *more)


def redeem(queue, code: TopUpCode, key=None) -> int:
    """Credit a verified code once; returns the new balance.

    The spent serial and the ledger entry commit in one transaction: after a
    crash the code is either spent *and* credited, or neither. Given the box's
    key (appliance/boxkey.py), the receipt for the vendor is made and kept in
    the same transaction (:func:`receipt_of`).
    """
    ledger = queue.ledger
    with queue.db.atomic() as conn:
        if code.min_keywords:
            _check_keywords(conn, code.min_keywords)
        spent = conn.execute("SELECT redeemed_at, credits FROM spent_code WHERE key_id = ? AND serial = ?",
                             (code.key_id, code.serial_text)).fetchone()
        if spent:
            when = datetime.fromtimestamp(spent["redeemed_at"]).strftime("%Y-%m-%d %H:%M")
            raise TopUpAlreadyRedeemed(say("this code was already redeemed on {when} (+{credits} credits); a code "
                                           "counts once", when=when, credits=spent["credits"]))
        balance = ledger.record(conn, "topup", code.credits, code_serial=code.serial_text,
                                note=say("top-up code {serial}", serial=code.serial_text))
        ledger_id = conn.execute("SELECT MAX(id) FROM ledger").fetchone()[0]
        receipt_code = None
        if key is not None:
            from appliance import receipt  # noqa: PLC0415 - it builds on this module

            rows, head = queue.audit.state(conn)
            receipt_code = receipt.make(key, device=code.device, serial=code.serial, at=queue.clock.time(),
                                        rows=rows, head=head, balance=balance)
        conn.execute("INSERT INTO spent_code (key_id, serial, redeemed_at, credits, ledger_id, receipt)"
                     " VALUES (?, ?, ?, ?, ?, ?)",
                     (code.key_id, code.serial_text, queue.clock.time(), code.credits, ledger_id, receipt_code))
        return balance


def _check_keywords(conn, needed: int) -> None:
    from appliance.keywords import KeywordStore  # noqa: PLC0415 - the screen is only needed here

    current = KeywordStore.vendor_list_in(conn)
    if current is None or current.version < needed:
        has = say("version {v}", v=current.version) if current is not None else say("no vendor list")
        raise TopUpNeedsKeywords(say("this code needs the vendor's keyword list version {needed} or newer, and "
                                     "this box has {has}: import the list the vendor sent with the code (admin "
                                     "page, or 'smsgenie keywords import FILE'), then enter the code again. Nothing "
                                     "was spent", needed=needed, has=has))


def receipt_of(queue, code: TopUpCode) -> str | None:
    """The receipt the top-up with ``code`` gave, to read back to the vendor (None if made without a key)."""
    row = queue.db.execute("SELECT receipt FROM spent_code WHERE key_id = ? AND serial = ?",
                           (code.key_id, code.serial_text)).fetchone()
    return row[0] if row else None
