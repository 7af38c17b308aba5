"""The forbidden-word screen: the vendor's signed keyword list plus the shop's own.

Matching is Aho-Corasick (pyahocorasick) over a normalised form of the
text, the same normalisation as the keywords, so the usual evasions do not
work: full-width letters (ＡＢＣ), case, spaces or punctuation slipped
between characters (发 票, 发.票, 发*票), zero-width and other invisible
characters, combining marks and variation selectors slipped onto a
character (发\u0301票), accents (café is cafe), traditional characters
(發票) where the character table maps them one to one, and letters of other
scripts that look like Latin ones (Cyrillic саsino, Greek ΒΟΝUS: Unicode's
confusables, UTS #39).

The normal form: each look-alike letter replaced by its prototype, then
case-folded and compatibility-decomposed (NFKD), traditional characters made
simplified, and every mark, separator, punctuation, symbol, control, format
character and Hangul filler removed. Each of those steps works character by
character, so one translate table does them all, and a text normalised in
pieces (a template's fixed text once, each row's values alone) is the text
normalised whole.

A match names the keyword as it was listed, so the report can say what was
found.

The automaton is built over UTF-8 bytes (each byte stored as one Latin-1
character), not over Chinese characters: pyahocorasick scans a node's
children one by one, and a list of 10,000 Chinese words gives the root
thousands of children, which made matching 30 times slower. With bytes a
node has at most 256, and since UTF-8 is self-synchronising a match can
only start and end on whole characters.
"""

from __future__ import annotations

import functools
import os
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import Iterable

import ahocorasick

#: Pieces of text (a template's fixed parts) whose normal form a screen remembers.
PIECES_KEPT = 4096
#: Unicode categories dropped before matching: separators, punctuation, symbols, controls.
_DROP = ("Z", "P", "S", "C", "M")
#: Letters by category that show nothing (Unicode's default-ignorable Hangul fillers): dropped too.
_FILLERS = (0x115F, 0x1160, 0x3164, 0xFFA0)


@functools.lru_cache(maxsize=1)
def _t2s_table() -> dict[int, str]:
    """Traditional -> simplified, one character to one, from OpenCC's character table."""
    import opencc  # noqa: PLC0415 - its dictionary is only read here

    path = os.path.join(os.path.dirname(opencc.__file__), "dictionary", "TSCharacters.txt")
    table: dict[int, str] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            trad, _, simp = line.rstrip("\n").partition("\t")
            simp = simp.split(" ")[0]
            if len(trad) == 1 and len(simp) == 1 and trad != simp:
                table[ord(trad)] = simp
    return table


def _confusables() -> dict[int, str]:
    """Letters and digits that look like others -> the one they look like (their prototype in Unicode's
    confusables, UTS #39: Cyrillic а and Greek ο are Latin a and o), for characters beyond ASCII
    (appliance/data/confusables.tsv, made by scripts/confusables).

    Only letters and digits are mapped: a dash or a dot that looks like a letter is still a separator,
    dropped as before (发—票 is 发票), not turned into the letter."""
    text = resources.files("appliance").joinpath("data/confusables.tsv").read_text(encoding="utf-8")
    table = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        source, prototype = line.split("\t")
        ch = chr(int(source, 16))
        # a compatibility form of ASCII (full width Ｉ, bold 𝐈) is that letter, as NFKD says: not the
        # letter it looks like (l), which the ASCII letter itself is not mapped to either
        if unicodedata.category(ch)[0] in "LN" and not unicodedata.normalize("NFKD", ch.casefold()).isascii():
            table[ord(ch)] = "".join(chr(int(p, 16)) for p in prototype.split())
    return table


@functools.lru_cache(maxsize=1)
def _steps() -> tuple[dict[int, str], dict[int, str | None]]:
    """(look-alike -> prototype, then traditional -> simplified and what matching ignores -> nothing)."""
    drop: dict[int, str | None] = dict(_t2s_table())
    for cp in range(0x10000):
        if unicodedata.category(chr(cp)).startswith(_DROP):
            drop[cp] = None
    for cp in _FILLERS:
        drop[cp] = None
    return _confusables(), drop


@functools.lru_cache(maxsize=4096)
def _settle(ch: str) -> str:
    """One character's normal form: its prototype if it is a look-alike, case-folded, decomposed (NFKD),
    traditional made simplified, what matching ignores dropped - again until nothing changes (a prototype
    may be a capital, a decomposition may fold further), so normalising twice is normalising once."""
    confusable, drop = _steps()
    text = ch
    for _ in range(8):
        after = unicodedata.normalize("NFKD", text.translate(confusable).casefold()).translate(drop)
        after = "".join(c for c in after if not unicodedata.category(c).startswith(_DROP))
        if after == text:
            break
        text = after
    return text


@functools.lru_cache(maxsize=1)
def _table() -> dict[int, str | None]:
    """Every character of the Basic Multilingual Plane whose normal form is not itself -> that form.

    Case folding and NFKD work character by character (the canonical reordering NFKD also does moves only
    combining marks, and those are dropped), so one translate with this table normalises a whole text.
    Built once (a tenth of a second); characters beyond the plane (emoji, mathematical letters) are
    settled one by one."""
    table: dict[int, str | None] = {}
    for cp in range(0x10000):
        ch = chr(cp)
        settled = _settle.__wrapped__(ch)
        if settled != ch:
            table[cp] = settled or None
    return table


#: ASCII's share of the table: letters folded, everything matching ignores (space, punctuation) dropped.
_ASCII = {cp: (None if unicodedata.category(chr(cp)).startswith(_DROP) else chr(cp).casefold()) for cp in range(128)}


def normalise(text: str) -> str:
    """The form texts and keywords are compared in."""
    if text.isascii():  # no look-alike, nothing to decompose: one translate does the rest
        return text.translate(_ASCII)
    out = text.translate(_table())
    if out.isascii() or max(out) < "\U00010000":
        return out
    return "".join(_settle(ch) if ch >= "\U00010000" else ch for ch in out)


def _bytes_key(normalised: str) -> str:
    return normalised.encode("utf-8").decode("latin-1")


@dataclass(frozen=True)
class Hit:
    word: str
    source: str
    """"vendor" or "local"."""


class KeywordScreen:
    def __init__(self, words: Iterable[tuple[str, str]]):
        self._automaton = ahocorasick.Automaton()
        count = 0
        for word, source in words:
            key = _bytes_key(normalise(word))
            if key and key not in self._automaton:
                self._automaton.add_word(key, Hit(word, source))
                count += 1
        self.size = count
        self._pieces: dict[str, str] = {}
        if count:
            self._automaton.make_automaton()

    def find(self, text: str) -> Hit | None:
        """The first forbidden word in ``text``, or None."""
        if not self.size:
            return None
        return self._first(_bytes_key(normalise(text)))

    def find_pieces(self, pieces: list[str]) -> Hit | None:
        """:meth:`find` of ``"".join(pieces)``, normalising each piece alone (the same, since normalising
        works character by character): a template's fixed text is normalised once (remembered) and only
        the merged values per row."""
        if not self.size:
            return None
        known = self._pieces
        keys = []
        for piece in pieces:
            key = known.get(piece)
            if key is None:
                key = _bytes_key(normalise(piece))
                if len(known) < PIECES_KEPT:  # the template's pieces come first, and stay
                    known[piece] = key
            keys.append(key)
        return self._first("".join(keys))

    def _first(self, key: str) -> Hit | None:
        for _end, hit in self._automaton.iter(key):
            return hit
        return None
