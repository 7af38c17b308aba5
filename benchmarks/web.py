"""How the page feels while the box is busy: p95 latency of the dashboard and the status API
while 1,000 messages are being sent.

``smsgenie run`` (daemon + waitress, its own process) sends 1,000 messages
to a simulated SIM7600 at 20 ms per send; meanwhile this script, as a
logged-in admin and as an API client, requests the dashboard (``/``) and
``/api/v1/status`` one after the other, and records how long each took.
Target: p95 <= 50 ms for both.

    .venv/bin/python benchmarks/web.py [--count 1000]
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import re
import socket
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
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
from hw.modem.sim import SimulatedModem  # noqa: E402

PASSWORD = "bench-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smsgenie-web-") as tmp:
        sim = SimulatedModem(directory=f"{tmp}/sim", send_latency=args.latency, report_delay=0.01).start()
        port = free_port()
        config = Config(data_dir=f"{tmp}/data", service_code="BENCH",
                        modems=(ModemConfig(port=sim.port, send_timeout=10.0, **NO_CAPS),),
                        web=WebConfig(listen=f"127.0.0.1:{port}"))
        db = Database.in_data_dir(config.data_dir)
        q = SendQueue(db, SystemClock())
        accounts = Accounts(db, q.clock)
        accounts.create("boss", PASSWORD, "admin")
        token = accounts.new_token("bench")
        q.ledger.adjust(args.count, "credit for the benchmark")
        q.enqueue(None, [f"+86139{i:08d}" for i in range(args.count)], plan_message("您好，您的订单已到店。"), "BENCH")
        with daemon_process(config, tmp):
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    urllib.request.urlopen(base + "/login", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            jar = http.cookiejar.CookieJar()
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
            page = opener.open(base + "/login").read().decode()
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
            opener.open(base + "/login", urllib.parse.urlencode(
                {"csrf_token": csrf, "username": "boss", "password": PASSWORD}).encode())
            api = urllib.request.Request(base + "/api/v1/status", headers={"Authorization": f"Bearer {token}"})
            timings: dict[str, list[float]] = {"dashboard": [], "api_status": []}
            started = time.monotonic()
            sent_at_start = q.sent_total()
            while q.counts()["queued"] > 0 and time.monotonic() - started < 600:
                for name, call in (("dashboard", lambda: opener.open(base + "/").read()),
                                   ("api_status", lambda: json.loads(urllib.request.urlopen(api).read()))):
                    t = time.perf_counter()
                    call()
                    timings[name].append(time.perf_counter() - t)
            sent_during = q.sent_total() - sent_at_start
        db.close()
        sim.close()
    result = {"machine": machine(), "messages_sent_while_measuring": sent_during}
    for name, values in timings.items():
        result[name] = {"requests": len(values), "p50_ms": round(statistics.median(values) * 1000, 1),
                        "p95_ms": round(percentile(values, 95) * 1000, 1), "max_ms": round(max(values) * 1000, 1)}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"machine: {result['machine']}; {sent_during} messages sent while measuring")
    for name in timings:
        r = result[name]
        print(f"{name}: {r['requests']} requests, p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms (target <= 50), "
              f"max {r['max_ms']} ms")


if __name__ == "__main__":
    main()
