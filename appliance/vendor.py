"""The vendor's side of credits: the signing key, and minting top-up codes.

The private key (``vendor.key``) stays with the vendor, never on a box. A
box gets the one-line public key (``vendor.pub``) in its config::

    [vendor]
    public_key = "ed25519:...."

An OEM vendor replaces that line with their own key; codes signed with any
other key are refused as forged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from datetime import date
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance import crockford, topup
from appliance.errors import VendorKeyError

PREFIX = "ed25519:"
KEY_FILE = "vendor.key"
PUB_FILE = "vendor.pub"


def public_key_line(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PREFIX + base64.b64encode(raw).decode("ascii")


def parse_public_key(line: str) -> tuple[Ed25519PublicKey, str]:
    """The config's public key line -> (key, key id). The key id is its short fingerprint."""
    text = line.strip()
    if not text.startswith(PREFIX):
        raise VendorKeyError(f"the vendor public key must start with {PREFIX!r} (the line from vendor.pub)")
    try:
        raw = base64.b64decode(text[len(PREFIX):], validate=True)
        key = Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error):
        raise VendorKeyError("the vendor public key is damaged: copy the line from vendor.pub again") from None
    return key, key_id(raw)


def key_id(raw_public: bytes) -> str:
    """A short fingerprint of a public key, to show and to tell keys apart."""
    return crockford.encode(hashlib.sha256(raw_public).digest()[:5])


def keygen(out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write vendor.key (0600) and vendor.pub into ``out_dir``; never overwrite a key."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_path, pub_path = out / KEY_FILE, out / PUB_FILE
    for path in (key_path, pub_path):
        if path.exists():
            raise VendorKeyError(f"{path} already exists: a vendor key is never overwritten (codes signed "
                                 f"with it would stop working on new boxes). Choose another --out")
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    pub_path.write_text(public_key_line(private.public_key()) + "\n", encoding="ascii")
    return key_path, pub_path


def load_private_key(path: str | os.PathLike) -> Ed25519PrivateKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise VendorKeyError(f"cannot read the vendor key {path}: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise VendorKeyError(f"{path} is not a vendor key (expected the vendor.key from 'vendor keygen')") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise VendorKeyError(f"{path} is not an Ed25519 key")
    return key


def mint(private_key: Ed25519PrivateKey, device: bytes, credits: int, *, count: int = 1,
         expires: date | None = None, issued: date | None = None, min_keywords: int = 0) -> list[tuple[str, str]]:
    """``count`` fresh codes for ``device``; returns (serial, code) pairs. With ``min_keywords``, a box takes
    them only once it has the vendor's keyword list of that version or newer."""
    if count < 1:
        raise ValueError("count must be at least 1")
    issued = issued or date.today()
    out = []
    for _ in range(count):
        serial = os.urandom(6)
        code = topup.sign(private_key, device=device, serial=serial, credits=credits, issued=issued,
                          expires=expires, min_keywords=min_keywords)
        out.append((crockford.encode(serial), code))
    return out


def write_codes_csv(path: str | os.PathLike, codes: list[tuple[int, str]], device: bytes, credits: int,
                    expires: date | None) -> None:
    """serial,device,credits,expires,code rows in a new file readable by this user only (codes are money).

    Raises FileExistsError rather than write over another file."""
    import csv  # noqa: PLC0415

    from appliance.device import format_device_id  # noqa: PLC0415

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["serial", "device", "credits", "expires", "code"])
        for serial, code in codes:
            writer.writerow([serial, format_device_id(device), credits, expires or "", code])
