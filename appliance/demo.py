"""``smsgenie demo``: the whole box on simulated hardware, sending a real list.

A simulated SIM7600 answers on a pseudo-terminal; the real daemon sends to
it through pyserial, exactly as on a Pi. The demo plays the vendor too: it
makes a demo vendor key, mints a 20-credit top-up code for this box and
redeems it. It queues the bundled customer list (24 shops' customers, one
duplicate and one bad number that are refused): 34 SMS parts, so sending
pauses "out of credit" until the demo buys another code. A customer
replies 退订 (unsubscribe) half-way, one phone rejects its message and one
number does not exist, so every outcome shows.
"""

from __future__ import annotations

import threading
import time
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Callable

from appliance import config as configmod
from appliance import topup, vendor
from appliance.clock import SystemClock
from appliance.config import Config, ModemConfig, QueueConfig, VendorConfig
from appliance.daemon import Daemon
from appliance.db import Database, ensure_data_dir
from appliance.device import DeviceIdError, device_id, device_id_bytes, format_device_id
from appliance.plan import plan_message
from appliance.sendlist import read_csv
from appliance.sendqueue import SendQueue
from hw.modem.sim import FAILED, SimulatedModem

DEFAULT_DIR = "smsgenie-demo"
SERVICE_CODE = "DEMO01"
PROMO = "【小王便利店】会员日：本周六全场9折，凭此短信到店再送小礼品一份。回复TD退订"
NOTICE = ("Xiao Wang Store: your order is ready for pickup at the counter. We are open 8:00-22:00 every day. "
          "Please bring this message or your order number. Reply TD to unsubscribe. Thank you!")
REJECTING_PHONE = "+8613512340013"   # the phone refuses the message (failed delivery report)
UNASSIGNED = "+8613612340014"        # the network says the number is not assigned (+CMS ERROR: 1)
REPLYING = "+8613812340001"          # this customer replies 退订


def run_demo(data_dir: Path, *, until_idle: bool, latency: float, echo: Callable[[str], None],
             timeout: float = 180.0) -> int:
    ensure_data_dir(data_dir)
    sim = SimulatedModem(directory=str(data_dir / "sim"), send_latency=latency, report_delay=1.0)
    sim.set_outcome(REJECTING_PHONE, FAILED)
    sim.set_outcome(UNASSIGNED, 1)
    sim.start()
    key_dir = data_dir / "vendor"
    if not (key_dir / vendor.KEY_FILE).exists():
        vendor.keygen(key_dir)
    private_key = vendor.load_private_key(key_dir / vendor.KEY_FILE)
    public_line = (key_dir / vendor.PUB_FILE).read_text().strip()
    try:
        box = device_id()
    except DeviceIdError:  # a machine with no id at all: the simulated box gets one from its data dir
        box = device_id_bytes(f"demo:{data_dir}")
    config = Config(data_dir=str(data_dir), service_code=SERVICE_CODE, modem=ModemConfig(port=sim.port),
                    queue=QueueConfig(retry_base_seconds=2.0, retry_cap_seconds=10.0),
                    vendor=VendorConfig(public_key=public_line), source="demo")
    config_file = data_dir / "config.toml"
    config_file.write_text(configmod.dump(config), encoding="utf-8")

    db = Database.in_data_dir(data_dir)
    q = SendQueue(db, SystemClock())
    echo(f"This box is {format_device_id(box)}; the demo vendor key is in {key_dir}.")
    _buy_credit(q, private_key, public_line, box, 20, echo)
    first_id = _queue_demo_lists(q, echo)
    daemon = Daemon(config)
    thread = threading.Thread(target=daemon.run, name="daemon", daemon=True)
    thread.start()
    echo(f"Simulated SIM7600 on {sim.port}; the daemon is sending (Ctrl-C to stop).")

    start = time.monotonic()
    replied = bought = False
    last = None
    try:
        while thread.is_alive():
            counts = _counts_since(db, first_id)
            line = "  ".join(f"{k} {v}" for k, v in counts.items() if v or k in ("queued", "sent", "delivered"))
            if line != last:
                echo(f"  {line}")
                last = line
            shortfall = q.waiting_for_credit()
            if shortfall and not bought:
                echo(f"  sending paused, {shortfall}")
                _buy_credit(q, private_key, public_line, box, 100, echo)
                bought = True
            if not replied and counts["delivered"] >= 5:
                sim.inject_sms(REPLYING, "退订")
                echo("  (a customer replied 退订 - it lands in the inbox)")
                replied = True
            settled = counts["queued"] == counts["sending"] == counts["sent"] == 0
            if until_idle and settled and replied and not shortfall:
                break
            if until_idle and time.monotonic() - start > timeout:
                echo("The demo did not finish in time.")
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        echo("")
    finally:
        daemon.stop()
        thread.join(timeout=30)
        sim.close()
    time.sleep(0.1)
    inbound = q.inbound(limit=5)
    echo(f"Sent {len(sim.accepted)} SMS parts to the simulated network. "
         f"Balance: {q.ledger.balance()} credits.")
    if inbound:
        echo(f"Inbox: {len(inbound)} message(s), latest: {inbound[0]['text']!r}")
    echo(f"Data directory: {data_dir}")
    echo(f"See the result:  .venv/bin/smsgenie --data-dir {data_dir} status --json")
    echo(f"Config written:  {config_file}")
    db.close()
    return 0


def _buy_credit(q: SendQueue, private_key, public_line: str, box: bytes, credits: int,
                echo: Callable[[str], None]) -> None:
    """The vendor mints a code for this box; the shop redeems it, exactly as `smsgenie topup` does."""
    (_serial, code), = vendor.mint(private_key, box, credits)
    public_key, key_id = vendor.parse_public_key(public_line)
    verified = topup.verify(code, public_key, key_id, box, date.fromtimestamp(q.clock.time()))
    balance = topup.redeem(q, verified)
    echo(f"  top-up code {code[:23]}... redeemed: +{credits} credits, balance {balance}")


def _queue_demo_lists(q: SendQueue, echo: Callable[[str], None]) -> int:
    path = resources.files("appliance") / "demo" / "customers.csv"
    with resources.as_file(path) as csv_path:
        customers = read_csv(csv_path)
    promo = plan_message(PROMO)
    promo_list = q.create_list("会员日 promo (demo)", SERVICE_CODE)
    ids = q.enqueue(promo_list, customers.numbers, promo, SERVICE_CODE)
    notice = plan_message(NOTICE)
    notice_list = q.create_list("order ready (demo)", SERVICE_CODE)
    ids += q.enqueue(notice_list, customers.numbers[:5], notice, SERVICE_CODE)
    echo(f"Queued {len(ids)} demo messages: {len(customers.numbers)} x promo ({promo.segments} part, UCS-2), "
         f"5 x order notice ({notice.segments} parts, GSM-7).")
    for p in customers.problems:
        echo(f"  refused row {p.row}: {p.reason}")
    return ids[0]


def _counts_since(db: Database, first_id: int) -> dict[str, int]:
    from appliance.sendqueue import STATES
    counts = dict.fromkeys(STATES, 0)
    for state, n in db.execute("SELECT state, COUNT(*) FROM message WHERE id >= ? GROUP BY state", (first_id,)):
        counts[state] = n
    return counts
