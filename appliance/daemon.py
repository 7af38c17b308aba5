"""The daemon: one worker per modem, and what the box does once for all of them.

At start it takes the data-dir lock (one daemon per box), settles what the
last run left ``sending`` (see docs/sending.md: the hand-over journals say
which claimed messages reached a modem, trusted only if the machine did
not restart), then starts a :class:`~appliance.worker.ModemWorker` thread
per configured modem. While they send, this thread does the daily
housekeeping: pruning the message record past its retention and logging
its head hash.

Every fault of a modem is its worker's to handle (see appliance.worker); a
worker that dies of a bug stops the whole daemon, so systemd restarts it
rather than the box sending on fewer modems without anyone knowing. A
worker that hangs instead of dying is caught by systemd's watchdog: this
thread pings it (``WATCHDOG=1``) only while every worker shows signs of
life, so a stuck loop means no pings, and systemd restarts the service.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable

from appliance import boxkey, journal, keywords, kv
from appliance.asking import Asking
from appliance.clock import Clock, SystemClock
from appliance.config import Config
from appliance.db import Database
from appliance.erasure import Erasure
from appliance.errors import KeywordListError, SmsGenieError, StorageFull, VendorKeyError
from appliance.intake import Intake
from appliance.lock import DataDirLock
from appliance.recurring import RecurringSends
from appliance.replies import Replies
from appliance.sdnotify import Notifier
from appliance.sendlists import SendLists
from appliance.sendqueue import SendQueue
from appliance.settings import read_settings
from appliance.uploads import forget_stale_uploads
from appliance.vendor import parse_public_key
from appliance.webhooks import Webhooks
from appliance.worker import FULL_WAIT, POLL_INTERVAL, STUCK_AFTER, ModemWorker, Pool
from hw.errors import HardwareError
from hw.pins import PinFactoryError, open_pin_factory
from hw.power import GPIOPowerKey, GPIOPowerSwitch, PowerSwitch, PowerSwitchError

log = logging.getLogger(__name__)

#: Seconds between record pruning and head-hash logging.
HOUSEKEEPING_INTERVAL = 24 * 3600.0
#: Seconds between two looks for recurring sends that are due (questions and auto-replies go at every turn).
CHORES_INTERVAL = 30.0
#: How often the supervisor looks at its workers and the clock.
SUPERVISE_INTERVAL = 1.0
#: While a big list's messages are being held, freed or failed: seconds of batches per turn, and the pause
#: between turns that leaves the database to the senders.
SETTLE_SECONDS, SETTLE_PAUSE = 0.25, 0.05
BOOT_ID = "/proc/sys/kernel/random/boot_id"


def read_boot_id() -> str | None:
    """This boot's id: it changes when the machine restarts (a power cut), not when a process does."""
    try:
        with open(BOOT_ID, encoding="ascii") as f:
            return f.read().strip() or None
    except OSError:
        return None


