"""The counter panel's thread in the daemon: reads the box, draws the screen, acts on buttons.

It only reads the database (a snapshot a few times a second) and makes
small writes when staff ask (pause, a test SMS), so it never holds up the
modem workers; drawing and pushing a frame to the OLED happen here, and
only when the picture changed. Buttons arrive from gpiozero's threads (or
the web page's /device, or the demo's keyboard) through :meth:`Panel.button`.

Alerts (out of credit, low credit, no SIM, no network, a modem not
answering, a disk nearly full) take the screen over until someone presses
OK; an alert whose cause goes away and comes back shows again. Modem
alerts wait until the state has lasted a while, so a modem starting up
does not cry wolf. The screen dims, then goes dark, when nobody has
touched it for a while (an OLED wears where it is lit); a button or a new
alert wakes it, and the press that wakes it does nothing else.
"""

from __future__ import annotations

import logging
import queue as queues
import shutil
import threading
from datetime import datetime
from importlib.metadata import version as package_version
from typing import Callable

from appliance import boxkey, certs
from appliance.accounts import Accounts
from appliance.approval import Approvals
from appliance.clock import Clock
from appliance.config import Config
from appliance.db import Database
from appliance.device import DeviceIdError, device_id, format_device_id
from appliance.errors import IntakeError, ListStateError, MessageNotFound, SmsGenieError
from appliance.intake import Intake
from appliance.lan import lan_address
from appliance.messages import TRANSACTIONAL
from appliance.pause import SendingPause
from appliance.recurring import RecurringSends
from appliance.sendqueue import SendQueue
from appliance.settings import read_settings
from appliance.status import status
from appliance.ui import screens
from appliance.ui.draw import PanelFont, load_font, render
from appliance.ui.menu import Navigator
from appliance.ui.screens import ModemLine, Snapshot
from appliance.ui.text import tr

log = logging.getLogger(__name__)

#: Seconds before a crashed panel starts again; doubled while it keeps crashing, up to RESTART_MAX.
RESTART_MIN, RESTART_MAX = 5.0, 300.0
#: Seconds between looks at the box (the screen changes at most this often).
REFRESH_INTERVAL = 0.25
#: Seconds a modem must stay in a bad state before its alert shows.
MODEM_ALERT_AFTER = 30.0
MODEM_ALERTS = {"no-sim", "sim", "network", "modem"}
DIM_CONTRAST = 0x10
FULL_CONTRAST = 0xFF
#: Seconds between reads of what changes rarely (settings, address, disk, set-up PIN).
SLOW_INTERVAL = 5.0
WHO = "the counter panel"


