"""``smsgenie demo``: the whole box on simulated hardware, sending a real list.

A simulated SIM7600 answers on a pseudo-terminal; the real daemon sends to
it through pyserial, exactly as on a Pi. The demo plays the vendor too: it
makes a demo vendor key, mints a 20-credit top-up code for this box and
redeems it, and imports a vendor-signed forbidden-word list. It queues the
bundled customer list through the same checks as `smsgenie send`
(appliance/intake.py): 24 good rows; a duplicate, a bad number and a row
whose merge field hides a forbidden word (代开 發票) are refused. One
customer had replied 退订 while the box was off: the daemon reads it at
start, and that customer's messages are skipped, uncharged. The members
are in the customer book first, their consent on record (the shop's paper
form); a walk-in customer who said yes at the counter is asked by SMS and
replies Y (a double opt-in). One phone
rejects its message and one number does not exist. The parts need more
than the first 20 credits, so sending pauses "out of credit" until the demo
buys another code.

Run again in the same folder, the demo sets nothing up a second time: it
runs the box on what the folder holds (no credit bought, no list queued).
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

from appliance import boxkey, keywords, shop, topup, vendor
from appliance import config as configmod
from appliance.asking import Asking
from appliance.bookfile import BookImport
from appliance.clock import SystemClock
from appliance.config import Config, ModemConfig, PanelConfig, QueueConfig, VendorConfig, WebConfig
from appliance.consent import Consent
from appliance.db import Database, ensure_data_dir
from appliance.device import format_device_id, this_device_id
from appliance.inbox import Inbox
from appliance.intake import Intake
from appliance.keywords import KeywordStore
from appliance.messages import STATES
from appliance.privacy import mask_number
from appliance.sendlists import SendLists
from appliance.sendqueue import SendQueue
from appliance.settings import save_setting, setting_is_set
from appliance.states import state_words
from appliance.text import say
from hw.display import EMULATED_FRAME
from hw.modem.sim import FAILED, SimulatedModem
from smsgenie.box import RunningBox
from smsgenie.demo.keyboard import KeyboardButtons
from web.serve import check_listen

DEFAULT_DIR = "smsgenie-demo"
SERVICE_CODE = "DEMO01"
SIGNATURE = "【小王便利店】"
SHOP_NAME = "小王便利店（演示）"
PROMO = "{姓名}您好！会员日：本周六全场9折，凭此短信到店再送小礼品一份。回复TD退订"
DEMO_KEYWORDS = ["代开发票", "赌博", "贷款秒批"]
NOTICE = ("{姓名}您好，您在小王便利店预订的年货礼盒已经到店，请凭本短信或订单号到收银台领取。"
          "本店营业时间为每天早上8点到晚上10点，如需送货上门请回复地址，我们会尽快为您安排。感谢您的支持！")
LISTS = (("customers.csv", PROMO, "会员日 promo (demo)", "marketing"),
         ("orders.csv", NOTICE, "order ready (demo)", "transactional"))
#: The demo shop's members signed its paper form: their consent is on record, with this as its evidence.
ATTESTATION = "会员登记表（演示）：每位会员在柜台签字同意接收本店优惠短信，原件存柜台"
WALK_IN = "+8613812340099"           # said yes at the counter: the box asks by SMS, the customer replies Y
REJECTING_PHONE = "+8613512340013"   # the phone refuses the message (failed delivery report)
UNASSIGNED = "+8613612340014"        # the network says the number is not assigned (+CMS ERROR: 1)
REPLYING = "+8613812340001"          # this customer replies 退订

#: Prints one line for a person: its parts, each a Text made with say() or a plain str (smsgenie.cli.common.echo
#: says them in the reader's language).
Echo = Callable[..., None]


def run_demo(data_dir: Path, *, until_idle: bool, latency: float, echo: Echo, timeout: float = 180.0,
             port: int = 8080, open_browser: bool = False) -> int:
    check_listen(f"127.0.0.1:{port}", "the demo (--port)")  # before anything is made or changed
    fresh = not _set_up_before(data_dir)
    ensure_data_dir(data_dir)
    sim = SimulatedModem(directory=str(data_dir / "sim"), send_latency=latency, report_delay=1.0)
    sim.set_outcome(REJECTING_PHONE, FAILED)
    sim.set_outcome(UNASSIGNED, 1)
    sim.start()
    try:
        return _run(data_dir, sim, fresh=fresh, until_idle=until_idle, echo=echo, timeout=timeout, port=port,
                    open_browser=open_browser)
    finally:
        sim.close()


def _run(data_dir: Path, sim: SimulatedModem, *, fresh: bool, until_idle: bool, echo: Echo, timeout: float,
         port: int, open_browser: bool) -> int:
    key_dir = data_dir / "vendor"
    if not (key_dir / vendor.KEY_FILE).exists():
        vendor.keygen(key_dir)
    public_line = (key_dir / vendor.PUB_FILE).read_text().strip()
    config = _config(data_dir, sim.port, public_line, port)
    device = this_device_id(config.data_dir)
    db = Database.in_data_dir(data_dir)
    q = SendQueue(db, SystemClock())
    buyer = CreditBuyer(q, key_dir, public_line, device, echo)
    echo(say("This box is {device}; the demo vendor key is in {dir}.", device=format_device_id(device),
             dir=str(key_dir)))
    if fresh:
        _set_up(config, q, buyer, echo)
        sim.inject_sms(REPLYING, "退订")  # arrived while the box was off; read when the daemon starts
    else:
        echo(say("This folder was set up by an earlier demo: no credit bought and no list queued this time; the box "
                 "sends what is left. (Delete {dir} for a fresh demo.)", dir=str(data_dir)))
    try:
        box = RunningBox(config)
        _introduce(box, data_dir, echo, open_browser)
        walk_in = WalkIn(q, sim, echo) if fresh else None
        code = _drive(box, q, buyer if fresh else None, until_idle=until_idle, timeout=timeout, echo=echo,
                      walk_in=walk_in)
        time.sleep(0.1)
        echo(say("Sent {n} SMS parts to the simulated network this run. Balance: {balance} credits.",
                 n=len(sim.accepted), balance=q.ledger.balance()))
        inbound = Inbox(db, q.clock).latest_parts(limit=5)
        if inbound:
            echo(say("Inbox: {n} message(s), latest: {text}", n=len(inbound), text=repr(inbound[0]["text"])))
    finally:
        db.close()
    echo(say("Data directory: {dir}", dir=str(data_dir)))
    echo(say("See the result:  .venv/bin/smsgenie --data-dir {dir} status --json", dir=str(data_dir)))
    echo(say("Config written:  {file} (used by any smsgenie command given --data-dir {dir})",
             file=str(data_dir / "config.toml"), dir=str(data_dir)))
    return code


def _set_up_before(data_dir: Path) -> bool:
    """Did an earlier demo buy credit or queue lists here? (Then it must not again.)"""
    if not (data_dir / "smsgenie.db").exists():
        return False
    db = Database.in_data_dir(data_dir)
    try:
        q = SendQueue(db, SystemClock())
        return bool(q.ledger.history(1) or SendLists(db, q.clock).recent(1))
    finally:
        db.close()


def _config(data_dir: Path, modem_port: str, public_line: str, port: int) -> Config:
    # A demo should not take the minutes a careful SIM would: the gap is short and there is no
    # per-minute cap (the hourly and daily carrier defaults still hold).
    modem = ModemConfig(port=modem_port, carrier="China Mobile", per_minute=0, min_gap_seconds=0.1,
                        jitter_seconds=0.1)
    config = Config(data_dir=str(data_dir), service_code=SERVICE_CODE, modems=(modem,),
                    queue=QueueConfig(retry_base_seconds=2.0, retry_cap_seconds=10.0),
                    vendor=VendorConfig(public_key=public_line),
                    web=WebConfig(listen=f"127.0.0.1:{port}", tls="off"),  # the demo stays on this computer
                    panel=PanelConfig(display="emulator", buttons="mock"), source=str(data_dir / "config.toml"))
    (data_dir / "config.toml").write_text(configmod.dump(config), encoding="utf-8")
    return config


def _set_up(config: Config, q: SendQueue, buyer: "CreditBuyer", echo: Echo) -> None:
    """What a shop does on its first day: buy credit, get the vendor's word list, set its signature, send."""
    buyer.buy(20)
    version, baseline = keywords.baseline()  # the vendor's baseline words, as the image installs them signed
    KeywordStore(q.db, q.clock).replace_vendor(
        keywords.verify_list(keywords.sign_list(buyer.private_key, list(dict.fromkeys(baseline + DEMO_KEYWORDS)),
                                                date.today(), version),
                             vendor.parse_public_key(buyer.public_line)[0]))
    save_setting(config.data_dir, "signature", SIGNATURE)
    if not shop.read(q.db.conn).name:  # the set-up page shows it, to keep or change
        shop.save(q.db, SHOP_NAME, "")
    if not setting_is_set(config.data_dir, "quiet_hours"):
        # A demo sends whenever it is run; a shop's box starts with quiet hours (21:00-08:00).
        save_setting(config.data_dir, "quiet_hours", "")
        echo(say("Quiet hours are off in the demo (a shop's box holds marketing lists 21:00-08:00)."))
    with resources.as_file(resources.files("smsgenie.demo") / "customers.csv") as path:
        book = BookImport(q.db, q.clock).apply(path, by="demo", attestation=ATTESTATION)
    echo(say("The customer book: {n} members imported, their consent on record (the paper form).",
             n=book.counts["new"]))
    intake = Intake(q.db, q.clock, config)
    for file, template, label, kind in LISTS:
        with resources.as_file(resources.files("smsgenie.demo") / file) as path:
            queued, preview = intake.queue_file(path, template, name=label, kind=kind, by="demo")
        echo(say("Queued {n} x {label}: {parts} SMS parts.", n=queued.count if queued else 0, label=label,
                 parts=preview.credits_needed))
        for r in preview.refused_rows:
            echo(say("  refused row {row}: {reason}", row=r.row, reason=r.reason),
                 say(" - {detail}", detail=r.detail) if r.reason == "blocked by a forbidden word" else "")
    Asking(q.db, q.clock).ask(intake, [WALK_IN], origin="counter", by="demo")
    echo(say("A walk-in customer ({number}) said yes at the counter: the box asks them by SMS to confirm.",
             number=mask_number(WALK_IN)))


