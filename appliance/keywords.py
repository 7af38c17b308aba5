"""Keeping the forbidden-word lists: the vendor's, signed, and the shop's own additions.

The vendor distributes its list as a text file signed with the same Ed25519
key as top-up codes, so a shop cannot trim it::

    # smsgenie keywords v1
    # issued 2026-11-25
    发票
    代开
    ...
    # signature ed25519:<base64 signature of everything above this line>

Importing a list replaces the previous vendor list whole. The shop's own
words are added and removed one by one, with a note.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import date

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.clock import Clock
from appliance.db import Database
from appliance.errors import KeywordListError
from appliance.forbidden import KeywordScreen, normalise

HEADER = "# smsgenie keywords v1"
SIGNATURE_PREFIX = "# signature ed25519:"
DOMAIN = b"smsgenie keywords v1\x00"


def read_words(text: str) -> list[str]:
    """One word per line; blank lines and '#' comments ignored; duplicates dropped."""
    words = []
    for line in text.splitlines():
        word = line.strip()
        if word and not word.startswith("#"):
            words.append(word)
    return list(dict.fromkeys(words))


def sign_list(private_key: Ed25519PrivateKey, words: list[str], issued: date) -> str:
    body = "\n".join([HEADER, f"# issued {issued.isoformat()}", *words]) + "\n"
    signature = private_key.sign(DOMAIN + body.encode("utf-8"))
    return body + SIGNATURE_PREFIX + base64.b64encode(signature).decode("ascii") + "\n"


def verify_list(text: str, public_key: Ed25519PublicKey) -> list[str]:
    """The words of a signed list; KeywordListError if it is not one, or not the vendor's."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    if not text.startswith(HEADER):
        raise KeywordListError(f"not a signed keyword list (it should start with {HEADER!r})")
    cut = text.rfind("\n" + SIGNATURE_PREFIX)
    if cut < 0:
        raise KeywordListError("the keyword list has no vendor signature line; ask the vendor for the signed file")
    body = text[:cut + 1]
    try:
        signature = base64.b64decode(text[cut + 1 + len(SIGNATURE_PREFIX):].strip(), validate=True)
        public_key.verify(signature, DOMAIN + body.encode("utf-8"))
    except (binascii.Error, ValueError, InvalidSignature):
        raise KeywordListError("the keyword list's signature does not match the vendor key: it was changed "
                               "after signing, or is not from your vendor") from None
    return read_words(body)


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

    def replace_vendor(self, words: list[str]) -> int:
        now = self.clock.time()
        with self.db.atomic() as conn:
            conn.execute("DELETE FROM keyword WHERE source = 'vendor'")
            conn.executemany("INSERT OR IGNORE INTO keyword (source, word, added_at) VALUES ('vendor', ?, ?)",
                             [(w, now) for w in words])
        return len(words)

    def add_local(self, words: list[str], note: str = "") -> int:
        added = 0
        with self.db.atomic() as conn:
            for word in words:
                word = word.strip()
                if not normalise(word):
                    raise KeywordListError(f"{word!r} has no letters or digits to match")
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
