"""One modem's worker: sends the queue through its modem and keeps going whatever the modem does.

The daemon runs one worker per configured modem, each in its own thread
with its own database connection. A worker does everything that touches
its modem, in a loop of small steps (:meth:`ModemWorker.step`): (re)open
the port, (re)initialise the modem, handle what the modem reported (status
reports, inbound texts), refresh its state, then send the next due
message. The AT reader thread only queues URCs and wakes the loop.

Every fault becomes a queue outcome, never a crash: a refused message is
retried or failed by its error code, a modem that went quiet after taking a
message leaves it ``uncertain``, a vanished port is reopened with backoff,
and a reboot (RDY) is followed by a fresh init.
"""

from __future__ import annotations

import functools
import logging
import os
import queue as stdqueue
import random
import threading
from dataclasses import replace
from datetime import datetime, timedelta

from appliance import phones, policy
from appliance.clock import Clock
from appliance.config import Config, ModemConfig
from appliance.db import Database
from appliance.inbox import Inbox
from appliance.journal import HandoverJournal
from appliance.optout import OptOuts, is_opt_out
from appliance.policy import UNLIMITED, caps_for, quiet_until
from appliance.privacy import mask_number
from appliance.sendqueue import Message, RetryPolicy, SendQueue
from appliance.settings import read_settings
from appliance.timecheck import ClockCheck
from hw.errors import (
    CommandFailed,
    HardwareError,
    ModemError,
    ModemNotReady,
    ModemRebooted,
    ModemTimeout,
    OutcomeUnknown,
    PduError,
)
from hw.modem import pdu as pducodec
from hw.modem.at import Urc
from hw.modem.driver import Modem, Timeouts
from hw.modem.segments import split
from hw.power import PowerSwitch

log = logging.getLogger(__name__)

#: Seconds between modem state refreshes (signal, registration, operator).
REFRESH_INTERVAL = 30.0
#: Seconds between heartbeats written for ``smsgenie status``.
PUBLISH_INTERVAL = 10.0
#: Longest idle wait before looking at the queue again (other processes add to it).
POLL_INTERVAL = 1.0
#: Delivery reports wait in the modem's memory and are collected in batches:
#: one AT+CMGL and one commit for many, instead of two AT round trips each.
REPORT_BATCH = 20
REPORT_MAX_DELAY = 3.0
#: After the modem says the box cannot send (no SIM, no network), wait this long.
DEVICE_HOLD = 15.0
REOPEN_MIN, REOPEN_MAX = 1.0, 30.0
#: Hung-modem recovery: how long to let each step take effect before trying the modem again.
RESYNC_WAIT = 2.0
SOFT_RESET_WAIT = 20.0
POWER_OFF_SECONDS = 3.0
POWER_BOOT_WAIT = 20.0
DEAD_RETRY = 600.0
PAUSED_WAIT_MAX = 60.0
#: A worker that shows no sign of life this long past the wait it announced is stuck (a bug, a
#: driver call that never returns): the daemon then stops its systemd watchdog pings, so systemd
#: restarts the service. Every modem call has a timeout; the longest is one AT+CMGS (send_timeout).
STUCK_AFTER = 300.0