class Panel:
    """The OLED and buttons of one box. ``display`` is any luma device (or None: buttons only)."""

    def __init__(self, config: Config, display, *, clock: Clock, font: PanelFont | None = None,
                 address: Callable[[], str | None] | None = None,
                 restart_modem: Callable[[], None] = lambda: None,
                 wake_workers: Callable[[], None] = lambda: None):
        self.config = config
        self.display = display
        self.clock = clock
        self.font = font or load_font(config.panel.font)
        self._address = address or (lambda: lan_address(config.web.listen, config.web.https))
        self._restart_modem = restart_modem
        self._wake_workers = wake_workers
        self.events: queues.SimpleQueue[tuple[str, str]] = queues.SimpleQueue()
        self.nav = Navigator()
        self.acknowledged: set[str] = set()
        self._shown_alerts: set[str] = set()
        self._first_seen: dict[str, float] = {}
        self._last_activity = clock.monotonic()
        self.brightness = "full"  # full, dim, off
        self._off_by_staff = False
        self._last_image_bytes: bytes | None = None
        self.screen: screens.Screen | None = None
        """The screen last drawn (for tests and the web mirror's text)."""
        self.image = None
        """The panel's 128x64 pixels last drawn (for the web page's /device mirror)."""
        self.snapshot: Snapshot | None = None
        self._slow: dict | None = None
        self._slow_at = 0.0
        try:
            self._device_id = format_device_id(device_id())
        except DeviceIdError:
            self._device_id = "?"
        self._box_key: boxkey.BoxKey | None = None
        self._known_waiting: dict = {}
        self.gpio = ""
        """The GPIO library the pins are driven with (the daemon sets it; the About screen shows it)."""
        self._version = package_version("smsgenie")
        self.db: Database | None = None
        self.queue: SendQueue | None = None

    # --- input ----------------------------------------------------------------------------

    def button(self, name: str, kind: str = "press") -> None:
        """A button event, from any thread: ("ok", "press"), ("up", "repeat"), ("back", "long")."""
        self.events.put((name, kind))

    # --- the loop ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Draw and act until ``stop``. A bug here must not stop sending, and a frozen screen would mislead
        the clerk: a crash is logged with its traceback, the screen says so, and the panel starts again
        by itself (after 5 s, doubling while it keeps crashing, up to 5 minutes)."""
        delay = RESTART_MIN
        while not stop.is_set():
            try:
                self.open()
                while not stop.is_set():
                    try:
                        self.step()
                    except SmsGenieError as exc:  # e.g. damaged settings: say so, keep the panel alive
                        log.error("panel: %s", exc)
                    delay = RESTART_MIN
                    self.clock.wait(stop, REFRESH_INTERVAL)
            except Exception:
                log.exception("the counter panel crashed; sending goes on, the panel starts again in %.0f s",
                              delay)
                self._show_broken()
                self.close()
                self.clock.wait(stop, delay)
                delay = min(2 * delay, RESTART_MAX)
        self.close()

    def _show_broken(self) -> None:
        if self.display is None:
            return
        try:
            self.display.contrast(FULL_CONTRAST)
            self.display.show()
            self.display.display(render(screens.Screen(title="SMS Genie", framed=True,
                                                       lines=("Panel error", "Sending goes on", "Call the technician")),
                                        self.font))
        except Exception:  # the display itself may be what failed
            log.exception("the panel's display cannot be written")

    def open(self) -> None:
        if self.db is None:
            self.db = Database.in_data_dir(self.config.data_dir)
            self.queue = SendQueue(self.db, self.clock)

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = self.queue = None

    def step(self) -> None:
        """Read the box, handle the buttons pressed since the last step, draw if anything changed."""
        self.open()
        now = self.clock.monotonic()
        slow = self._slow_inputs(now)
        shop = slow["shop"]
        lang = shop["panel_language"] if self.font.cjk else "en"
        snap = self.snapshot = self.read_snapshot(slow)
        active = self._active_alerts(snap, lang, now)
        if any(a.key not in self._shown_alerts for a in active):
            self._wake(now)  # a new problem lights the screen
        self._shown_alerts = {a.key for a in active}
        while True:
            try:
                name, kind = self.events.get_nowait()
            except queues.Empty:
                break
            if self.brightness != "full" or self._off_by_staff:
                self._wake(now)  # the press that wakes the screen does nothing else
                continue
            self._last_activity = now
            if active:
                if name == "ok" and kind == "press":
                    self.acknowledged.add(active[0].key)
                    active = active[1:]
                continue
            action = self.nav.button(name, kind, snap, now)
            if action:
                self._do(action, shop, lang, now)
                snap = self.snapshot = self.read_snapshot(slow)
        self._dim(now)
        screen = screens.alert_screen(active[0], lang) if active else self.nav.screen(snap, lang, now)
        self.screen = screen
        if self.brightness != "off":
            image = self.image = render(screen, self.font)
            data = image.tobytes()
            if self.display is None:
                return
            if data != self._last_image_bytes:
                self.display.display(image)
                self._last_image_bytes = data

    def _active_alerts(self, snap: Snapshot, lang: str, now: float) -> list[screens.Alert]:
        current = screens.alerts(snap, lang)
        keys = {a.key for a in current}
        for key in list(self._first_seen):
            if key not in keys:
                del self._first_seen[key]
        for key in keys:
            self._first_seen.setdefault(key, now)
        self.acknowledged &= keys  # a cause that went away may alert again when it comes back
        return [a for a in current if a.key not in self.acknowledged
                and (a.key.split(":")[0] not in MODEM_ALERTS or now - self._first_seen[a.key] >= MODEM_ALERT_AFTER)]

    # --- what the buttons do ---------------------------------------------------------------

    def _do(self, action: str, shop: dict, lang: str, now: float) -> None:
        q = self.queue
        if action == "pause":
            SendingPause(q.db, q.clock).pause(WHO)
            log.info("sending paused at the counter")
            self.nav.show_message("Sending paused", ("Done",), now)
        elif action == "resume":
            SendingPause(q.db, q.clock).resume()
            self._wake_workers()
            log.info("sending resumed at the counter")
            self.nav.show_message("Resume sending", ("Done",), now)
        elif action == "screen_off":
            self._off_by_staff = True
            self.brightness = "off"
            if self.display is not None:
                self.display.hide()
        elif action == "restart_modem":
            self._restart_modem()
            self.nav.show_message("Modem restarting", ("Sending resumes",), now)
        elif action.startswith(("approve:", "decline:")):
            self._decide(action, now)
        elif action == "test_sms":
            try:
                self._queue_test_sms(shop, lang)
            except SmsGenieError as exc:
                log.error("test SMS not queued: %s", exc)
                self.nav.show_message("Not possible", (str(exc)[:40],), now)
            else:
                self.nav.show_message("Test SMS queued", ("Done",), now)

    def _decide(self, action: str, now: float) -> None:
        """An admin's approval at the counter (appliance/approval.py): whoever holds the box decides."""
        what, _, list_id = action.partition(":")
        approvals = Approvals(self.queue.db, self.clock)
        try:
            (approvals.approve if what == "approve" else approvals.decline)(int(list_id), "panel")
        except (ListStateError, MessageNotFound):
            self.nav.show_message("Not possible", ("Decided already",), now)
            return
        log.info("list %s %s at the counter", list_id, "approved" if what == "approve" else "declined")
        if what == "approve":
            self._wake_workers()
        self.nav.show_message("Approved: sending" if what == "approve" else "Declined", ("Done",), now)

    def _queue_test_sms(self, shop: dict, lang: str) -> int:
        """One transactional message to the shop's own test number: proves the whole path, costs one part."""
        q = self.queue
        stamp = datetime.fromtimestamp(self.clock.time()).strftime("%m-%d %H:%M")
        answer = Intake(q.db, q.clock, self.config).queue_messages(
            [(shop["test_number"], tr(lang, "SMS Genie test message {stamp}", stamp=stamp))],
            name="Test SMS (counter panel)", kind=TRANSACTIONAL, by="panel")
        result = answer.results[0]
        if "id" not in result:
            raise IntakeError(result["error"])
        self._wake_workers()
        log.info("test SMS %d queued at the counter", result["id"])
        return result["id"]

    # --- the screen's light -----------------------------------------------------------------

    def _wake(self, now: float) -> None:
        self._last_activity = now
        self._off_by_staff = False
        if self.brightness != "full" and self.display is not None:
            if self.brightness == "off":
                self.display.show()
            self.display.contrast(FULL_CONTRAST)
        self.brightness = "full"

    def _dim(self, now: float) -> None:
        if self._off_by_staff:
            return
        idle = now - self._last_activity
        p = self.config.panel
        want = "full"
        if p.off_seconds and idle >= p.off_seconds:
            want = "off"
        elif p.dim_seconds and idle >= p.dim_seconds:
            want = "dim"
        if want == self.brightness:
            return
        self.brightness = want
        if self.display is None:
            return
        if want == "off":
            self.display.hide()
        else:
            self.display.contrast(DIM_CONTRAST if want == "dim" else FULL_CONTRAST)

    # --- reading the box ----------------------------------------------------------------------

    def _slow_inputs(self, now: float) -> dict:
        """What changes rarely - the settings, the LAN address, free disk, the set-up PIN, the CA - read at most
        every :data:`SLOW_INTERVAL` seconds rather than at every refresh."""
        if self._slow is not None and now - self._slow_at < SLOW_INTERVAL:
            return self._slow
        try:
            disk = shutil.disk_usage(self.config.data_dir)
            free_mb, free_fraction = disk.free / 2**20, disk.free / disk.total
        except OSError:
            free_mb, free_fraction = 1e9, 1.0
        pin = Accounts(self.queue.db, self.clock).setup_pin()  # while the box waits for its first admin
        self._box_key = self._box_key or boxkey.load(self.config.data_dir)
        self._slow = {"shop": read_settings(self.config.data_dir), "address": self._address(), "setup_pin": pin,
                      "disk_free_mb": free_mb, "disk_free_fraction": free_fraction,
                      "certificate": self.config.web.https and certs.fingerprint(self.config.data_dir) or "",
                      "skipped": tuple((a["id"], a["name"])
                                       for a in RecurringSends(self.queue.db, self.clock).alerts())}
        self._slow_at = now
        return self._slow

    def _awaiting(self) -> tuple:
        """The lists awaiting approval, at every frame (one cheap query): each one's size and cost is counted
        over its messages once, when it first shows, since a waiting list does not change."""
        waiting = Approvals(self.queue.db, self.clock).waiting(self._known_waiting)
        self._known_waiting = {w.id: w for w in waiting}
        return tuple(waiting)

    def read_snapshot(self, slow: dict) -> Snapshot:
        q = self.queue
        data = status(self.config, q)
        done = data["progress"]
        active = done["active_list"]
        shop = slow["shop"]
        paused = SendingPause(q.db, q.clock).current()
        return Snapshot(
            balance=data["balance"], waiting=data["queue"]["queued"], sending=data["queue"]["sending"],
            sent_today=done["sent_today_messages"], failed_today=done["failed_today"],
            modems=tuple(ModemLine(label=m["label"] or m["port"], state=m["state"], operator=m["operator"],
                                   access=m["access"], signal=m["signal"], iccid=m["iccid"], held=bool(m["held"]))
                         for m in data["modems"]),
            paused_by=paused["by"] if paused else None, shortfall=data["paused"],
            active_list=active and {"name": active["name"], "done": active["done"], "total": active["total"],
                                    "eta_minutes": active["minutes_left"]},
            address=slow["address"], device_id=self._device_id, certificate=slow["certificate"],
            box_key=self._box_key.public_line, box_key_id=self._box_key.key_id,
            setup_pin=slow["setup_pin"], disk_free_mb=slow["disk_free_mb"],
            disk_free_fraction=slow["disk_free_fraction"], low_credit_alert=shop["low_credit_alert"],
            test_number=shop["test_number"], awaiting=self._awaiting(),
            skipped_runs=slow.get("skipped", ()), gpio=self.gpio,
            version=self._version)
