"""What splitting on whole characters (grapheme clusters) costs per message, against splitting on code points.

``hw.modem.segments.split`` splits a long text only between extended grapheme
clusters (UAX #29). This times it per message for texts of one part (the
common case: counted, not split), three parts of Chinese with emoji, and
three parts of GSM-7, against the code-point splitter it replaced (kept
here, as it was, as the baseline), in one run.

    .venv/bin/python benchmarks/segments.py [--count 20000]
"""

from __future__ import annotations

import argparse
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hw.modem import alphabet  # noqa: E402
from hw.modem.segments import GSM7, PART_LIMIT, SINGLE_LIMIT, char_units, choose_encoding, split  # noqa: E402

TEXTS = {
    "one part, Chinese": "张伟您好！会员日：本周六全场9折，您现有128积分，凭此短信到店再送小礼品。回复TD退订【小王】",
    "three parts, Chinese with emoji": ("张伟您好👍🏽！会员日🇨🇳：本周六全场9折❤️，" * 6)[:180],
    "three parts, GSM-7": ("Dear customer, your order #1234 is ready at counter 2 (open 9-21h). " * 7)[:450],
}


def by_code_point(text: str) -> tuple[str, ...]:
    """The splitter before grapheme clusters: whole code points, counted in units."""
    encoding = choose_encoding(text)
    total = alphabet.septet_count(text) if encoding == GSM7 else len(text.encode("utf-16-le")) // 2
    if total <= SINGLE_LIMIT[encoding]:  # as it was: a one-part text counted, not walked
        return (text,)
    limit, parts, start, used = PART_LIMIT[encoding], [], 0, 0
    for i, ch in enumerate(text):
        size = char_units(ch, encoding)
        if used + size > limit:
            parts.append(text[start:i])
            start, used = i, 0
        used += size
    parts.append(text[start:])
    return tuple(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    args = parser.parse_args()
    for name, text in TEXTS.items():
        clusters = timeit.timeit(lambda t=text: split(t), number=args.count) / args.count
        points = timeit.timeit(lambda t=text: by_code_point(t), number=args.count) / args.count
        print(f"{name} ({split(text).segments} parts): {clusters * 1e6:.1f} us per message by grapheme cluster, "
              f"{points * 1e6:.1f} us by code point")


if __name__ == "__main__":
    main()