class Daemon:
    """Sends ``config``'s queue through its modems until :meth:`stop` is called."""

    def __init__(self, config: Config, *, clock: Clock | None = None, poll_interval: float = POLL_INTERVAL,
                 boot_id: Callable[[], str | None] = read_boot_id,
                 power_switches: dict[str, PowerSwitch] | None = None,
                 panel_display=None, pin_factory=None,
                 notifier: Notifier | None = None, stuck_after: float = STUCK_AFTER):
        """``panel_display`` (a luma
        device) and ``pin_factory`` (gpiozero's) replace what ``[panel]`` would open: for tests.
        ``notifier``: systemd's notify socket (``Notifier.from_environ()`` under systemd)."""
        self.config = config
        self.clock = clock or SystemClock()
        self.notifier = notifier or Notifier()
        self._ping_at = 0.0
        self._stuck_reported = False
        self._boot_id = boot_id
        self._stop = threading.Event()
        self._pin_factory = None
        self.gpio = ""
        """The GPIO library the pins are driven with (hw/pins.py), "" while no pin is used."""
        pool = Pool()
        switches = dict(power_switches or {})
        for m in config.modems:
            if m.label in switches or (m.power_gpio < 0 and m.power_key_gpio < 0):
                continue
            try:
                pins = self._pins()
                if m.power_gpio >= 0:
                    switches[m.label] = GPIOPowerSwitch(m.power_gpio, active_high=m.power_active_high,
                                                        pin_factory=pins)
                else:
                    switches[m.label] = GPIOPowerKey(m.power_key_gpio, active_high=m.power_key_active_high,
                                                     pin_factory=pins)
            except (PowerSwitchError, PinFactoryError) as exc:
                log.error("%s: %s; hung-modem recovery stops at the soft reset", m.label, exc)
        self.workers = [ModemWorker(config, m, clock=self.clock, stop=self._stop, poll_interval=poll_interval,
                                    pool=pool, power=switches.get(m.label), stuck_after=stuck_after)
                        for m in config.modems]
        self._errors: list[BaseException] = []
        self._housekeeping_at = 0.0
        self._uploads_at = 0.0
        self._chores_at = 0.0
        self._chore_errors: dict[str, str] = {}
        self.panel = None
        self.lists: SendLists | None = None
        """The lists' steward while running (it holds, frees and fails a big list's messages in batches)."""
        self.buttons = None
        self._open_panel(panel_display, pin_factory)

    def _pins(self):
        """gpiozero's pin factory for this process, chosen once by ``[panel] pin_factory`` (hw/pins.py)."""
        if self._pin_factory is None:
            self.gpio, self._pin_factory = open_pin_factory(self.config.panel.pin_factory)
            log.info("GPIO pins driven by %s", self.gpio)
        return self._pin_factory

    def _open_panel(self, display, pin_factory) -> None:
        """The OLED and buttons, if configured. A panel that will not open is logged, not fatal:
        the box's job is sending, and the web page shows everything the panel would."""
        p = self.config.panel
        if display is None and p.display == "none" and p.buttons == "none":
            return
        from appliance.ui.panel import Panel  # noqa: PLC0415 - Pillow and fonts only with a panel
        from hw.buttons import Buttons, mock_buttons  # noqa: PLC0415
        from hw.display import open_display  # noqa: PLC0415

        if display is None:
            try:
                display = open_display(p.display, data_dir=self.config.data_dir, i2c_port=p.i2c_port,
                                       i2c_address=p.i2c_address, rotate=p.rotate)
            except HardwareError as exc:
                log.error("the panel's display: %s", exc)
        self.panel = Panel(self.config, display, clock=self.clock,
                           restart_modem=self.restart_modems, wake_workers=self.wake_workers)
        pins = {"up": p.pin_up, "down": p.pin_down, "ok": p.pin_ok, "back": p.pin_back}
        try:
            if pin_factory is not None:
                self.buttons = Buttons(pins, self.panel.button, pin_factory=pin_factory)
            elif p.buttons == "mock":
                self.buttons = mock_buttons(pins, self.panel.button)
            elif p.buttons == "gpio":
                self.buttons = Buttons(pins, self.panel.button, pin_factory=self._pins())
        except HardwareError as exc:
            log.error("the panel's buttons: %s", exc)
        self.panel.gpio = self.gpio

    def panel_link(self):
        """The counter panel for the page's mirror and the demo's keys (None without a panel)."""
        from appliance.ui.link import PanelLink  # noqa: PLC0415

        return PanelLink(self.panel, self.buttons) if self.panel is not None else None

    def restart_modems(self) -> None:
        """Restart every modem between two messages (asked for at the counter)."""
        for w in self.workers:
            w.request_restart()

    def wake_workers(self) -> None:
        for w in self.workers:
            w.wake()

    @property
    def modem(self):
        """The first worker's modem (the only one on most boxes)."""
        return self.workers[0].modem

    def fail(self, error: BaseException) -> None:
        """A part of the box this daemon depends on died (the page, say): stop, and let :meth:`run` raise
        ``error``, so the service exits non-zero and systemd restarts it. Safe from any thread."""
        self._errors.append(error)
        self.stop()

    def close(self) -> None:
        """Let go of the panel's buttons when the daemon will not run (``run`` does this when it ends)."""
        if self.buttons is not None:
            self.buttons.close()

    def stop(self) -> None:
        """Ask every worker to finish the message in hand and return. Safe from a signal handler."""
        self._stop.set()
        for w in self.workers:
            w.wake()

    def run(self) -> None:
        """Run until :meth:`stop`. Re-raises a worker's crash after stopping the others."""
        with DataDirLock(self.config.data_dir):
            db = Database.in_data_dir(self.config.data_dir)
            try:
                db.quick_check()  # a damaged card stops here, in one line, not halfway through a send
                log.info("box signing key %s", boxkey.load(self.config.data_dir).key_id)  # made at first boot
                self._vendor_keywords(db)
                if not self._recover_when_room(SendQueue(db, self.clock)):
                    return
                threads = [threading.Thread(target=self._run_worker, args=(w,), name=f"worker {w.label}",
                                            daemon=True) for w in self.workers]
                if self.panel is not None:
                    threads.append(threading.Thread(target=self.panel.run, args=(self._stop,), name="panel",
                                                    daemon=True))
                hooks = Webhooks(Database.in_data_dir(self.config.data_dir), self.clock, self.config.data_dir)
                threads.append(threading.Thread(target=hooks.run, args=(self._stop,), name="webhooks", daemon=True))
                for t in threads:
                    t.start()
                self.notifier.ready(f"sending through {len(self.workers)} modem(s)")
                self._supervise(db, threads)
                self.notifier.stopping()
                for t in threads:
                    t.join()
            finally:
                db.close()
                self.notifier.close()
                if self.buttons is not None:
                    self.buttons.close()
        if self._errors:
            raise self._errors[0]
        log.info("stopped")

    def _vendor_keywords(self, db: Database) -> None:
        """The vendor's signed list the image installed ([vendor] keywords), if newer than the box's."""
        v = self.config.vendor
        if not v.keywords:
            return
        try:
            signed, taken = keywords.import_file(keywords.KeywordStore(db, self.clock), v.keywords,
                                                 parse_public_key(v.public_key)[0], only_newer=True)
        except (KeywordListError, VendorKeyError) as exc:
            log.error("the vendor's keyword list %s was not imported: %s", v.keywords, exc)
            return
        if taken:
            log.info("imported the vendor's keyword list version %d (%d words)", signed.version, len(signed.words))

    def _supervise(self, db: Database, threads: list[threading.Thread]) -> None:
        """Until stopped: the daily and hourly chores, the watchdog, and a big list's batches between the sends.
        A full data storage makes the chores wait, as it makes the workers wait."""
        supervise = SUPERVISE_INTERVAL
        if self.notifier.watchdog_interval:
            supervise = min(supervise, self.notifier.watchdog_interval / 4)
        lists = self.lists = SendLists(db, self.clock)
        while not self._stop.is_set():
            if not all(t.is_alive() for t in threads):
                self.stop()
                break
            self._watchdog()
            busy = False
            try:
                self._housekeeping(SendQueue(db, self.clock))
                self._customer_chores(db)
                busy = lists.settle(budget=SETTLE_SECONDS) > 0  # a big list paused or cancelled
            except StorageFull as exc:
                log.debug("housekeeping waits for room: %s", exc)
            self.clock.wait(self._stop, SETTLE_PAUSE if busy else supervise)

    def _customer_chores(self, db: Database) -> None:
        """At every turn, the consent questions a sign-up asked for and the auto-replies owed (a customer who
        texts 加入 or 营业时间 waits for the answer); every half minute, the recurring sends now due
        (appliance/asking.py, replies.py, recurring.py). A fault there is logged, never the daemon's end."""
        now = self.clock.time()
        chores = [("consent questions", Asking(db, self.clock).send_waiting),
                  ("auto-replies", Replies(db, self.clock).send_owed)]
        if now >= self._chores_at:
            self._chores_at = now + CHORES_INTERVAL
            chores.append(("recurring sends", RecurringSends(db, self.clock).run_due))
        intake = Intake(db, self.clock, self.config)
        for name, chore in chores:
            try:
                chore(intake)
            except SmsGenieError as exc:
                if self._chore_errors.get(name) != str(exc):  # said once, not at every turn
                    log.error("%s: %s", name, exc)
                self._chore_errors[name] = str(exc)
            else:
                self._chore_errors.pop(name, None)

    def _watchdog(self) -> None:
        """Ping systemd's watchdog, but only while every worker's loop is alive."""
        stuck = [w for w in self.workers if w.stuck_for() > 0]
        if stuck:
            if not self._stuck_reported:
                self._stuck_reported = True
                what = ", ".join(f"{w.label} silent {w.stuck_for() + w.stuck_after:.0f} s" for w in stuck)
                log.error("sending loop stuck (%s): watchdog pings stop so that systemd restarts the service",
                          what)
                self.notifier.status(f"stuck: {what}")
            return
        if self._stuck_reported:  # it came back before systemd acted
            self._stuck_reported = False
            log.warning("sending loop alive again; watchdog pings resume")
        interval = self.notifier.watchdog_interval
        now = self.clock.monotonic()
        if interval and now >= self._ping_at:
            self.notifier.watchdog()
            self._ping_at = now + interval / 2

    def _run_worker(self, worker: ModemWorker) -> None:
        try:
            worker.run()
        except BaseException as exc:  # a bug: stop the box loudly rather than limp on
            log.exception("worker %s crashed", worker.label)
            self._errors.append(exc)
            self.stop()

    def _recover_when_room(self, queue: SendQueue) -> bool:
        """Settle what was in flight at the last stop - on a full data storage, once there is room: systemd
        hears the box is up meanwhile (the page answers and says why nothing is sent; a crash loop would
        hide it). False: stopped while waiting."""
        full = False
        while True:
            try:
                self._recover(queue)
                return True
            except StorageFull as exc:
                if not full:
                    log.error("%s: sending starts once there is room", exc)
                    self.notifier.ready(f"waiting for room: {exc}")
                    full = True
            self.notifier.watchdog()
            if self._stop.wait(FULL_WAIT):  # real time, like the workers' wait for room
                return False

    def _recover(self, queue: SendQueue) -> None:
        boot = self._boot_id()
        same_boot = boot is not None and kv.get(queue.db.conn, "boot_id") == boot
        trusted = same_boot or journal.durable(self.config.data_dir)  # fsynced: it outlived the power cut
        requeued, uncertain = queue.recover_interrupted(journal.read_all(self.config.data_dir) if trusted else None)
        with queue.db.atomic() as conn:  # after the recovery: a full storage that refused it leaves these be
            if boot is not None:
                kv.put(conn, "boot_id", boot)
            kv.put(conn, "gpio", self.gpio)  # for `smsgenie status`
        if uncertain:
            log.warning("%d message(s) were with a modem when the box last stopped; marked uncertain", uncertain)
        if requeued:
            log.info("%d message(s) claimed but not yet sent when the box last stopped; queued again", requeued)
        current = {w.journal.path for w in self.workers}
        for path in Path(self.config.data_dir).glob(journal.JOURNAL_GLOB):
            if path not in current:  # a modem that is no longer configured; its entries were just read
                path.unlink(missing_ok=True)

    def _housekeeping(self, queue: SendQueue) -> None:
        """Once a day: prune the record past its retention, and log its head hash for auditors; forget
        old exactly-once keys."""
        now = self.clock.time()
        if now >= self._uploads_at:  # hourly: lists uploaded and never sent do not fill the card
            self._uploads_at = now + 3600
            forget_stale_uploads(self.config.data_dir)
        if now < self._housekeeping_at:
            return
        self._housekeeping_at = now + HOUSEKEEPING_INTERVAL
        Intake(queue.db, queue.clock, self.config).forget_keys()
        retention = read_settings(self.config.data_dir)["audit_retention_days"]
        pruned = queue.audit.prune(retention)
        bodies = Erasure(queue.db, queue.clock).prune(retention)  # customers' words go with the record's
        if any(bodies.values()):
            log.info("past retention: %d message bodies blanked, %d inbound texts deleted", bodies["messages"],
                     bodies["inbound"])
        verdict = queue.audit.verify()
        if verdict.ok:
            log.info("message record: %d rows, head %s%s", verdict.rows, verdict.head,
                     f" ({pruned} rows past retention pruned)" if pruned else "")
        else:
            log.error("the message record has been tampered with: %s", verdict.problem)
