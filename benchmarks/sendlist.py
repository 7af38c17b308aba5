"""How fast and how lean the box reads a send list: read, normalise, screen, price and queue, in one run.

For each list - CSV in UTF-8, CSV in GBK (as Excel writes it) and XLSX, at
the sizes given (default 100,000 rows; ``--rows 100000 1000000`` for both) -
a fresh process runs the box's own intake over a box whose forbidden-word
list has 10,000 words (the vendor's), two ways:

- ``check``: what the page's preview and ``send --dry-run`` do (read every
  row, decide, price, count);
- ``queue``: what a real send does (the same, and every accepted message
  written to the queue).

Each prints seconds and the process's peak RSS (VmHWM; the import of the
box's code is outside the seconds but inside the RSS). With
``--baseline REV`` the same runs are made, in the same sitting and turn
about, on the code of git revision REV (exported to a temporary folder), so
the two columns are measured on one machine under one load.

Goals (issue 14): 100,000 rows <= 1.5 s for CSV and <= 3 s for XLSX,
1,000,000 rows of CSV <= 15 s, and never above 150 MB RSS.

    .venv/bin/python benchmarks/sendlist.py [--rows 100000 [1000000]] [--baseline REV] [--kinds csv-utf8 ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREFIXES = ["138", "139", "150", "187", "130", "186", "166", "133", "189", "199", "192", "135", "158", "132"]
TEMPLATE = "{姓名}您好！会员日：本周六全场9折，您现有{积分}积分，凭此短信到店再送小礼品。回复TD退订"
KINDS = ("csv-utf8", "csv-gbk", "xlsx")
GOAL_SECONDS = {("csv", 100_000): 1.5, ("xlsx", 100_000): 3.0, ("csv", 1_000_000): 15.0}
GOAL_RSS_MB = 150

# Runs in a fresh process, on the code at CODE (this checkout or a baseline's export). It uses the intake's
# streaming queue_file where the code has it, and check_file + queue_checked where it does not (older code).
CHILD = r"""
import json, sys, time
sys.path.insert(0, {code!r})
from appliance.clock import SystemClock
from appliance.config import Config
from appliance.db import Database
from appliance.intake import Intake
from appliance.keywords import KeywordStore
from appliance.settings import ShopSettings
data = {data!r}
db = Database.in_data_dir(data)
clock = SystemClock()
words = open({words!r}, encoding="utf-8").read().split()
try:  # a signed, versioned list since issue 15; a plain list of words before
    from appliance.keywords import VendorList
    KeywordStore(db, clock).replace_vendor(VendorList(words, 1, "2026-11-01"))
except ImportError:
    KeywordStore(db, clock).replace_vendor(words)
shop = ShopSettings(data)
shop.set("signature", "【小王】")
shop.set("max_list_rows", 5_000_000)
try:  # the rows are not in a customer book: the gate on the shop's word (benchmarks/customers.py gates them)
    shop.set("consent_gate", "paper")
except Exception:  # a baseline before issue 16 has no gate
    pass
shop.close()
intake = Intake(db, clock, Config(data_dir=data, service_code="YL08"))
t = time.perf_counter()
if {mode!r} == "check":
    checked = intake.check_file({path!r}, {template!r})
    accepted = checked.preview.accepted
    accepted = accepted if isinstance(accepted, int) else len(accepted)
elif hasattr(intake, "queue_file"):
    accepted = intake.queue_file({path!r}, {template!r})[0].count
else:
    accepted = len(intake.queue_checked(intake.check_file({path!r}, {template!r})).message_ids)
seconds = time.perf_counter() - t
queued = db.execute("SELECT COUNT(*) FROM message").fetchone()[0]
print(json.dumps({{"seconds": seconds, "accepted": accepted, "queued": queued,
                  "peak_rss_mb": next(int(line.split()[1]) for line in open("/proc/self/status")
                                      if line.startswith("VmHWM:")) / 1024}}))
"""


def make_rows(n: int, rng: random.Random):
    """Mixed Chinese number formats (plain, spaced, +86, 0086), a name and points per row; a few bad rows."""
    for i in range(n):
        number = f"{rng.choice(PREFIXES)}{rng.randrange(10**8):08d}"
        shape = i % 10
        if shape == 1:
            number = f"{number[:3]} {number[3:7]} {number[7:]}"
        elif shape == 2:
            number = f"+86 {number}"
        elif shape == 3:
            number = f"0086-{number[:3]}-{number[3:7]}-{number[7:]}"
        elif shape == 4 and i % 100 == 4:
            number = number[:7]  # too short: refused
        yield [number, f"顾客{i}", str(rng.randrange(1000))]


def random_words(n: int, rng: random.Random) -> list[str]:
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    return list(dict.fromkeys("".join(rng.choice(chars) for _ in range(rng.randint(2, 4))) for _ in range(n * 2)))[:n]


def write_lists(folder: Path, rows: int, kinds: list[str]) -> dict[str, Path]:
    """The list in each format asked for, from one stream of rows (never held whole)."""
    rng = random.Random(20261130 + rows)
    paths = {}
    header = ["手机号", "姓名", "积分"]
    if "csv-utf8" in kinds or "csv-gbk" in kinds:
        with open(folder / f"{rows}-utf8.csv", "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\r\n")
            writer.writerow(header)
            writer.writerows(make_rows(rows, rng))
        paths["csv-utf8"] = folder / f"{rows}-utf8.csv"
        if "csv-gbk" in kinds:
            gbk = folder / f"{rows}-gbk.csv"
            with open(paths["csv-utf8"], encoding="utf-8", newline="") as src, \
                    open(gbk, "w", encoding="gbk", newline="") as dst:
                for line in src:
                    dst.write(line)
            paths["csv-gbk"] = gbk
    if "xlsx" in kinds:
        import openpyxl

        book = openpyxl.Workbook(write_only=True)
        sheet = book.create_sheet()
        sheet.append(header)
        for row in make_rows(rows, random.Random(20261130 + rows)):
            sheet.append(row)
        book.save(folder / f"{rows}.xlsx")
        paths["xlsx"] = folder / f"{rows}.xlsx"
    return paths


def export(rev: str, folder: Path) -> Path:
    """The code of git revision ``rev``, unpacked into ``folder``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def run_child(code: Path, path: Path, words: Path, mode: str, tmp: Path) -> dict:
    data = tempfile.mkdtemp(dir=tmp, prefix="box-")
    source = CHILD.format(code=str(code), data=data, path=str(path), words=str(words), template=TEMPLATE, mode=mode)
    out = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, cwd=tmp)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout)