def _introduce(box: RunningBox, data_dir: Path, echo: Echo, open_browser: bool) -> None:
    echo(say("Simulated SIM7600 on {port}; the daemon is sending (Ctrl-C to stop).", port=box.config.modem.port))
    echo(say("The shop's page: open {url}/ and set up the admin with the set-up PIN {pin}", url=box.url,
             pin=box.setup_pin) if box.setup_pin else
         say("The shop's page: open {url}/ and log in as the admin you set up", url=box.url))
    if open_browser and not _open_page(f"{box.url}/"):
        echo(say("  (no graphical browser here: open the address above on any computer that can reach it)"))
    echo(say("The counter panel (simulated OLED): {url}/device (as the admin), or the file {file}", url=box.url,
             file=str(data_dir / EMULATED_FRAME)))


def _drive(box: RunningBox, q: SendQueue, buyer: "CreditBuyer | None", *, until_idle: bool, timeout: float,
           echo: Echo, walk_in: "WalkIn | None" = None) -> int:
    """Run the box in a thread and report its progress; buy more credit once when sending pauses for it."""
    thread = threading.Thread(target=box.run, name="box", daemon=True)
    thread.start()
    keyboard = None
    link = box.daemon.panel_link()
    if not until_idle and link is not None:
        keyboard = KeyboardButtons(link)
        if keyboard.start():
            echo(say("  its buttons: the arrow keys, Enter (OK), Esc (Back), h (hold Back: home)"))
    start, last = time.monotonic(), None
    try:
        while thread.is_alive():
            counts = _counts(q)
            shown = {k: v for k, v in counts.items() if v or k in ("queued", "sent", "delivered")}
            if shown != last:
                echo("  ", *[part for k, v in shown.items() for part in (state_words(k), f" {v}  ")])
                last = shown
            shortfall = q.waiting_for_credit()
            if shortfall and buyer is not None:
                echo(say("  sending paused, {why}", why=shortfall.text))
                buyer.buy(100)
                buyer = None
            if walk_in is not None:
                walk_in.turn()
            if (until_idle and counts["queued"] == counts["sending"] == counts["sent"] == 0 and not shortfall
                    and (walk_in is None or walk_in.done)):
                break
            if until_idle and time.monotonic() - start > timeout:
                echo(say("The demo did not finish in time."))
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        echo("")
    finally:
        if keyboard is not None:
            keyboard.stop()
        box.stop()
        thread.join(timeout=30)
    return 0


