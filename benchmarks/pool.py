"""How a modem pool scales: 1, 2 and 4 simulated modems at 200 ms per send.

The real daemon (``smsgenie run``, its own process, one worker thread per
modem) sends a queue of PER_MODEM messages per modem through N simulated
SIM7600s, each on its own pseudo-terminal, with caps and gaps off. The
scaling efficiency of N modems is rate(N) / (N x rate(1)), measured in the
same run. Target >= 0.95.

    .venv/bin/python benchmarks/pool.py [--per-modem 40] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.clock import SystemClock  # noqa: E402
from appliance.config import Config, ModemConfig, WebConfig  # noqa: E402
from appliance.db import Database  # noqa: E402
from appliance.plan import plan_message  # noqa: E402
from appliance.policy import NO_CAPS  # noqa: E402
from appliance.sendqueue import SendQueue  # noqa: E402
from benchmarks._daemon import daemon_process, machine, send_window, wait_until_sent  # noqa: E402
from hw.modem.sim import SimulatedModem  # noqa: E402


def run(modems: int, per_modem: int, latency: float) -> dict:
    count = modems * per_modem
    with tempfile.TemporaryDirectory(prefix="smsgenie-pool-") as tmp:
        sims = [SimulatedModem(directory=f"{tmp}/sim{i}", send_latency=latency, report_delay=0.01).start()
                for i in range(modems)]
        config = Config(data_dir=f"{tmp}/data", service_code="BENCH", web=WebConfig(listen=""),
                        modems=tuple(ModemConfig(port=s.port, label=f"m{i + 1}", send_timeout=10.0, **NO_CAPS)
                                     for i, s in enumerate(sims)))
        db = Database.in_data_dir(config.data_dir)
        q = SendQueue(db, SystemClock())
        q.ledger.adjust(count, "credit for the benchmark")
        q.enqueue(None, [f"+86139{i:08d}" for i in range(count)], plan_message("您好，您的订单已到店。"), "BENCH")
        with daemon_process(config, tmp):
            wait_until_sent(q, 60 + count * latency)
        first, last = send_window(db)
        sent = q.sent_total()
        per_modem_sent = [len(s.accepted) for s in sims]
        db.close()
        for s in sims:
            s.close()
    assert sent == count, f"only {sent} of {count} sent"
    return {"modems": modems, "messages": count, "seconds": round(last - first, 3),
            "rate_per_s": round(count / (last - first), 3), "per_modem": per_modem_sent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-modem", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = [run(n, args.per_modem, args.latency) for n in (1, 2, 4)]
    base = results[0]["rate_per_s"]
    for r in results:
        r["efficiency"] = round(r["rate_per_s"] / (r["modems"] * base), 4)
    out = {"machine": machine(),
           "latency_s": args.latency, "runs": results}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"machine: {out['machine']}; {args.latency * 1000:.0f} ms per send, {args.per_modem} messages per modem")
    for r in results:
        print(f"{r['modems']} modem{'s' if r['modems'] > 1 else ''}: {r['rate_per_s']:.2f} messages/s "
              f"(split {r['per_modem']}), scaling efficiency {r['efficiency']:.4f} (target >= 0.95)")


if __name__ == "__main__":
    main()
