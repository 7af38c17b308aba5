"""Does the counter panel slow sending? The same list sent with and without the panel, one run.

The real daemon (``smsgenie run``, its own process) sends COUNT messages to a
simulated SIM7600 at LATENCY per send, caps and gaps off: once with no panel,
once with the emulated OLED and mock buttons (``[panel] display =
"emulator"``), which redraws the screen four times a second as the counts
change and writes every frame as a PNG, as the demo does. The ratio
rate(with panel) / rate(without), measured in the same run, says what the
panel costs. Target >= 0.98. Also reports how many frames the panel drew.

    .venv/bin/python benchmarks/panel.py [--count 200] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.clock import SystemClock  # noqa: E402
from appliance.config import Config, ModemConfig, PanelConfig, WebConfig  # noqa: E402
from appliance.db import Database  # noqa: E402
from appliance.plan import plan_message  # noqa: E402
from appliance.policy import NO_CAPS  # noqa: E402
from appliance.sendqueue import SendQueue  # noqa: E402
from benchmarks._daemon import daemon_process, machine, send_window, wait_until_sent  # noqa: E402
from hw.modem.sim import SimulatedModem  # noqa: E402


def run(panel: bool, count: int, latency: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="smsgenie-panel-") as tmp:
        sim = SimulatedModem(directory=f"{tmp}/sim", send_latency=latency, report_delay=0.01).start()
        config = Config(data_dir=f"{tmp}/data", service_code="BENCH", web=WebConfig(listen=""),
                        modems=(ModemConfig(port=sim.port, send_timeout=10.0, **NO_CAPS),),
                        panel=PanelConfig(display="emulator", buttons="mock") if panel else PanelConfig())
        db = Database.in_data_dir(config.data_dir)
        q = SendQueue(db, SystemClock())
        q.ledger.adjust(count, "credit for the benchmark")
        q.enqueue(None, [f"+86139{i:08d}" for i in range(count)], plan_message("您好，您的订单已到店。"), "BENCH")
        frames = set()
        frame = Path(config.data_dir) / "oled.png"

        def see_frame() -> None:
            if frame.exists():
                frames.add(frame.stat().st_mtime_ns)

        with daemon_process(config, tmp):
            wait_until_sent(q, 60 + count * latency * 2, poll=0.05, each=see_frame)
        first, last = send_window(db)
        sent = q.sent_total()
        db.close()
        sim.close()
    assert sent == count, f"only {sent} of {count} sent"
    return {"panel": panel, "messages": count, "seconds": round(last - first, 3),
            "rate_per_s": round(count / (last - first), 3), "frames_seen": len(frames)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    without, with_panel = run(False, args.count, args.latency), run(True, args.count, args.latency)
    ratio = round(with_panel["rate_per_s"] / without["rate_per_s"], 4)
    out = {"machine": machine(),
           "latency_s": args.latency, "without_panel": without, "with_panel": with_panel, "ratio": ratio}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"machine: {out['machine']}; {args.count} messages at {args.latency * 1000:.0f} ms per send")
    print(f"without the panel: {without['rate_per_s']:.2f} messages/s")
    print(f"with the panel:    {with_panel['rate_per_s']:.2f} messages/s ({with_panel['frames_seen']} frames seen "
          f"as oled.png changed)")
    print(f"ratio {ratio:.4f} (target >= 0.98)")


if __name__ == "__main__":
    main()
