"""Keeping the forbidden-word lists: the vendor's, signed, and the shop's own additions.

The vendor distributes its list as a text file signed with the same Ed25519
key as top-up codes, so a shop cannot trim it::

    # smsgenie keywords v2
    # version 7
    # issued 2026-11-25
    发票
    代开
    ...
    # signature ed25519:<base64 signature of everything above this line>

Importing a list replaces the previous vendor list whole, and only with a
newer one: the version is signed with the words, and a box refuses a list
older than the one it has, so an old list (with fewer words) cannot be
played back to it. A list of the first format (no version line) counts as
version 0. The vendor's version and date are kept with the words (the
``kv`` table), in the same transaction.

The package carries the vendor's baseline words (appliance/data/
keywords-baseline.txt, with their version): the vendor signs them
(``smsgenie vendor sign-keywords --baseline``) and the image installs the
signed file, which the daemon imports at start when it is newer than what
the box has. A box with no vendor list refuses marketing lists
(appliance/intake.py). The shop's own words are added and removed one by
one, with a note.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance import kv
from appliance.clock import Clock
from appliance.db import Database
from appliance.errors import KeywordListError
from appliance.forbidden import KeywordScreen, normalise
from appliance.text import say

HEADER = "# smsgenie keywords v2"
HEADER_V1 = "# smsgenie keywords v1"
SIGNATURE_PREFIX = "# signature ed25519:"
DOMAIN = b"smsgenie keywords v1\x00"
BASELINE = "keywords-baseline.txt"


@dataclass(frozen=True)
class VendorList:
    words: list[str]
    version: int
    """0 for a list of the first format, which had none."""
    issued: str
    """The day the vendor signed it, YYYY-MM-DD."""


def baseline() -> tuple[int, list[str]]:
    """The vendor's baseline words shipped with the package, and their version (to be signed by the vendor)."""
    from importlib import resources  # noqa: PLC0415

    text = resources.files("appliance").joinpath("data", BASELINE).read_text(encoding="utf-8")
    return _header_int(text, "# version "), read_words(text)


def _header_int(text: str, prefix: str) -> int:
    for line in text.splitlines():
        if line.startswith(prefix):
            try:
                return int(line[len(prefix):].strip())
            except ValueError:
                raise KeywordListError(say("the keyword list's {line!r} line is not a number",
                                           line=prefix.strip("# "))) from None
        if line and not line.startswith("#"):
            break
    return 0


def read_words(text: str) -> list[str]:
    """One word per line; blank lines and '#' comments ignored; duplicates dropped."""
    words = []
    for line in text.splitlines():
        word = line.strip()
        if word and not word.startswith("#"):
            words.append(word)
    return list(dict.fromkeys(words))


def sign_list(private_key: Ed25519PrivateKey, words: list[str], issued: date, version: int) -> str:
    """The vendor's side: a signed list of ``words``, numbered ``version`` (each list a higher one)."""
    if version < 1:
        raise KeywordListError(say("a keyword list's version is a whole number from 1, higher for each new list"))
    body = "\n".join([HEADER, f"# version {version}", f"# issued {issued.isoformat()}", *words]) + "\n"
    signature = private_key.sign(DOMAIN + body.encode("utf-8"))
    return body + SIGNATURE_PREFIX + base64.b64encode(signature).decode("ascii") + "\n"


