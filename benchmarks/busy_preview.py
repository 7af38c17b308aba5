"""Does the box keep sending while the page reads a big list? Modem utilisation with and without it.

``smsgenie run`` (daemon and page in one process, as on the box) sends to a
simulated SIM7600 whose every send takes ``--latency`` seconds (a real SIM
takes one to five); the queue holds more than it can send meanwhile. This
script measures the sending rate for ``--window`` seconds with nothing else
to do, then uploads a ``--rows``-row CSV on the page as a signed-in admin
(the page reads it for its preview, in the same process) and measures the
rate while that runs, then once more with nothing else to do. The figure
is the ratio of the rate during the preview to the mean of the rates
without it. Goal (issue 14): >= 0.98 with a 1,000,000-row list.

    .venv/bin/python benchmarks/busy_preview.py [--rows 1000000] [--latency 0.5] [--window 20]
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import re
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.accounts import Accounts  # noqa: E402
from appliance.clock import SystemClock  # noqa: E402
from appliance.config import Config, ModemConfig, WebConfig  # noqa: E402
from appliance.db import Database  # noqa: E402
from appliance.plan import plan_message  # noqa: E402
from appliance.policy import NO_CAPS  # noqa: E402
from appliance.sendqueue import SendQueue  # noqa: E402
from benchmarks._daemon import daemon_process, machine  # noqa: E402
from benchmarks.web import PASSWORD, PLAIN_HTTP, free_port, wait_for_page  # noqa: E402
from hw.modem.sim import SimulatedModem  # noqa: E402


def rate(q: SendQueue, since: float, until: float) -> float:
    """Messages per second between ``since`` and ``until`` (epoch seconds), from the mean interval between
    consecutive sends the queue recorded: not quantised to whole messages as a count over a window is."""
    times = [r[0] for r in q.db.execute("SELECT sent_at FROM message WHERE sent_at BETWEEN ? AND ? ORDER BY sent_at",
                                        (since, until))]
    if len(times) < 3:
        raise SystemExit(f"too few sends to measure between {since} and {until}: make --window longer")
    return (len(times) - 1) / (times[-1] - times[0])


def window(q: SendQueue, seconds: float) -> float:
    since = time.time()
    time.sleep(seconds)
    return rate(q, since, time.time())


def upload(base: str, opener, path: Path) -> str:
    """POST the list as the page's form does; the address of the job's progress."""
    page = opener.open(base + "/send").read().decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    boundary = uuid.uuid4().hex
    fields = {"csrf_token": csrf, "text": "{姓名}您好，会员日全场九折", "kind": "marketing", "start_at": ""}
    head = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                   for k, v in fields.items())
    head += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
             f"Content-Type: text/csv\r\n\r\n")
    body = head.encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(base + "/send", data=body,
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    html = opener.open(request, timeout=600).read().decode()
    poll = re.search(r'data-poll="([^"]+)"', html)
    return poll.group(1) if poll else ""


def write_list(path: Path, rows: int) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        f.write("手机号,姓名\n")
        for i in range(rows):
            f.write(f"13{8 + i % 2}{i:08d},顾客{i}\n")
    return path


def signed_in(base: str):
    """A browser signed in as the admin."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = opener.open(base + "/login").read().decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    opener.open(base + "/login", urllib.parse.urlencode(
        {"csrf_token": csrf, "username": "boss", "password": PASSWORD}).encode())
    return opener


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smsgenie-busy-") as tmp:
        tmp = Path(tmp)
        sim = SimulatedModem(directory=f"{tmp}/sim", send_latency=args.latency, report_delay=0.01).start()
        port = free_port()
        config = Config(data_dir=f"{tmp}/data", service_code="BENCH",
                        modems=(ModemConfig(port=sim.port, send_timeout=10.0, **NO_CAPS),),
                        web=WebConfig(listen=f"127.0.0.1:{port}", max_upload_mb=200, **PLAIN_HTTP))
        db = Database.in_data_dir(config.data_dir)
        q = SendQueue(db, SystemClock())
        Accounts(db, q.clock).create("boss", PASSWORD, "admin")
        backlog = int(4 * args.window / args.latency) + 100
        q.ledger.adjust(backlog, "credit for the benchmark")
        q.enqueue(None, [f"+86139{i:08d}" for i in range(backlog)], plan_message("您好，您的订单已到店。"), "BENCH")
        big = write_list(tmp / "big.csv", args.rows)
        with daemon_process(config, tmp):
            base = f"http://127.0.0.1:{port}"
            wait_for_page(base)
            opener = signed_in(base)
            time.sleep(2)  # the first sends under way
            before = window(q, args.window)
            since, t = time.time(), time.monotonic()
            poll = upload(base, opener, big)
            job = {"state": "waiting"}
            while poll and job["state"] in ("waiting", "running"):
                time.sleep(0.5)
                job = json.loads(opener.open(base + poll).read())
            during_seconds = time.monotonic() - t
            if job["state"] != "done" or job["rows"] < args.rows:
                raise SystemExit(f"the preview did not read the list: {job}")
            during = rate(q, since, time.time())
            after = window(q, args.window)
        db.close()
        sim.close()
    ratio = during / ((before + after) / 2)
    result = {"machine": machine(), "rows": args.rows, "latency_s": args.latency, "preview_s": round(during_seconds, 1),
              "rate_before": round(before, 3), "rate_during": round(during, 3), "rate_after": round(after, 3),
              "ratio": round(ratio, 3)}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"machine: {result['machine']}; modem {args.latency} s per send")
    print(f"sending rate: {before:.3f}/s before, {during:.3f}/s during the {args.rows:,}-row preview "
          f"({during_seconds:.1f} s), {after:.3f}/s after: ratio {ratio:.3f} (goal >= 0.98)")


if __name__ == "__main__":
    main()
