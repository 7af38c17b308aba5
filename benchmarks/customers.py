"""How fast and how lean the customer book is: a 100,000-customer import, and a send to a 100,000-member group.

In a fresh process each (so the peak RSS, VmHWM, is the step's own):

- ``import``: a CSV of N customers (name, birthday, tag 会员, points) read by
  the book's import with the shop's attestation, so each gets a consent
  event - preview first, then applied, as the page does;
- ``group preview``: the send to the tag 会员 checked as the page's group
  send does (the consent gate on: every number looked up, every text filled
  from the book's fields, screened by 10,000 forbidden words, priced);
- ``group queue``: the same, queued.

Goal (issue 16): each within a few seconds and <= 150 MB RSS at 100,000.

    .venv/bin/python benchmarks/customers.py [--customers 100000]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_RSS_MB = 150

STEP = r"""
import json, sys, time
sys.path.insert(0, {root!r})
from datetime import date
from appliance.clock import SystemClock
from appliance.config import Config
from appliance.db import Database
from appliance.intake import Intake
from appliance.keywords import KeywordStore, VendorList
from appliance.settings import ShopSettings
from appliance.book import Book
from appliance.bookfile import BookImport
data = {data!r}
db = Database.in_data_dir(data)
clock = SystemClock()
step = {step!r}
if step == "import":
    with ShopSettings(data) as s:
        s.set("signature", "【小王便利店】")
    words = ["违禁词%05d" % i for i in range(10_000)]
    KeywordStore(db, clock).replace_vendor(VendorList(words, 1, date.today().isoformat()))
    start = time.perf_counter()
    importer = BookImport(db, clock)
    preview = importer.preview({path!r}, attestation="会员登记表")
    seconds_preview = time.perf_counter() - start
    start = time.perf_counter()
    done = importer.apply({path!r}, by="bench", attestation="会员登记表")
    answer = {{"preview_seconds": seconds_preview, "apply_seconds": time.perf_counter() - start,
               "new": done.counts["new"], "attested": done.attested}}
else:
    intake = Intake(db, clock, Config(data_dir=data, service_code="YL08"))
    book = Book(db, clock)
    text = "{{姓名}}您好！会员日全场9折，您现有{{积分}}积分"
    start = time.perf_counter()
    if step == "preview":
        shop = intake.settings()
        preview = intake.check_table(book.table(tag="会员"), intake.template(text, shop=shop), shop=shop,
                                     kind="marketing").preview
        answer = {{"accepted": preview.accepted, "refused": preview.refused}}
    else:
        queued, preview = intake.queue_table(book.table(tag="会员"), text, by="cli")
        answer = {{"accepted": queued.count}}
    answer["seconds"] = time.perf_counter() - start
answer["peak_rss_mb"] = next(int(line.split()[1]) for line in open("/proc/self/status")
                            if line.startswith("VmHWM:")) / 1024
print(json.dumps(answer))
"""


def write_book(path: Path, n: int) -> None:
    rng = random.Random(16)
    prefixes = ["138", "139", "150", "187", "130", "186", "133", "189"]
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("手机号,姓名,生日,标签,积分\n")
        for i in range(n):
            f.write(f"{rng.choice(prefixes)}{i:08d},顾客{i},{rng.randint(1, 12)}月{rng.randint(1, 28)}日,会员,"
                    f"{rng.randint(0, 5000)}\n")


def run(step: str, data: Path, path: Path) -> dict:
    code = STEP.format(root=str(ROOT), data=str(data), path=str(path), step=step)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path, data = Path(tmp) / "book.csv", Path(tmp) / "box"
        data.mkdir()
        write_book(path, args.customers)
        imported = run("import", data, path)
        preview = run("preview", data, path)
        queued = run("queue", data, path)
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}; "
          f"{args.customers:,} customers")
    print(f"import: preview {imported['preview_seconds']:.2f} s, apply {imported['apply_seconds']:.2f} s "
          f"({imported['new']:,} new, {imported['attested']:,} with attested consent), "
          f"peak {imported['peak_rss_mb']:.0f} MB")
    print(f"group send preview: {preview['seconds']:.2f} s ({preview['accepted']:,} accepted), "
          f"peak {preview['peak_rss_mb']:.0f} MB")
    print(f"group send queued: {queued['seconds']:.2f} s ({queued['accepted']:,} queued), "
          f"peak {queued['peak_rss_mb']:.0f} MB")
    worst = max(imported["peak_rss_mb"], preview["peak_rss_mb"], queued["peak_rss_mb"])
    print(f"goal <= {GOAL_RSS_MB} MB: {'met' if worst <= GOAL_RSS_MB else 'MISSED'} (worst {worst:.0f} MB)")


if __name__ == "__main__":
    main()