def verify_list(text: str, public_key: Ed25519PublicKey) -> VendorList:
    """A signed list's words, version and date; KeywordListError if it is not one, or not the vendor's."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    if not text.startswith((HEADER, HEADER_V1)):
        raise KeywordListError(say("not a signed keyword list (it should start with {header!r})", header=HEADER))
    cut = text.rfind("\n" + SIGNATURE_PREFIX)
    if cut < 0:
        raise KeywordListError(say("the keyword list has no vendor signature line; ask the vendor for the signed "
                                   "file"))
    body = text[:cut + 1]
    try:
        signature = base64.b64decode(text[cut + 1 + len(SIGNATURE_PREFIX):].strip(), validate=True)
        public_key.verify(signature, DOMAIN + body.encode("utf-8"))
    except (binascii.Error, ValueError, InvalidSignature):
        raise KeywordListError(say("the keyword list's signature does not match the vendor key: it was changed "
                                   "after signing, or is not from your vendor")) from None
    issued = next((line[len("# issued "):].strip() for line in body.splitlines() if line.startswith("# issued ")), "")
    return VendorList(read_words(body), _header_int(body, "# version ") if text.startswith(HEADER) else 0, issued)


@dataclass(frozen=True)
class Keyword:
    word: str
    source: str
    added_at: float
    note: str | None


class KeywordStore:
    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock

    def replace_vendor(self, signed: VendorList, *, only_newer: bool = False) -> bool:
        """Put a newer vendor list in place of the one the box has, whole; False if the box has this
        version already (nothing changes). An older one is refused: a list never goes back (with
        ``only_newer``, as at start with the image's list, it is passed over: False)."""
        now = self.clock.time()
        with self.db.atomic() as conn:
            current = self.vendor_list_in(conn)
            if current is not None and signed.version < current.version and only_newer:
                return False
            if current is not None and signed.version < current.version:
                raise KeywordListError(say("this is the vendor's keyword list version {given}; the box has version "
                                           "{has} already, and a list never goes back to an older one. Ask the "
                                           "vendor for their newest list", given=signed.version, has=current.version))
            if current is not None and signed.version == current.version and signed.version:
                return False
            conn.execute("DELETE FROM keyword WHERE source = 'vendor'")
            conn.executemany("INSERT OR IGNORE INTO keyword (source, word, added_at) VALUES ('vendor', ?, ?)",
                             [(w, now) for w in signed.words])
            kv.put(conn, "vendor_keywords", json.dumps({"version": signed.version, "issued": signed.issued,
                                                        "words": len(signed.words)}))
        return True

    def vendor_list(self) -> VendorList | None:
        """The vendor list the box has (version, date; ``words`` is empty: read them with :meth:`all`)."""
        return self.vendor_list_in(self.db.conn)

    @staticmethod
    def vendor_list_in(conn) -> VendorList | None:
        """:meth:`vendor_list` inside the caller's transaction."""
        stored = kv.get(conn, "vendor_keywords")
        if stored is not None:
            data = json.loads(stored)
            return VendorList([], data["version"], data["issued"])
        if conn.execute("SELECT 1 FROM keyword WHERE source = 'vendor' LIMIT 1").fetchone():
            return VendorList([], 0, "")  # imported before lists had versions
        return None

    def add_local(self, words: list[str], note: str = "") -> int:
        added = 0
        with self.db.atomic() as conn:
            for word in words:
                word = word.strip()
                if not normalise(word):
                    raise KeywordListError(say("{word!r} has no letters or digits to match", word=word))
                added += conn.execute("INSERT OR IGNORE INTO keyword (source, word, added_at, note)"
                                      " VALUES ('local', ?, ?, ?)", (word, self.clock.time(), note or None)).rowcount
        return added

    def remove_local(self, word: str) -> bool:
        with self.db.atomic() as conn:
            return conn.execute("DELETE FROM keyword WHERE source = 'local' AND word = ?", (word,)).rowcount == 1

    def all(self) -> list[Keyword]:
        rows = self.db.execute("SELECT word, source, added_at, note FROM keyword ORDER BY source DESC, word")
        return [Keyword(**dict(r)) for r in rows]

    def screen(self) -> KeywordScreen:
        return KeywordScreen((r["word"], r["source"]) for r in self.db.execute("SELECT word, source FROM keyword"))


def import_file(store: KeywordStore, path: str | os.PathLike, public_key: Ed25519PublicKey, *,
                only_newer: bool = False) -> tuple[VendorList, bool]:
    """Check a signed list file against the vendor key and import it (see :meth:`KeywordStore.replace_vendor`);
    returns the list and whether the box took it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeywordListError(say("cannot read the keyword list {path}: {why}", path=str(path),
                                   why=str(exc))) from None
    signed = verify_list(text, public_key)
    return signed, store.replace_vendor(signed, only_newer=only_newer)
