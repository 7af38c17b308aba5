"""Top-up receipts: the box's signed word on its message record, read back to the vendor at each top-up.

The record's hash chain shows an edited row, but not a record wiped, or
rolled back to an old backup, and chained on from there. So the chain is
anchored off the box: each top-up gives a receipt code the shop reads (or
sends) back to the vendor, saying how many rows the record has had and the
link at its head, signed with the box's own key (appliance/boxkey.py). The
vendor keeps them; ``smsgenie vendor check-receipt`` checks one against the
box's public key, and a run of them in the order the shop gave them: rows
that go backwards, or the same count with another head, prove the record
was rolled back or rewritten.

Payload (32 bytes, big-endian)::

    version   1   format version, 1
    device    5   the box's device id
    serial    6   the serial of the top-up code this receipt answers
    at        4   when, seconds since 1970 (UTC)
    rows      4   the number of the record's last row (pruning does not lower it)
    balance   4   the credit balance after the top-up
    head      8   the first 8 bytes of the record's head link

The code is payload + signature (64 bytes) + CRC-16/CCITT (2 bytes), in
Crockford base32 in groups of five, as a top-up code is: 157 characters.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature

from appliance import crockford
from appliance.boxkey import BoxKey
from appliance.device import format_device_id
from appliance.errors import ExportCheckFailed, VendorKeyError
from appliance.vendor import parse_public_key

VERSION = 1
DOMAIN = b"smsgenie receipt v1\x00"
PAYLOAD = struct.Struct(">B5s6sIII8s")
CODE_BYTES = PAYLOAD.size + 64 + 2
CODE_CHARS = -(-CODE_BYTES * 8 // 5)


@dataclass(frozen=True)
class Receipt:
    device: str
    serial: str
    at: float
    rows: int
    balance: int
    head: str
    """The first 16 hex digits of the record's head link."""

    def __str__(self) -> str:
        return (f"box {self.device}, top-up {self.serial}, {datetime.fromtimestamp(self.at):%Y-%m-%d %H:%M}: "
                f"record {self.rows:,} rows, head {self.head}, balance {self.balance:,}")


def make(key: BoxKey, *, device: bytes, serial: bytes, at: float, rows: int, head: str, balance: int) -> str:
    payload = PAYLOAD.pack(VERSION, device, serial, int(at), rows, min(max(balance, 0), 2 ** 32 - 1),
                           bytes.fromhex(head)[:8])
    body = payload + key.sign(DOMAIN, payload)
    return crockford.encode_checked(body)


def read(code: str, box_key: str) -> Receipt:
    """Check a receipt against the box's public key (the ``ed25519:...`` line recorded for it)."""
    try:
        public, _ = parse_public_key(box_key)
    except VendorKeyError:
        raise ExportCheckFailed("the box key is not one (expected the ed25519:... line the box printed)") from None
    raw = crockford.normalise(code)
    if len(raw) != CODE_CHARS:
        raise ExportCheckFailed(f"a receipt has {CODE_CHARS} characters, this one {len(raw)}: copy it again, whole")
    try:
        body = crockford.decode_checked(raw)
    except crockford.CheckDigitsWrong:
        raise ExportCheckFailed("the receipt has a typo (its check digits do not match)") from None
    except ValueError as exc:
        raise ExportCheckFailed(f"the receipt has a typo: {exc}") from None
    payload, signature = body[:PAYLOAD.size], body[PAYLOAD.size:]
    version, device, serial, at, rows, balance, head = PAYLOAD.unpack(payload)
    if version != VERSION:
        raise ExportCheckFailed(f"this receipt is of format {version}; this program reads format {VERSION}")
    try:
        public.verify(signature, DOMAIN + payload)
    except InvalidSignature:
        raise ExportCheckFailed("the receipt was not signed by this box's key: it is from another box, or "
                                "was made up") from None
    return Receipt(format_device_id(device), crockford.encode(serial), float(at), rows, balance, head.hex())


def rollbacks(receipts: list[Receipt]) -> list[str]:
    """What a run of one box's receipts, in the order the shop gave them, shows went backwards."""
    problems = []
    for before, after in zip(receipts, receipts[1:]):
        if after.rows < before.rows:
            problems.append(f"the record went back from {before.rows:,} rows ({before.serial}) to "
                            f"{after.rows:,} ({after.serial}): it was rolled back or wiped")
        elif after.rows == before.rows and after.head != before.head:
            problems.append(f"the record has {after.rows:,} rows at {before.serial} and at {after.serial} "
                            f"with another head: it was rewritten")
        if after.at < before.at:
            problems.append(f"the box's clock went back between {before.serial} and {after.serial}")
    return problems
