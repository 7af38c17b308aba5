"""The worker's loop: the modem's life cycle, and one small step at a time for everything else.

Each :meth:`ModemWorker.step` (re)opens the port and (re)initialises the
modem when needed, handles what the modem reported, refreshes its state,
then sends the next due message. A vanished port is reopened with backoff,
a reboot (RDY) is followed by a fresh init, a silent modem goes up the
recovery ladder. The AT reader thread only queues indications and wakes
the loop.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import replace

from appliance.clock import Clock
from appliance.config import Config, ModemConfig
from appliance.db import Database, is_busy
from appliance.errors import StorageFull
from appliance.journal import HandoverJournal
from appliance.modemstatus import ModemStatusBoard
from appliance.sendqueue import SendQueue
from appliance.worker.bookkeeping import Bookkeeping
from appliance.worker.claim import Claimer
from appliance.worker.collector import Collector
from appliance.worker.pool import Pool
from appliance.worker.publisher import StatusPublisher
from appliance.worker.recovery import SOFT_RESET_WAIT, HungModemRecovery
from appliance.worker.sender import DEVICE_HOLD, Sender
from hw.errors import CommandFailed, ModemError, ModemNotReady, ModemRebooted, ModemTimeout
from hw.modem.driver import Modem, Timeouts
from hw.power import PowerSwitch

log = logging.getLogger(__name__)

#: Seconds between modem state refreshes (signal, registration, operator).
REFRESH_INTERVAL = 30.0
#: Longest idle wait before looking at the queue again (other processes add to it).
POLL_INTERVAL = 1.0
REOPEN_MIN, REOPEN_MAX = 1.0, 30.0
PAUSED_WAIT_MAX = 60.0
#: Seconds to wait when the database stayed locked past its own timeout (a long write elsewhere).
BUSY_WAIT = 1.0
#: Seconds between looks for room when the data storage is full.
FULL_WAIT = 10.0
#: A worker that shows no sign of life this long past the wait it announced is stuck (a bug, a
#: driver call that never returns): the daemon then stops its systemd watchdog pings, so systemd
#: restarts the service. Every modem call has a timeout; the longest is one AT+CMGS (send_timeout).
STUCK_AFTER = 300.0


class ModemWorker:
    """Sends the queue through one modem until ``stop`` is set."""

    def __init__(self, config: Config, modem_config: ModemConfig, *, clock: Clock, stop: threading.Event,
                 poll_interval: float = POLL_INTERVAL, pool: Pool | None = None,
                 power: PowerSwitch | None = None, stuck_after: float = STUCK_AFTER):
        self.config = config
        self.modem_config = modem_config
        self.label = modem_config.label
        self.carrier = modem_config.carrier
        self.pool = pool or Pool()
        self.clock = clock
        self.poll_interval = poll_interval
        self.stuck_after = max(stuck_after, 2 * modem_config.send_timeout)
        self._alive_until = float("inf")  # see _beat() and stuck_for()
        self._stop = stop
        self._wake = threading.Event()
        self._restart_wanted = threading.Event()
        self._retry_at = 0.0
        self._retry_delay = REOPEN_MIN
        self._refresh_at = 0.0
        self._last_problem = ""
        self._full = False
        self.db = Database.in_data_dir(config.data_dir)
        self.queue = SendQueue(self.db, clock)
        self.journal = HandoverJournal(config.data_dir, modem_config.label)
        self.bookkeeping = Bookkeeping()
        m = modem_config
        self.modem = Modem(m.port, m.baudrate, sim_pin=m.sim_pin,
                           timeouts=Timeouts(command=m.command_timeout, send=m.send_timeout,
                                             sync=min(1.0, m.command_timeout), prompt=max(5.0, m.command_timeout)),
                           on_urc=self._on_urc, on_lost=self._on_lost)
        self.collector = Collector(self.modem, self.db, clock=clock, bookkeeping=self.bookkeeping,
                                   data_dir=config.data_dir, wake=self._wake.set, carrier=self.carrier)
        self.claimer = Claimer(modem_config, self.db, self.queue, clock=clock, pool=self.pool,
                               data_dir=config.data_dir, iccid=lambda: self.modem.state.iccid)
        self.sender = Sender(config, modem_config, self.modem, self.queue, claimer=self.claimer,
                             journal=self.journal, bookkeeping=self.bookkeeping, pool=self.pool, clock=clock,
                             stop=stop, beat=self._beat, trouble=self._modem_trouble, problem=self._problem)
        self.recovery = HungModemRecovery(self.modem, power, label=self.label, clock=clock, stop=stop,
                                          beat=self._beat)
        self.publisher = StatusPublisher(ModemStatusBoard(self.db, clock), port=m.port, label=self.label,
                                         carrier=self.carrier, clock=clock)

    @property
    def recovery_steps(self) -> list[str]:
        """Every hung-modem recovery step taken, in order (re-sync, soft reset, power cycle, dead)."""
        return self.recovery.steps

    # --- life cycle -------------------------------------------------------------------

    def wake(self) -> None:
        """Cut an idle wait short (the daemon is stopping, or there is news)."""
        self._wake.set()

    def _beat(self, waiting: float = 0.0) -> None:
        """A sign of life; ``waiting``: the seconds this thread is about to wait on purpose."""
        self._alive_until = self.clock.monotonic() + waiting + self.stuck_after

    def stuck_for(self) -> float:
        """Seconds past the last sign of life's allowance: > 0 means the loop is stuck."""
        return self.clock.monotonic() - self._alive_until

    def request_restart(self) -> None:
        """Restart the modem (AT+CFUN=1,1) between two messages, as staff asked from the panel."""
        self._restart_wanted.set()
        self.wake()

    def run(self) -> None:
        """Run until the shared stop event is set; then finish the message in hand and clean up."""
        log.info("%s: sending through %s", self.label, self.modem_config.port)
        self.journal.open()
        try:
            while not self._stop.is_set():
                self._beat()
                try:
                    self.step()
                except sqlite3.OperationalError as exc:
                    if not is_busy(exc):
                        raise
                    log.warning("%s: the database stayed busy (%s); trying again in a moment", self.label, exc)
                    self._wait(BUSY_WAIT)
                except StorageFull as exc:  # wait for room; the bookkeeping stays in memory until it fits
                    if not self._full:
                        log.error("%s: %s", self.label, exc)
                        self._full = True
                    self._wait(FULL_WAIT)
                else:
                    if self._full:
                        log.warning("%s: the data storage has room again; sending goes on", self.label)
                        self._full = False
        finally:
            self._flush_at_stop()
            self.sender.release_next()
            self.journal.close()
            if self.collector.delete_pending and not self.modem.closed:
                try:
                    self.collector.delete_collected()
                except ModemError:
                    pass  # read again at the next start; stored once
            self.modem.close()
            self._publish(force=True, state="stopped", detail="the smsgenie daemon stopped")
            self.db.close()
            log.info("%s: stopped", self.label)

    # --- one step -------------------------------------------------------------------------

    def step(self) -> None:
        if self._restart_wanted.is_set():
            self._restart_wanted.clear()
            return self._restart()
        now = self.clock.monotonic()
        if self.modem.closed or self.modem.needs_init:
            if now < self._retry_at:
                return self._idle(self._retry_at - now)
            if not self._bring_up():
                return self._idle(self._retry_at - self.clock.monotonic())
        try:
            self._tend_modem(now)
        except ModemError as exc:
            self._modem_trouble(exc)
            return None
        self._publish()
        if not self._free(now):
            return None
        if self.sender.next is None:
            self.bookkeeping.flush()  # what was sent must be counted before the caps are checked
        msg, self.sender.next = self.sender.next or self.claimer.claim(), None
        if msg is None:
            return self._nothing_to_send()
        if now < self.sender.next_send_at:  # pacing: the SIM's minimum gap between messages
            self.sender.next = msg
            return self._pace(self.sender.next_send_at - now)
        self.sender.send(msg)
        return None

    def _tend_modem(self, now: float) -> None:
        """What the modem reported, the collection of stored texts, and a state refresh when due."""
        self.collector.handle_urcs()
        if self.collector.delete_pending:
            self.collector.delete_collected()
        if self.collector.due(now):
            self.collector.collect()
        if self.modem.refresh_wanted or now >= self._refresh_at:
            self.modem.refresh()
            self._refresh_at = now + REFRESH_INTERVAL

    def _free(self, now: float) -> bool:
        """Can this modem take a message now? Tells the pool either way; idles when not."""
        if not self.modem.state.ready:
            self.pool.set(self.label, self.carrier, False)
            self._idle(self.poll_interval)
            return False
        if now < self.sender.hold_until:
            self.pool.set(self.label, self.carrier, False)
            self._idle(self.sender.hold_until - now)
            return False
        self.pool.set(self.label, self.carrier, True)
        return not self._stop.is_set()

    def _nothing_to_send(self) -> None:
        if self.claimer.paused:
            self.pool.set(self.label, self.carrier, False)
            resume_at = self.claimer.paused[1]
            # Nothing but the clock changes a cap or the quiet hours: sleep until they lift
            # (at most a minute, so changed quiet hours or caps are seen; stop wakes us anyway).
            wait = self.poll_interval if resume_at is None else min(PAUSED_WAIT_MAX,
                                                                      max(0.0, resume_at - self.clock.time()))
            return self._idle(max(wait, 0.001))
        if self.collector.waiting and not self.collector.collecting:  # nothing to send: collect reports now
            try:
                self.collector.collect()
            except ModemError as exc:
                self._modem_trouble(exc)
            return self._idle(0)
        due = self.queue.next_due_at()
        return self._idle(self.poll_interval if due is None else
                          min(self.poll_interval, max(0.0, due - self.clock.time())))

    def _wait(self, seconds: float) -> None:
        """Wait without touching the database (it is busy or full)."""
        if not self._stop.is_set():
            self._beat(seconds)
            self.clock.wait(self._wake, seconds)
        if not self._stop.is_set():
            self._wake.clear()

    def _flush_at_stop(self) -> None:
        try:
            self.bookkeeping.flush()
        except (StorageFull, sqlite3.OperationalError) as exc:  # the next start settles what is left 'sending'
            log.error("%s: the last bookkeeping could not be written (%s); the next start settles it", self.label,
                      exc)

    def _idle(self, seconds: float) -> None:
        self._settle()
        if seconds > 0 and not self._stop.is_set():
            self._beat(seconds)
            self.clock.wait(self._wake, seconds)
        if not self._stop.is_set():
            self._wake.clear()

    def _pace(self, seconds: float) -> None:
        """Wait out the minimum gap, keeping the claimed message."""
        self.bookkeeping.flush()
        if not self._stop.is_set():
            self._beat(seconds)
            self.clock.wait(self._stop, seconds)

    def _settle(self) -> None:
        """Between steps nothing is with the modem: write the last send's bookkeeping, give back a
        message claimed ahead, and empty the hand-over journal."""
        self.bookkeeping.flush()
        self.sender.release_next()
        self.journal.clear()

    # --- the modem's life -------------------------------------------------------------------

    def _bring_up(self) -> bool:
        """Open the port and initialise the modem; on failure schedule the next try."""
        try:
            if self.modem.closed:
                self.modem.open()
            self.modem.init()
            self.bookkeeping.flush()
            self.collector.restart()
            self.collector.collect()
            self.bookkeeping.flush()  # opt-outs that came while we were away count before the first send
        except ModemNotReady as exc:
            self._problem(str(exc))
            self._schedule_retry(max_delay=DEVICE_HOLD)
            return False
        except ModemTimeout as exc:  # open, but silent: a hung modem
            self._problem(str(exc))
            wait = self.recovery.next_step()  # a power cycle waits in there
            self._retry_at = self.clock.monotonic() + wait
            return False
        except ModemError as exc:
            self._problem(str(exc))
            if not isinstance(exc, (ModemRebooted, CommandFailed)):
                self.modem.close()
            self._schedule_retry()
            return False
        finally:
            self._publish()
        self.recovery.answered()
        self._retry_delay = REOPEN_MIN
        self._refresh_at = self.clock.monotonic() + REFRESH_INTERVAL
        log.info("modem ready: %s, %s, signal %s", self.modem.state.operator or "no operator",
                 self.modem.state.detail, self.modem.state.signal)
        self._last_problem = ""
        return True

    def _restart(self) -> None:
        """Staff asked: finish the bookkeeping, give back a message claimed ahead, reset the modem."""
        self._settle()
        log.warning("%s: restarting the modem, as asked at the counter", self.label)
        if not self.modem.closed:
            try:
                self.modem.soft_reset()
            except ModemError:
                pass
            self.modem.close()
        self.modem.state = replace(self.modem.state, state="starting", detail="restarting, as asked at the counter")
        self._publish(force=True)
        self._retry_at = self.clock.monotonic() + SOFT_RESET_WAIT

    def _schedule_retry(self, max_delay: float = REOPEN_MAX) -> None:
        self._retry_at = self.clock.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, max_delay)

    def _problem(self, text: str) -> None:
        if text != self._last_problem:
            log.warning("%s", text)
            self._last_problem = text

    def _modem_trouble(self, exc: ModemError) -> None:
        """A command outside a send failed: resync, or reopen if the port is gone."""
        self.sender.release_next()
        self._problem(f"modem trouble: {exc}")
        self.modem.needs_init = True
        if self.modem.closed:
            self.modem.close()
        self._schedule_retry()

    # --- what the modem tells us (the AT reader thread) -------------------------------------------

    def _on_urc(self, urc) -> None:
        self.collector.on_urc(urc)

    def _on_lost(self, exc: ModemError) -> None:
        self._wake.set()

    def _publish(self, force: bool = False, **override) -> None:
        holding = self.sender.hold_reason if (self.clock.monotonic() < self.sender.hold_until
                                              and self.modem.state.ready) else ""
        self.publisher.publish(self.modem.state, holding=holding, paused=self.claimer.paused, force=force,
                               **override)