class Pool:
    """Which modems are free right now, so a message waits for its own carrier's SIM when that one is free."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, tuple[str, bool]] = {}

    def set(self, label: str, carrier: str, available: bool) -> None:
        with self._lock:
            self._state[label] = (carrier, available)

    def served_elsewhere(self, label: str) -> tuple[str, ...]:
        """Carriers another free modem is on: their messages are left for it."""
        with self._lock:
            return tuple(sorted({c for other, (c, free) in self._state.items() if other != label and free and c}))


class ModemWorker:
    """Sends the queue through one modem until ``stop`` is set."""

    def __init__(self, config: Config, modem_config: ModemConfig, *, clock: Clock, stop: threading.Event,
                 poll_interval: float = POLL_INTERVAL, pool: Pool | None = None,
                 power: PowerSwitch | None = None, stuck_after: float = STUCK_AFTER):
        self.config = config
        self.modem_config = modem_config
        self.label = modem_config.label
        self.carrier = modem_config.carrier
        self.caps = caps_for(modem_config)
        """The caps in force; re-read with the settings (see :meth:`_refresh_settings`)."""
        self.pool = pool or Pool()
        self._random = random.Random()
        self._next_send_at = 0.0       # monotonic: the minimum gap (with jitter) after the last send
        self._paused: tuple[str, float | None] | None = None  # (why, resumes at) while a cap or quiet hours hold
        self._settings_read_at = -1e18
        self._quiet_spec = ""
        self.power = power
        self._sending_to: str | None = None
        self._unanswered = 0           # bring-ups in a row that found the modem silent
        self.recovery_steps: list[str] = []
        """Every hung-modem recovery step taken, in order (re-sync, soft reset, power cycle, dead)."""
        self.clock = clock
        self.poll_interval = poll_interval
        self.stuck_after = max(stuck_after, 2 * modem_config.send_timeout)
        self._alive_until = float("inf")  # see _beat() and stuck_for()
        self.db = Database.in_data_dir(config.data_dir)
        self.queue = SendQueue(self.db, self.clock)
        self.journal = HandoverJournal(config.data_dir, modem_config.label)
        self.inbox = Inbox(self.db)
        self.optouts = OptOuts(self.db, self.clock)
        self.clock_check = ClockCheck(self.db, self.clock)
        q = config.queue
        self.policy = RetryPolicy(q.max_attempts, q.retry_base_seconds, q.retry_cap_seconds)
        self.validity = timedelta(hours=q.validity_hours)
        m = modem_config
        self.modem = Modem(m.port, m.baudrate, sim_pin=m.sim_pin,
                           timeouts=Timeouts(command=m.command_timeout, send=m.send_timeout,
                                             sync=min(1.0, m.command_timeout), prompt=max(5.0, m.command_timeout)),
                           on_urc=self._on_urc, on_lost=self._on_lost)
        self._urcs: stdqueue.Queue[Urc] = stdqueue.Queue()
        self._wake = threading.Event()
        self._stop = stop
        self._retry_at = 0.0
        self._retry_delay = REOPEN_MIN
        self._refresh_at = 0.0
        self._published: tuple | None = None
        self._published_at = -1e18
        self._hold_until = 0.0
        self._hold_reason = ""
        self._last_problem = ""
        self._memories: list[str] = []  # message memories the modem has indicated (SM, ME, SR)
        self._stored_waiting = 0        # indications (+CDSI/+CMTI) not yet collected
        self._stored_since = 0.0
        self._collect_now = False
        self._collecting = False        # a listing not yet stored and deleted
        self._to_delete: list = []      # listed and stored: delete from the modem at the next step
        self._restart_wanted = threading.Event()
        self._deferred: list = []       # bookkeeping of the last send, written during the next one
        self._next: Message | None = None  # claimed while the modem works on the current message
        self._pdus: dict[int, list[pducodec.Pdu]] = {}  # ... and its PDUs, encoded meanwhile

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
                self.step()
        finally:
            self._flush_deferred()
            self._release_next()
            self.journal.close()
            if self._to_delete and not self.modem.closed:
                try:
                    self._delete_collected()
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
            self._handle_urcs()
            if self._to_delete:
                self._delete_collected()
            if not self._collecting and (self._collect_now or self._stored_waiting >= self._report_batch() or (
                    self._stored_waiting and now - self._stored_since >= REPORT_MAX_DELAY)):
                self._collect_stored()
            if self.modem.refresh_wanted or now >= self._refresh_at:
                self.modem.refresh()
                self._refresh_at = now + REFRESH_INTERVAL
        except ModemError as exc:
            self._modem_trouble(exc)
            return None
        self._publish()
        if not self.modem.state.ready:
            self.pool.set(self.label, self.carrier, False)
            return self._idle(self.poll_interval)
        if now < self._hold_until:
            self.pool.set(self.label, self.carrier, False)
            return self._idle(self._hold_until - now)
        self.pool.set(self.label, self.carrier, True)
        if self._stop.is_set():
            return None
        if self._next is None:
            self._flush_deferred()  # what was sent must be counted before the caps are checked
        msg, self._next = self._next or self._claim(), None
        if msg is None and self._paused:
            self.pool.set(self.label, self.carrier, False)
            resume_at = self._paused[1]
            # Nothing but the clock changes a cap or the quiet hours: sleep until they lift
            # (at most a minute, so changed quiet hours or caps are seen; stop wakes us anyway).
            wait = self.poll_interval if resume_at is None else min(PAUSED_WAIT_MAX,
                                                                      max(0.0, resume_at - self.clock.time()))
            return self._idle(max(wait, 0.001))
        if msg is not None and now < self._next_send_at:  # pacing: the SIM's minimum gap between messages
            self._next = msg
            return self._pace(self._next_send_at - now)
        if msg is None:
            if self._stored_waiting and not self._collecting:  # nothing to send: collect reports now
                try:
                    self._collect_stored()
                except ModemError as exc:
                    self._modem_trouble(exc)
                return self._idle(0)
            due = self.queue.next_due_at()
            wait = self.poll_interval if due is None else min(self.poll_interval, max(0.0, due - self.clock.time()))
            return self._idle(wait)
        self._send(msg)
        return None

    def _idle(self, seconds: float) -> None:
        self._settle()
        if seconds > 0 and not self._stop.is_set():
            self._beat(seconds)
            self.clock.wait(self._wake, seconds)
        if not self._stop.is_set():
            self._wake.clear()

    def _settle(self) -> None:
        """Between steps nothing is with the modem: write the last send's bookkeeping, give back a
        message claimed ahead, and empty the hand-over journal."""
        self._flush_deferred()
        self._release_next()
        self.journal.clear()

    def _bring_up(self) -> bool:
        """Open the port and initialise the modem; on failure schedule the next try."""
        try:
            if self.modem.closed:
                self.modem.open()
            self.modem.init()
            self._flush_deferred()
            self._to_delete, self._collecting = [], False  # a fresh listing covers what was pending
            self._collect_stored()
            self._flush_deferred()  # opt-outs that came while we were away count before the first send
        except ModemNotReady as exc:
            self._problem(str(exc))
            self._schedule_retry(max_delay=DEVICE_HOLD)
            return False
        except ModemTimeout as exc:  # open, but silent: a hung modem
            self._problem(str(exc))
            self._recover_hung()
            return False
        except ModemError as exc:
            self._problem(str(exc))
            if not isinstance(exc, (ModemRebooted, CommandFailed)):
                self.modem.close()
            self._schedule_retry()
            return False
        finally:
            self._publish()
        self._unanswered = 0
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

    def _recover_hung(self) -> None:
        """Escalate, one step per silent bring-up: re-sync, soft reset, power cycle, then report dead.

        While a modem recovers it takes no messages; the pool's other modems
        take its carrier's (routing only waits for a modem that is free).
        """
        self._unanswered += 1
        step = self._unanswered
        if step == 1:  # init re-syncs (ESC, AT...) on the next try
            self._take_step("re-sync", RESYNC_WAIT)
        elif step == 2:
            try:
                self.modem.soft_reset()
            except ModemError:
                pass
            self.modem.close()
            self._take_step("soft reset", SOFT_RESET_WAIT)
        elif step == 3 and self.power is not None:
            self.modem.close()
            try:
                self._beat(POWER_OFF_SECONDS)
                self.power.cycle(POWER_OFF_SECONDS, lambda s: self.clock.wait(self._stop, s))
            except HardwareError as exc:
                log.error("%s: power cycle failed: %s", self.label, exc)
            self._take_step("power cycle", POWER_BOOT_WAIT)
        else:
            self.modem.close()
            self._unanswered = 0  # the whole ladder again, later
            self._take_step("dead", DEAD_RETRY)
            self.modem.state = replace(
                self.modem.state, state="dead",
                detail="the modem does not answer after a re-sync, a soft reset"
                       + (" and a power cycle" if self.power is not None else " (no power switch configured)")
                       + f": check it; the box tries again every {DEAD_RETRY / 60:.0f} minutes")

    def _take_step(self, step: str, wait: float) -> None:
        self.recovery_steps.append(step)
        log.warning("%s: modem not answering: %s", self.label, step)
        self._retry_at = self.clock.monotonic() + wait

    def _schedule_retry(self, max_delay: float = REOPEN_MAX) -> None:
        self._retry_at = self.clock.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, max_delay)

    def _problem(self, text: str) -> None:
        if text != self._last_problem:
            log.warning("%s", text)
            self._last_problem = text

    def _modem_trouble(self, exc: ModemError) -> None:
        """A command outside a send failed: resync, or reopen if the port is gone."""
        self._release_next()
        self._problem(f"modem trouble: {exc}")
        self.modem.needs_init = True
        if self.modem.closed:
            self.modem.close()
        self._schedule_retry()

    # --- sending ----------------------------------------------------------------------------

    def _send(self, msg: Message) -> None:
        """Hand each part of ``msg`` to the modem and settle the message by what happens.

        The claim ("sending") is already on the card. The part references and
        "sent" are bookkeeping that is written while the modem works on the
        *next* part or message (:meth:`_flush_deferred`), so the modem never
        waits for the database.
        """
        try:
            pdus = self._pdus.pop(msg.id, None) or self._encode(msg)
        except PduError as exc:
            self._flush_deferred()
            self.queue.fail(msg.id, f"cannot be sent: {exc}")
            log.warning("message %d to %s failed: %s", msg.id, mask_number(msg.recipient), exc)
            return
        handed = False
        self.pool.set(self.label, self.carrier, False)  # busy
        self._sending_to = msg.recipient
        gap = self.caps.min_gap_seconds + self._random.uniform(0, self.caps.jitter_seconds)
        self._next_send_at = self.clock.monotonic() + gap
        for seq, p in enumerate(pdus, start=1):
            if seq in msg.accepted:
                continue
            part = "" if len(pdus) == 1 else f"part {seq} of {len(pdus)}: "
            self._beat()
            try:
                # noted in the journal while the modem answers AT+CMGS with its prompt
                pending = self.modem.submit(p, meanwhile=None if handed else functools.partial(
                    self.journal.record, msg.id, msg.sending_at))
                handed = True
            except ModemError as exc:
                return self._not_sent(msg, part, exc)
            # The network is working: write down what came before and claim what comes
            # next, in one transaction (one fsync: on an SD card that is what costs).
            with self.db.atomic():
                self._flush_deferred()
                if seq == len(pdus):
                    self._pre_claim()
            try:
                reference = pending.reference()
            except ModemError as exc:
                return self._not_sent(msg, part, exc)
            self._deferred.append(functools.partial(self._accepted, msg.id, seq, reference, self.clock.time()))
        self._deferred.append(functools.partial(self._sent, msg, len(pdus), self.clock.time()))

    def _accepted(self, message_id: int, seq: int, reference: int | None, at: float) -> None:
        self.queue.record_segment(message_id, seq, reference, at=at, modem=self.label)

    def _claim(self, in_flight: int = 0, in_flight_to: str | None = None) -> Message | None:
        """The next message for this modem, within its caps, its routing and the quiet hours.

        ``in_flight``: parts with the modem now and not yet in the send log
        (the last part of the current message, to ``in_flight_to``, when
        claiming ahead).
        """
        now = self.clock.time()
        held = self.queue.sending_paused()
        if held is not None:
            self._pause(f"sending paused by {held['by']}", None)
            return None
        behind = self.clock_check.behind()
        if behind:
            self._pause(f"the clock is {behind / 60:.0f} min behind the last time this box recorded: waiting for "
                        f"network time so the record's times are right (is the box online? if the clock is "
                        f"right, 'smsgenie clock reset')", now + 60)
            return None
        self._refresh_settings()
        quiet_end = quiet_until(now, self._quiet_spec)
        gate_now = policy.gate(self.db.conn, self.label, self.caps, now, in_flight, in_flight_to)
        if not gate_now.open:
            self._pause(gate_now.reason, gate_now.resume_at)
            return None
        msg = self.queue.claim(max_parts=gate_now.allowed, carrier=self.carrier or None,
                               avoid=self.pool.served_elsewhere(self.label), quiet=quiet_end is not None)
        if msg is not None:
            self._paused = None
            return msg
        if quiet_end is not None and self.queue.has_due(marketing_only=True):
            self._pause("quiet hours: marketing lists wait", quiet_end)
        elif gate_now.allowed < UNLIMITED and self.queue.has_due(more_parts_than=gate_now.allowed):
            self._pause(f"the caps allow {gate_now.allowed} more part{'s' if gate_now.allowed != 1 else ''} "
                        f"now and the next message needs more", self.clock.time() + 60)
        else:
            self._paused = None
        return None

    def _pause(self, why: str, resume_at: float | None) -> None:
        if self._paused is None or self._paused[0] != why:
            when = datetime.fromtimestamp(resume_at).strftime("%H:%M") if resume_at else "later"
            log.info("%s: sending waits (%s) until %s", self.label, why, when)
        self._paused = (why, resume_at)

    def _refresh_settings(self) -> None:
        """Re-read the quiet hours and this SIM's caps at most once a minute (the admin may change them)."""
        now = self.clock.monotonic()
        if now - self._settings_read_at <= 60:
            return
        self._settings_read_at = now
        values = read_settings(self.config.data_dir)
        self._quiet_spec = values["quiet_hours"]
        caps = caps_for(self.modem_config, values["sim_caps"].get(self.label))
        if caps != self.caps:
            log.info("%s: caps now %s", self.label, caps)
            self.caps = caps

    def _pace(self, seconds: float) -> None:
        """Wait out the minimum gap, keeping the claimed message."""
        self._flush_deferred()
        if not self._stop.is_set():
            self._beat(seconds)
            self.clock.wait(self._stop, seconds)

    def _encode(self, msg: Message) -> list[pducodec.Pdu]:
        return pducodec.encode_message(msg.recipient, split(msg.text), concat_reference=msg.concat_ref,
                                       validity=self.validity)

    def _sent(self, msg: Message, parts: int, at: float) -> None:
        self.queue.mark_sent(msg.id, at=at)
        log.info("message %d sent to %s (%d part%s)", msg.id, mask_number(msg.recipient), parts,
                 "" if parts == 1 else "s")

    def _flush_deferred(self) -> None:
        while self._deferred:
            self._deferred.pop(0)()

    def _pre_claim(self) -> None:
        """Claim the next message (an fsync) while the modem is busy, so it costs no sending time."""
        if self._next is None and not self._stop.is_set() and self.clock.monotonic() >= self._hold_until:
            self._next = self._claim(in_flight=1, in_flight_to=self._sending_to)  # the part the modem has now
            if self._next is not None:
                try:
                    self._pdus = {self._next.id: self._encode(self._next)}
                except PduError:
                    pass  # _send fails it with the reason

    def _release_next(self) -> None:
        if self._next is not None:
            self.queue.unclaim(self._next.id)
            self._next = None
            self._pdus.clear()

    def _not_sent(self, msg: Message, part: str, exc: ModemError) -> None:
        """A part did not go (or may have gone): settle the message by the kind of failure."""
        self._flush_deferred()
        self._release_next()
        who = mask_number(msg.recipient)
        if isinstance(exc, OutcomeUnknown):
            self.queue.mark_uncertain(msg.id, f"{part}{exc}. Check with the customer, then requeue it "
                                              f"if it did not arrive")
            log.warning("message %d to %s is uncertain: %s", msg.id, who, exc)
            self._modem_trouble(exc)
        elif isinstance(exc, CommandFailed):
            reason = f"{part}{exc.reason}"
            if exc.device_problem:
                self.queue.give_back(msg.id, reason)
                self._hold(reason)
                self.modem.needs_init = True
            elif exc.retryable:
                state = self.queue.retry_later(msg.id, reason, self.policy)
                log.info("message %d to %s: %s (%s)", msg.id, who, reason,
                         "will retry" if state == "queued" else "failed")
            else:
                self.queue.fail(msg.id, reason)
                log.info("message %d to %s failed: %s", msg.id, who, reason)
        elif isinstance(exc, (ModemTimeout, ModemRebooted)):
            # No prompt: the modem never had the message. Counted, but no backoff:
            # once the modem is resynced it may go at once.
            self.queue.retry_later(msg.id, f"{part}{exc}", RetryPolicy(self.policy.max_attempts, 0.0, 0.0))
            self._modem_trouble(exc)
        else:  # port gone or closed: not the message's fault
            self.queue.give_back(msg.id, f"{part}{exc}")
            self._modem_trouble(exc)

    def _report_batch(self) -> int:
        """Collect before the modem's memory is half full: a full one refuses new texts."""
        total = self.modem.storage[1] if self.modem.storage else 0
        return max(1, min(REPORT_BATCH, total // 2)) if total else REPORT_BATCH

    def _hold(self, reason: str) -> None:
        self._hold_until = self.clock.monotonic() + DEVICE_HOLD
        self._hold_reason = reason
        self._problem(f"sending paused: {reason}")

    # --- what the modem tells us ---------------------------------------------------------------

    def _on_urc(self, urc: Urc) -> None:  # reader thread
        self._urcs.put(urc)
        self._wake.set()

    def _on_lost(self, exc: ModemError) -> None:  # reader thread
        self._wake.set()

    def _handle_urcs(self) -> None:
        while True:
            try:
                urc = self._urcs.get_nowait()
            except stdqueue.Empty:
                return
            if urc.name in ("+CDS", "+CMT") and urc.pdu:
                fields = urc.args.split(",")
                length = int(fields[-1]) if fields[-1].strip().isdigit() else None
                self._incoming(urc.pdu, length)
            elif urc.name in ("+CMTI", "+CDSI"):
                memory = urc.args.partition(",")[0].strip().strip('"')
                if memory and memory not in self._memories:
                    self._memories.append(memory)
                if not self._stored_waiting:
                    self._stored_since = self.clock.monotonic()
                self._stored_waiting += 1
                if urc.name == "+CMTI":
                    self._collect_now = True  # a customer wrote: an opt-out must count at once

    def _collect_stored(self) -> None:
        """Keep every text and delivery report waiting in the modem, then let the modem forget them.

        Three steps, so the modem never waits for the database: list the
        modem's memories now (AT+CMGL, which marks them read); store what was
        found in one durable commit while the modem works on the next send;
        then delete the read messages (AT+CMGD=0,1) at the next step. A crash
        or power cut in between means reading the same PDUs again (stored
        once), never losing one. No new listing starts until the last one is
        deleted, so nothing is listed twice.
        """
        self._stored_waiting = 0
        self._collect_now = False
        memories = list(dict.fromkeys(m for m in [self.modem.read_memory, *self._memories] if m)) or [None]
        batch = []
        for memory in memories:
            try:
                stored = self.modem.list_stored(memory)
            except CommandFailed as exc:
                log.warning("could not list the modem's stored messages%s: %s",
                            f" in {memory}" if memory else "", exc)
                continue
            items = [i for i in stored if i.status not in (2, 3)]  # 2, 3: outgoing drafts, not ours
            if items:
                batch.append((memory, items))
        if batch:
            self._collecting = True
            self._deferred.append(functools.partial(self._store_collected, batch))

    def _store_collected(self, batch: list) -> None:
        with self.db.atomic():
            for _memory, items in batch:
                for item in items:
                    self._incoming(item.pdu, item.length)
        self._to_delete.extend(batch)

    def _delete_collected(self) -> None:
        batch, self._to_delete = self._to_delete, []
        try:
            for memory, items in batch:
                if memory:
                    self.modem.select_memory(memory)
                try:
                    self.modem.delete_read()
                except CommandFailed:
                    for item in items:
                        self.modem.delete_stored(item.index)
        finally:
            self._collecting = False  # if deleting failed, the next listing reads them again

    def _incoming(self, pdu_hex: str, length: int | None) -> None:
        try:
            decoded = pducodec.decode_incoming(pdu_hex, length)
        except PduError as exc:
            # Never drop what we cannot read: keep it, marked, for a person to look at.
            self.queue.store_inbound("?", None, None, pdu_hex, problem=f"unreadable PDU: {exc}")
            log.warning("stored an unreadable PDU from the modem: %s", exc)
            return
        if isinstance(decoded, pducodec.StatusReport):
            msg = self.queue.apply_report(decoded.reference, decoded.recipient, decoded.outcome,
                                          decoded.status, decoded.reason)
            if msg is None:
                log.info("delivery report for %s (ref %d) matches no message", mask_number(decoded.recipient),
                         decoded.reference)
            return
        concat = decoded.concat
        stored = self.queue.store_inbound(
            decoded.sender, decoded.timestamp.isoformat() if decoded.timestamp else None, decoded.text, pdu_hex,
            concat=(concat.reference, concat.sequence, concat.total) if concat else None,
            problem=decoded.user_data.problem)
        if not stored:
            return
        log.info("inbound SMS from %s", mask_number(decoded.sender))
        whole = decoded.text if concat is None else self.inbox.complete_text(decoded.sender, concat.reference,
                                                                             concat.total)
        if is_opt_out(whole):
            number = self._e164(decoded.sender)
            if self.optouts.add(number, "sms", f"replied {whole.strip()!r}"):
                log.info("%s opted out (replied %r)", mask_number(number), whole.strip())

    # --- state for people ---------------------------------------------------------------------------

    def _e164(self, sender: str) -> str:
        """A sender as the opt-out list keeps numbers (E.164), or as it came if it is not one."""
        try:
            return phones.normalise(sender, read_settings(self.config.data_dir)["default_region"]).e164
        except phones.NumberProblem:
            return sender

    def _publish(self, force: bool = False, **override) -> None:
        """Write the modem's state for ``smsgenie status`` when it changed, and as a heartbeat."""
        now = self.clock.monotonic()
        holding = now < self._hold_until and self.modem.state.ready
        key = (self.modem.state, holding and self._hold_reason, self._paused, tuple(sorted(override.items())))
        if not force and key == self._published and now - self._published_at < PUBLISH_INTERVAL:
            return
        data = self.modem.state.as_dict()
        if holding:
            data["detail"] = f"sending paused for a moment: {self._hold_reason}"
        data.update(override)
        data["pid"] = os.getpid()
        data["label"] = self.label
        data["sim_carrier"] = self.carrier
        data["paused"] = self._paused[0] if self._paused else None
        data["resumes_at"] = self._paused[1] if self._paused else None
        self.queue.set_modem_status(self.modem_config.port, data)
        self._published, self._published_at = key, now