BARE_INSERT = r"""
import json, sys, time
sys.path.insert(0, {code!r})
from appliance.clock import SystemClock
from appliance.db import Database
from appliance.loading import LOAD_BATCH
from appliance.preview import Accepted
from appliance.sendqueue import SendQueue
q = SendQueue(Database.in_data_dir({data!r}), SystemClock())
list_id = q.create_list("bare", "YL08", state="loading")
text = "顾客12345您好！会员日：本周六全场9折，您现有123积分，凭此短信到店再送小礼品。回复TD退订【小王】"
t = time.perf_counter()
for start in range(0, {rows}, LOAD_BATCH):
    batch = [Accepted(f"+86138{{i:08d}}", "China Mobile", text, "ucs2", 1, i)
             for i in range(start, min({rows}, start + LOAD_BATCH))]
    with q.db.atomic() as conn:
        q.insert_accepted(conn, list_id, batch, "YL08", kind="marketing", start_at=None, held=True)
print(json.dumps({{"seconds": time.perf_counter() - t}}))
"""


def bare_insert(rows: int, tmp: Path) -> float:
    """Seconds SQLite takes to write ``rows`` messages as the loader does, with nothing read or decided."""
    source = BARE_INSERT.format(code=str(ROOT), data=tempfile.mkdtemp(dir=tmp, prefix="box-"), rows=rows)
    out = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--modes", nargs="+", choices=("check", "queue"), default=["check", "queue"])
    parser.add_argument("--baseline", metavar="REV", help="also run the code of this git revision, turn about")
    parser.add_argument("--bare-insert", action="store_true",
                        help="also time writing the rows to the queue alone (nothing read or decided)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = {"machine": f"{platform.machine()} {platform.python_implementation()} {platform.python_version()}",
              "cpus": os.cpu_count(), "load": os.getloadavg()[0], "runs": []}
    with tempfile.TemporaryDirectory(prefix="smsgenie-bench-") as tmp:
        tmp = Path(tmp)
        codes = {"now": ROOT}
        if args.baseline:
            codes[args.baseline] = export(args.baseline, Path(tempfile.mkdtemp(dir=tmp, prefix="base-")))
        words = tmp / "words.txt"
        words.write_text("\n".join(random_words(10_000, random.Random(20261125))), encoding="utf-8")
        for rows in args.rows:
            paths = write_lists(tmp, rows, args.kinds)
            for kind in args.kinds:
                for mode in args.modes:
                    for label, code in codes.items():
                        run = {"rows": rows, "kind": kind, "mode": mode, "code": label,
                               **run_child(code, paths[kind], words, mode, tmp)}
                        result["runs"].append(run)
                        if not args.json:
                            print(_line(run), flush=True)
            for path in paths.values():
                path.unlink()
            if args.bare_insert:
                result.setdefault("bare_insert_s", {})[rows] = seconds = bare_insert(rows, tmp)
                if not args.json:
                    print(f"{rows:>9,} rows written to the queue alone (SQLite's part of 'queue'): {seconds:.2f} s")
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(f"machine: {result['machine']}, {result['cpus']} CPUs, load {result['load']:.2f} at the start")


def _line(run: dict) -> str:
    head = f"{run['rows']:>9,} rows {run['kind']:<8} {run['mode']:<5} {run['code']:<10}"
    if "error" in run:
        return f"{head} failed: {run['error']}"
    goal = GOAL_SECONDS.get(("xlsx" if run["kind"] == "xlsx" else "csv", run["rows"]))
    verdict = "" if goal is None else f" (goal <= {goal} s: {'met' if run['seconds'] <= goal else 'missed'})"
    return (f"{head} {run['seconds']:7.2f} s{verdict}, peak RSS {run['peak_rss_mb']:4.0f} MB "
            f"(goal <= {GOAL_RSS_MB}), {run['accepted']:,} accepted, {run['queued']:,} queued")


if __name__ == "__main__":
    main()
