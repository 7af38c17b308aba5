"""The forbidden-word screen: the vendor's signed keyword list plus the shop's own.

Matching is Aho-Corasick (pyahocorasick) over a normalised form of the
text, the same normalisation as the keywords, so the usual evasions do not
work: full-width letters (ＡＢＣ), case, spaces or punctuation slipped
between characters (发 票, 发.票, 发*票), and traditional characters (發票)
where the character table maps them one to one.

A match names the keyword as it was listed, so the report can say what was
found.
"""

from __future__ import annotations

import functools
import os
import unicodedata
from dataclasses import dataclass
from typing import Iterable

import ahocorasick

#: Unicode categories dropped before matching: separators, punctuation, symbols, controls.
_DROP = ("Z", "P", "S", "C")


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


@functools.lru_cache(maxsize=4096)
def _keep(ch: str) -> bool:
    return not unicodedata.category(ch).startswith(_DROP)


def normalise(text: str) -> str:
    """The form texts and keywords are compared in."""
    folded = unicodedata.normalize("NFKC", text).casefold().translate(_t2s_table())
    return "".join(ch for ch in folded if _keep(ch))


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
            key = normalise(word)
            if key and key not in self._automaton:
                self._automaton.add_word(key, Hit(word, source))
                count += 1
        self.size = count
        if count:
            self._automaton.make_automaton()

    def find(self, text: str) -> Hit | None:
        """The first forbidden word in ``text``, or None."""
        if not self.size:
            return None
        for _end, hit in self._automaton.iter(normalise(text)):
            return hit
        return None
