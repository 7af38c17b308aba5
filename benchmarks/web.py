"""How the page feels while the box is busy: p95 latency of the dashboard and the status API
while 1,000 messages are being sent.

``smsgenie run`` (daemon + waitress, its own process) sends 1,000 messages
to a simulated SIM7600 at 20 ms per send; meanwhile this script, as a
logged-in admin and as an API client, requests the dashboard (``/``) and
``/api/v1/status`` one after the other, and records how long each took.
Target: p95 <= 50 ms for both.

With ``--dashboards N``, N dashboards stay open meanwhile, each doing what
its page tells a browser to (follow an event stream, or ask for a fresh
snapshot every few seconds), and the login page is timed too; target: p95
<= 1 s with 50 open. To measure another checkout of the code with this
script (side by side with an older commit), set SMSGENIE_TREE to it and run
it with a Python whose path does not carry this checkout's editable install
(docs/benchmarks.md shows how).

    .venv/bin/python benchmarks/web.py [--count 1000] [--dashboards 50]
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, os.environ.get("SMSGENIE_TREE") or str(Path(__file__).resolve().parents[1]))

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


#: The page over plain HTTP: the figures measure the page, not TLS, and an older tree (SMSGENIE_TREE)
#: has no [web] tls to turn off.
PLAIN_HTTP = {"tls": "off"} if "tls" in WebConfig.__dataclass_fields__ else {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_page(base: str) -> None:
    """Until the box's page answers (the daemon process takes a moment to start)."""
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/login", timeout=1)
            return
        except OSError:
            time.sleep(0.1)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Dashboard(threading.Thread):
    """One open dashboard, as a browser runs it: the event stream its page names, or polling."""

    def __init__(self, base: str, cookie: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.base, self.cookie, self.stop = base, cookie, stop

    def _get(self, path: str, timeout: float):
        return urllib.request.urlopen(urllib.request.Request(self.base + path, headers={"Cookie": self.cookie}),
                                      timeout=timeout)

    def run(self) -> None:
        html = None
        while html is None and not self.stop.is_set():  # all from one address: some wait their turn
            try:
                html = self._get("/", 30).read().decode()
            except OSError:
                self.stop.wait(0.2)
        stream = re.search(r'data-events="([^"]+)"', html or "")
        poll = re.search(r'data-poll="([^"]+)"', html or "")
        every = float((re.search(r'data-every="([\d.]+)"', html or "") or [0, 2])[1])
        try:
            if stream:
                with self._get(stream.group(1), 600) as r:
                    while not self.stop.is_set() and r.readline():
                        pass
        except OSError:
            pass
        while poll and not self.stop.is_set():
            try:
                self._get(poll.group(1), 30).read()
            except OSError:
                pass
            self.stop.wait(every)


def timed(call, timings: list[float], limit: float) -> None:
    """Time one call; one that gets no answer within ``limit`` seconds counts as the limit."""
    t = time.perf_counter()
    try:
        call()
    except OSError:
        timings.append(limit)
        return
    timings.append(time.perf_counter() - t)


def sign_in(base: str, token: str, limit: float):
    """A browser signed in as the admin, and the calls to time: the dashboard, the status API, the login page."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/login").read().decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    opener.open(base + "/login", urllib.parse.urlencode(
        {"csrf_token": csrf, "username": "boss", "password": PASSWORD}).encode())
    api = urllib.request.Request(base + "/api/v1/status", headers={"Authorization": f"Bearer {token}"})
    calls = {"dashboard": lambda: opener.open(base + "/", timeout=limit).read(),
             "api_status": lambda: json.loads(urllib.request.urlopen(api, timeout=limit).read()),
             "login_page": lambda: urllib.request.urlopen(base + "/login", timeout=limit).read()}
    return "; ".join(f"{c.name}={c.value}" for c in jar), calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--dashboards", type=int, default=0, help="Dashboards kept open meanwhile.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smsgenie-web-") as tmp:
        sim = SimulatedModem(directory=f"{tmp}/sim", send_latency=args.latency, report_delay=0.01).start()
        port = free_port()
        config = Config(data_dir=f"{tmp}/data", service_code="BENCH",
                        modems=(ModemConfig(port=sim.port, send_timeout=10.0, **NO_CAPS),),
                        web=WebConfig(listen=f"127.0.0.1:{port}", **PLAIN_HTTP))
        db = Database.in_data_dir(config.data_dir)
        q = SendQueue(db, SystemClock())
        accounts = Accounts(db, q.clock)
        accounts.create("boss", PASSWORD, "admin")
        token = accounts.new_token("bench")
        q.ledger.adjust(args.count, "credit for the benchmark")
        q.enqueue(None, [f"+86139{i:08d}" for i in range(args.count)], plan_message("您好，您的订单已到店。"), "BENCH")
        with daemon_process(config, tmp):
            base = f"http://127.0.0.1:{port}"
            wait_for_page(base)
            limit = 5.0 if args.dashboards else 60.0
            cookie, calls = sign_in(base, token, limit)
            if not args.dashboards:
                del calls["login_page"]
            stop = threading.Event()
            for _ in range(args.dashboards):
                Dashboard(base, cookie, stop).start()
            time.sleep(2 if args.dashboards else 0)
            timings: dict[str, list[float]] = {name: [] for name in calls}
            started = time.monotonic()
            sent_at_start = q.sent_total()
            while q.counts()["queued"] > 0 and time.monotonic() - started < (60 if args.dashboards else 600):
                for name, call in calls.items():
                    timed(call, timings[name], limit)
            sent_during = q.sent_total() - sent_at_start
            stop.set()
        db.close()
        sim.close()
    result = {"machine": machine(), "messages_sent_while_measuring": sent_during, "dashboards": args.dashboards}
    for name, values in timings.items():
        result[name] = {"requests": len(values), "p50_ms": round(statistics.median(values) * 1000, 1),
                        "p95_ms": round(percentile(values, 95) * 1000, 1), "max_ms": round(max(values) * 1000, 1)}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"machine: {result['machine']}; {sent_during} messages sent while measuring; "
          f"{args.dashboards} dashboards open")
    target = "1000" if args.dashboards else "50"
    for name in timings:
        r = result[name]
        print(f"{name}: {r['requests']} requests, p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms (target <= {target}), "
              f"max {r['max_ms']} ms")


if __name__ == "__main__":
    main()
