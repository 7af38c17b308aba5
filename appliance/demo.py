"""``smsgenie demo``: the whole box on simulated hardware, sending a real list.

A simulated SIM7600 answers on a pseudo-terminal; the real daemon sends to
it through pyserial, exactly as on a Pi. The demo plays the vendor too: it
makes a demo vendor key, mints a 20-credit top-up code for this box and
redeems it, and imports a vendor-signed forbidden-word list. It queues the
bundled customer list through the same checks as `smsgenie send`: 24 good
rows; a duplicate, a bad number and a row whose merge field hides a
forbidden word (代开 發票) are refused. One customer had replied 退订 while
the box was off: the daemon reads it at start, and that customer's
messages are skipped, uncharged. One phone rejects its message and one
number does not exist. 30 SMS parts need more than the first 20 credits,
so sending pauses "out of credit" until the demo buys another code.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import webbrowser
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Callable

from appliance import config as configmod
from appliance import keywords, topup, vendor
from appliance.clock import SystemClock
from appliance.config import Config, ModemConfig, PanelConfig, QueueConfig, VendorConfig, WebConfig
from appliance.daemon import Daemon
from appliance.db import Database, ensure_data_dir
from appliance.device import DeviceIdError, device_id, device_id_bytes, format_device_id
from appliance.inbox import Inbox
from appliance.keywords import KeywordStore
from appliance.optout import OptOuts
from appliance.preview import prepare
from appliance.sendlist import open_table
from appliance.sendqueue import SendQueue
from appliance.settings import ShopSettings as BoxSettings
from appliance.template import Template
from hw.display import EMULATED_FRAME
from hw.modem.sim import FAILED, SimulatedModem
from web.serve import WebServer

DEFAULT_DIR = "smsgenie-demo"
SERVICE_CODE = "DEMO01"
SIGNATURE = "【小王便利店】"
PROMO = "{姓名}您好！会员日：本周六全场9折，凭此短信到店再送小礼品一份。回复TD退订"
DEMO_KEYWORDS = ["代开发票", "赌博", "贷款秒批"]
NOTICE = ("{姓名}您好，您在小王便利店预订的年货礼盒已经到店，请凭本短信或订单号到收银台领取。"
          "本店营业时间为每天早上8点到晚上10点，如需送货上门请回复地址，我们会尽快为您安排。感谢您的支持！")
REJECTING_PHONE = "+8613512340013"   # the phone refuses the message (failed delivery report)
UNASSIGNED = "+8613612340014"        # the network says the number is not assigned (+CMS ERROR: 1)
REPLYING = "+8613812340001"          # this customer replies 退订


def run_demo(data_dir: Path, *, until_idle: bool, latency: float, echo: Callable[[str], None],
             timeout: float = 180.0, port: int = 8080, open_browser: bool = False) -> int:
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
    # A demo should not take the minutes a careful SIM would: the gap is short and there is no
    # per-minute cap (the hourly and daily carrier defaults still hold).
    modem = ModemConfig(port=sim.port, carrier="China Mobile", per_minute=0, min_gap_seconds=0.1, jitter_seconds=0.1)
    config = Config(data_dir=str(data_dir), service_code=SERVICE_CODE, modems=(modem,),
                    queue=QueueConfig(retry_base_seconds=2.0, retry_cap_seconds=10.0),
                    vendor=VendorConfig(public_key=public_line), web=WebConfig(listen=f"127.0.0.1:{port}"),
                    panel=PanelConfig(display="emulator", buttons="mock"), source="demo")
    config_file = data_dir / "config.toml"
    config_file.write_text(configmod.dump(config), encoding="utf-8")

    db = Database.in_data_dir(data_dir)
    q = SendQueue(db, SystemClock())
    echo(f"This box is {format_device_id(box)}; the demo vendor key is in {key_dir}.")
    _buy_credit(q, private_key, public_line, box, 20, echo)
    KeywordStore(q.db, q.clock).replace_vendor(
        keywords.verify_list(keywords.sign_list(private_key, DEMO_KEYWORDS, date.today()),
                             vendor.parse_public_key(public_line)[0]))
    box_settings = BoxSettings(data_dir)
    box_settings.set("signature", SIGNATURE)
    if not box_settings.is_set("quiet_hours"):
        # A demo sends whenever it is run; a shop's box starts with quiet hours (21:00-08:00).
        box_settings.set("quiet_hours", "")
        echo("Quiet hours are off in the demo (a shop's box holds marketing lists 21:00-08:00).")
    box_settings.close()
    first_id = _queue_demo_lists(q, echo)
    sim.inject_sms(REPLYING, "退订")  # arrived while the box was off; read when the daemon starts
    try:
        web = WebServer(config)
    except OSError as exc:
        echo(f"The web page cannot listen on 127.0.0.1:{port} ({exc.strerror}): is another demo running? "
             f"Try --port 8081.")
        sim.close()
        db.close()
        return 1
    daemon = Daemon(config, setup_pin=lambda: web.setup_pin)
    web.attach(daemon).start()
    thread = threading.Thread(target=daemon.run, name="daemon", daemon=True)
    thread.start()
    echo(f"Simulated SIM7600 on {sim.port}; the daemon is sending (Ctrl-C to stop).")
    echo(f"The shop's page: open {web.url}" + (f" and set up the admin with the set-up PIN {web.setup_pin}"
                                                if web.setup_pin else " and log in as the admin you set up"))
    if open_browser and not _open_page(web.url):
        echo("  (no graphical browser here: open the address above on any computer that can reach it)")
    echo(f"The counter panel (simulated OLED): {web.url}device (as the admin), or the file "
         f"{data_dir / EMULATED_FRAME}")
    keyboard = None
    if not until_idle and daemon.buttons is not None:
        keyboard = KeyboardButtons(daemon.buttons)
        if keyboard.start():
            echo("  its buttons: the arrow keys, Enter (OK), Esc (Back), h (hold Back: home)")

    start = time.monotonic()
    bought = False
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
            settled = counts["queued"] == counts["sending"] == counts["sent"] == 0
            if until_idle and settled and not shortfall:
                break
            if until_idle and time.monotonic() - start > timeout:
                echo("The demo did not finish in time.")
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        echo("")
    finally:
        if keyboard is not None:
            keyboard.stop()
        daemon.stop()
        thread.join(timeout=30)
        web.close()
        sim.close()
    time.sleep(0.1)
    inbound = Inbox(q.db, q.clock).latest_parts(limit=5)
    echo(f"Sent {len(sim.accepted)} SMS parts to the simulated network. "
         f"Balance: {q.ledger.balance()} credits.")
    if inbound:
        echo(f"Inbox: {len(inbound)} message(s), latest: {inbound[0]['text']!r}")
    echo(f"Data directory: {data_dir}")
    echo(f"See the result:  .venv/bin/smsgenie --data-dir {data_dir} status --json")
    echo(f"Config written:  {config_file}")
    db.close()
    return 0


class KeyboardButtons:
    """The demo's terminal keys as the panel's buttons: arrows, Enter, Esc; 'h' holds Back.

    The terminal goes into cbreak mode (keys arrive one by one, output is untouched) and is
    put back when the demo ends. Nothing happens when stdin is not a terminal.
    """

    KEYS = {b"\x1b[A": "up", b"\x1b[B": "down", b"\r": "ok", b"\n": "ok", b"\x1b": "back", b"\x7f": "back"}

    def __init__(self, buttons):
        self.buttons = buttons
        self._saved = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> bool:
        if not sys.stdin.isatty():
            return False
        import termios  # noqa: PLC0415 - POSIX terminals only
        import tty  # noqa: PLC0415

        fd = sys.stdin.fileno()
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        self._thread = threading.Thread(target=self._read, args=(fd,), name="keyboard", daemon=True)
        self._thread.start()
        return True

    def _read(self, fd: int) -> None:
        import select  # noqa: PLC0415

        while not self._stop.is_set():
            try:
                if not select.select([fd], [], [], 0.2)[0]:
                    continue
                key = os.read(fd, 1)
                if key == b"\x1b" and select.select([fd], [], [], 0.05)[0]:
                    key += os.read(fd, 2)  # an arrow: ESC [ A
            except OSError:  # the terminal went away
                return
            if key in (b"h", b"H"):
                self.buttons.press_async("back", hold=1.2)
            elif key in self.KEYS:
                self.buttons.press_async(self.KEYS[key])

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._saved is not None:
            import termios  # noqa: PLC0415

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._saved)
            self._saved = None


def _open_page(url: str) -> bool:
    """Open the page in the desktop's browser; False when there is no desktop.

    Without a display, Python's webbrowser falls back to text browsers (lynx, w3m) that would
    take over the terminal the demo prints its progress to, so a headless machine opens nothing.
    """
    if not (sys.platform in ("darwin", "win32") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        return webbrowser.open_new_tab(url)
    except webbrowser.Error:
        return False


def _buy_credit(q: SendQueue, private_key, public_line: str, box: bytes, credits: int,
                echo: Callable[[str], None]) -> None:
    """The vendor mints a code for this box; the shop redeems it, exactly as `smsgenie topup` does."""
    (_serial, code), = vendor.mint(private_key, box, credits)
    public_key, key_id = vendor.parse_public_key(public_line)
    verified = topup.verify(code, public_key, key_id, box, date.fromtimestamp(q.clock.time()))
    balance = topup.redeem(q, verified)
    echo(f"  top-up code {code[:23]}... redeemed: +{credits} credits, balance {balance}")


def _queue_demo_lists(q: SendQueue, echo: Callable[[str], None]) -> int:
    """Queue the demo lists through the same checks as `smsgenie send`."""
    screen = KeywordStore(q.db, q.clock).screen()
    opted_out = OptOuts(q.db, q.clock).numbers()
    ids: list[int] = []
    path = resources.files("appliance") / "demo" / "customers.csv"
    with resources.as_file(path) as csv_path:
        for template, limit, label in ((PROMO, None, "会员日 promo (demo)"), (NOTICE, 5, "order ready (demo)")):
            with open_table(csv_path) as table:
                preview = prepare(table, Template(template, SIGNATURE), region="CN", screen=screen,
                                  opted_out=opted_out, balance=q.ledger.balance())
            accepted = preview.accepted[:limit]
            list_id = q.create_list(label, SERVICE_CODE, template)
            ids += q.enqueue_many(list_id, ((a.recipient, a.plan) for a in accepted), SERVICE_CODE)
            parts = sum(a.plan.segments for a in accepted)
            echo(f"Queued {len(accepted)} x {label}: {parts} SMS parts.")
            if limit is None:
                for r in preview.refused:
                    echo(f"  refused row {r.row}: {r.reason}" + (f" - {r.detail}" if r.reason == "blocked by a "
                                                                  "forbidden word" else ""))
    return ids[0]


def _counts_since(db: Database, first_id: int) -> dict[str, int]:
    from appliance.sendqueue import STATES
    counts = dict.fromkeys(STATES, 0)
    for state, n in db.execute("SELECT state, COUNT(*) FROM message WHERE id >= ? GROUP BY state", (first_id,)):
        counts[state] = n
    return counts