class WalkIn:
    """The walk-in customer's phone: once the box's question arrives, they reply Y (a double opt-in)."""

    def __init__(self, q: SendQueue, sim: SimulatedModem, echo: Echo):
        self.q, self.sim, self.echo = q, sim, echo
        self.replied = False
        self.done = False

    def turn(self) -> None:
        if not self.replied and any(a.recipient == WALK_IN for a in self.sim.accepted):
            self.sim.inject_sms(WALK_IN, "Y")
            self.replied = True
        elif self.replied and not self.done:
            evidence = Consent(self.q.db, self.q.clock).evidence(WALK_IN)
            if evidence is not None and evidence.state == "given":
                self.done = True
                self.echo(say("  {number} replied Y: consent recorded ({evidence})", number=mask_number(WALK_IN),
                              evidence=evidence.evidence))


class CreditBuyer:
    """The vendor mints a code for this box; the shop redeems it, exactly as `smsgenie topup` does."""

    def __init__(self, q: SendQueue, key_dir: Path, public_line: str, device: bytes, echo: Echo):
        self.q = q
        self.private_key = vendor.load_private_key(key_dir / vendor.KEY_FILE)
        self.public_line = public_line
        self.device = device
        self.echo = echo

    def buy(self, credits: int) -> None:
        (_serial, code), = vendor.mint(self.private_key, self.device, credits)
        public_key, key_id = vendor.parse_public_key(self.public_line)
        verified = topup.verify(code, public_key, key_id, self.device, date.fromtimestamp(self.q.clock.time()))
        balance = topup.redeem(self.q, verified, boxkey.load(self.q.db.path.parent))
        self.echo(say("  top-up code {code}... redeemed: +{credits} credits, balance {balance}", code=code[:23],
                      credits=credits, balance=balance))


def _counts(q: SendQueue) -> dict[str, int]:
    counts = q.counts()
    return {s: counts.get(s, 0) for s in STATES}


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

