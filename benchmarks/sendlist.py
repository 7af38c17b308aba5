"""How big a send list the box handles: 100,000 rows through read + normalise + screen + cost.

(1) A 100,000-row CSV (GBK, as Excel writes it) and the same list as XLSX,
    each through the whole preview (appliance.preview.prepare): seconds and
    peak memory (RSS), each in a fresh process so one does not inflate the
    other. Targets: CSV <= 5 s, peak RSS <= 200 MB.
(2) The forbidden-word screen with 10,000 words against a naive loop
    (normalise once, then `word in text` for every word), on the same
    texts: the ratio of their times.

    .venv/bin/python benchmarks/sendlist.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PREFIXES = ["138", "139", "150", "187", "130", "186", "166", "133", "189", "199", "192", "135", "158", "132"]
TEMPLATE = "{姓名}您好！会员日：本周六全场9折，您现有{积分}积分，凭此短信到店再送小礼品。回复TD退订"

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
from appliance.preview import prepare
from appliance.forbidden import KeywordScreen
from appliance.sendlist import open_table
from appliance.template import Template
words = [w for w in open({words!r}, encoding="utf-8").read().split()]
screen = KeywordScreen((w, "vendor") for w in words)
t = time.perf_counter()
with open_table({path!r}) as table:
    preview = prepare(table, Template({template!r}, "【小王】"), region="CN", screen=screen,
                      opted_out=set(), balance=0)
seconds = time.perf_counter() - t
print(json.dumps({{"seconds": seconds, "accepted": len(preview.accepted), "refused": len(preview.refused),
                  "credits": preview.credits_needed,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def make_rows(n: int, rng: random.Random):
    for i in range(n):
        number = f"{rng.choice(PREFIXES)}{rng.randrange(10**8):08d}"
        yield [number if i % 3 else f"{number[:3]} {number[3:7]} {number[7:]}", f"顾客{i}", str(rng.randrange(1000))]


def random_words(n: int, rng: random.Random) -> list[str]:
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    return list(dict.fromkeys("".join(rng.choice(chars) for _ in range(rng.randint(2, 4))) for _ in range(n * 2)))[:n]


def run_child(root: Path, path: Path, words: Path) -> dict:
    code = CHILD.format(root=str(root), path=str(path), words=str(words), template=TEMPLATE)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def screen_ratio(words: list[str], texts: list[str]) -> dict:
    from appliance.forbidden import KeywordScreen, normalise

    screen = KeywordScreen((w, "vendor") for w in words)
    keys = [normalise(w) for w in words]
    t = time.perf_counter()
    fast = [screen.find(text) for text in texts]
    fast_s = time.perf_counter() - t
    t = time.perf_counter()
    slow = []
    for text in texts:
        norm = normalise(text)
        slow.append(next((w for w in keys if w in norm), None))
    slow_s = time.perf_counter() - t
    # Same verdicts (the first word found may differ: Aho-Corasick reports by position in the text).
    assert [h is not None for h in fast] == [w is not None for w in slow]
    return {"words": len(words), "texts": len(texts), "ahocorasick_s": round(fast_s, 4), "naive_s": round(slow_s, 3),
            "ratio": round(slow_s / fast_s, 1), "hits": sum(1 for h in fast if h)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import openpyxl

    root = Path(__file__).resolve().parents[1]
    rng = random.Random(20261125)
    result = {"machine": f"{platform.machine()} {platform.python_implementation()} {platform.python_version()}"}
    with tempfile.TemporaryDirectory(prefix="smsgenie-bench-") as tmp:
        tmp = Path(tmp)
        words = random_words(10_000, rng)
        words_file = tmp / "words.txt"
        words_file.write_text("\n".join(words), encoding="utf-8")
        rows = list(make_rows(args.rows, rng))
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")
        writer.writerow(["手机号", "姓名", "积分"])
        writer.writerows(rows)
        csv_path = tmp / "list.csv"
        csv_path.write_bytes(buf.getvalue().encode("gbk"))
        book = openpyxl.Workbook(write_only=True)
        sheet = book.create_sheet()
        sheet.append(["手机号", "姓名", "积分"])
        for row in rows:
            sheet.append(row)
        xlsx_path = tmp / "list.xlsx"
        book.save(xlsx_path)
        del rows, buf
        result["csv"] = run_child(root, csv_path, words_file)
        result["xlsx"] = run_child(root, xlsx_path, words_file)
        texts = [TEMPLATE.replace("{姓名}", f"顾客{i}").replace("{积分}", str(i)) for i in range(1000)]
        texts += [t + rng.choice(words) for t in texts[:50]]  # some that hit
        result["screen"] = screen_ratio(words, texts)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return
    print(f"machine: {result['machine']}")
    for kind in ("csv", "xlsx"):
        r = result[kind]
        print(f"{args.rows} rows, {kind.upper()}: {r['seconds']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB "
              f"({r['accepted']} accepted, {r['refused']} refused, {r['credits']} credits)")
    s = result["screen"]
    print(f"keyword screen, {s['words']} words on {s['texts']} texts: Aho-Corasick {s['ahocorasick_s']} s, "
          f"naive loop {s['naive_s']} s: {s['ratio']}x faster")


if __name__ == "__main__":
    main()
