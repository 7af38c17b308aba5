"""The daemon: sends the queue through the modem and keeps going whatever the modem does.

One thread does everything that touches the database and the modem, in a
loop of small steps (:meth:`Daemon.step`): (re)open the port, (re)initialise
the modem, handle what the modem reported (status reports, inbound texts),
refresh its state, then send the next due message. The AT reader thread
only queues URCs and wakes the loop.

Every fault becomes a queue outcome, never a crash: a refused message is
retried or failed by its error code, a modem that went quiet after taking a
message leaves it ``uncertain``, a vanished port is reopened with backoff,
and a reboot (RDY) is followed by a fresh init.
"""

from __future__ import annotations

import logging
import os
import queue as stdqueue
import threading
from datetime import timedelta

from appliance.clock import Clock, SystemClock
from appliance.config import Config
from appliance.db import Database
from appliance.lock import DataDirLock
from appliance.privacy import mask_number
from appliance.sendqueue import Message, RetryPolicy, SendQueue
from hw.errors import (
    CommandFailed,
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

log = logging.getLogger(__name__)

#: Seconds between modem state refreshes (signal, registration, operator).
REFRESH_INTERVAL = 30.0
#: Seconds between heartbeats written for ``smsgenie status``.
PUBLISH_INTERVAL = 10.0
#: Longest idle wait before looking at the queue again (other processes add to it).
POLL_INTERVAL = 1.0
#: After the modem says the box cannot send (no SIM, no network), wait this long.
DEVICE_HOLD = 15.0
REOPEN_MIN, REOPEN_MAX = 1.0, 30.0


class Daemon:
    """Sends ``config``'s queue through its modem until :meth:`stop` is called."""

    def __init__(self, config: Config, *, clock: Clock | None = None, poll_interval: float = POLL_INTERVAL):
        self.config = config
        self.clock = clock or SystemClock()
        self.poll_interval = poll_interval
        self.db = Database.in_data_dir(config.data_dir)
        self.queue = SendQueue(self.db, self.clock)
        q = config.queue
        self.policy = RetryPolicy(q.max_attempts, q.retry_base_seconds, q.retry_cap_seconds)
        self.validity = timedelta(hours=q.validity_hours)
        m = config.modem
        self.modem = Modem(m.port, m.baudrate, sim_pin=m.sim_pin,
                           timeouts=Timeouts(command=m.command_timeout, send=m.send_timeout),
                           on_urc=self._on_urc, on_lost=self._on_lost)
        self._urcs: stdqueue.Queue[Urc] = stdqueue.Queue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._retry_at = 0.0
        self._retry_delay = REOPEN_MIN
        self._refresh_at = 0.0
        self._published: tuple | None = None
        self._published_at = -1e18
        self._hold_until = 0.0
        self._hold_reason = ""
        self._last_problem = ""
        self._memories: list[str] = []  # message memories the modem has indicated (SM, ME, SR)
        self.stats = {"sent": 0, "reports": 0, "inbound": 0}

    # --- life cycle -------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish the message in hand and return. Safe from a signal handler."""
        self._stop.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        """Run until :meth:`stop`. Holds the data-dir lock: one daemon per box."""
        with DataDirLock(self.config.data_dir):
            interrupted = self.queue.recover_interrupted()
            if interrupted:
                log.warning("%d message(s) were being sent when the box last stopped; marked uncertain",
                            interrupted)
            log.info("sending from %s through %s", self.config.data_dir, self.config.modem.port)
            try:
                while not self._stop.is_set():
                    self.step()
            finally:
                self.modem.close()
                self._publish(force=True, state="stopped", detail="the smsgenie daemon stopped")
                self.db.close()
                log.info("stopped")

    # --- one step -------------------------------------------------------------------------

    def step(self) -> None:
        now = self.clock.monotonic()
        if self.modem.closed or self.modem.needs_init:
            if now < self._retry_at:
                return self._idle(self._retry_at - now)
            if not self._bring_up():
                return self._idle(self._retry_at - self.clock.monotonic())
        try:
            self._handle_urcs()
            if self.modem.refresh_wanted or now >= self._refresh_at:
                self.modem.refresh()
                self._refresh_at = now + REFRESH_INTERVAL
        except ModemError as exc:
            self._modem_trouble(exc)
            return None
        self._publish()
        if not self.modem.state.ready:
            return self._idle(self.poll_interval)
        if now < self._hold_until:
            return self._idle(self._hold_until - now)
        if self._stop.is_set():
            return None
        msg = self.queue.claim()
        if msg is None:
            due = self.queue.next_due_at()
            wait = self.poll_interval if due is None else min(self.poll_interval, max(0.0, due - self.clock.time()))
            return self._idle(wait)
        self._send(msg)
        return None

    def _idle(self, seconds: float) -> None:
        if seconds > 0 and not self._stop.is_set():
            self.clock.wait(self._wake, seconds)
        if not self._stop.is_set():
            self._wake.clear()

    def _bring_up(self) -> bool:
        """Open the port and initialise the modem; on failure schedule the next try."""
        try:
            if self.modem.closed:
                self.modem.open()
            self.modem.init()
            self._read_stored()
        except ModemNotReady as exc:
            self._problem(str(exc))
            self._schedule_retry(max_delay=DEVICE_HOLD)
            return False
        except ModemError as exc:
            self._problem(str(exc))
            if not isinstance(exc, (ModemTimeout, ModemRebooted, CommandFailed)):
                self.modem.close()
            self._schedule_retry()
            return False
        finally:
            self._publish()
        self._retry_delay = REOPEN_MIN
        self._refresh_at = self.clock.monotonic() + REFRESH_INTERVAL
        log.info("modem ready: %s, %s, signal %s", self.modem.state.operator or "no operator",
                 self.modem.state.detail, self.modem.state.signal)
        self._last_problem = ""
        return True

    def _schedule_retry(self, max_delay: float = REOPEN_MAX) -> None:
        self._retry_at = self.clock.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, max_delay)

    def _problem(self, text: str) -> None:
        if text != self._last_problem:
            log.warning("%s", text)
            self._last_problem = text

    def _modem_trouble(self, exc: ModemError) -> None:
        """A command outside a send failed: resync, or reopen if the port is gone."""
        self._problem(f"modem trouble: {exc}")
        self.modem.needs_init = True
        if self.modem.closed:
            self.modem.close()
        self._schedule_retry()

    # --- sending ----------------------------------------------------------------------------

    def _send(self, msg: Message) -> None:
        who = mask_number(msg.recipient)
        try:
            pdus = pducodec.encode_message(msg.recipient, split(msg.text), concat_reference=msg.concat_ref,
                                           validity=self.validity)
        except PduError as exc:
            self.queue.fail(msg.id, f"cannot be sent: {exc}")
            log.warning("message %d to %s failed: %s", msg.id, who, exc)
            return
        for seq, p in enumerate(pdus, start=1):
            if seq in msg.accepted:
                continue
            part = "" if len(pdus) == 1 else f"part {seq} of {len(pdus)}: "
            try:
                reference = self.modem.send(p)
            except OutcomeUnknown as exc:
                self.queue.mark_uncertain(msg.id, f"{part}{exc}. Check with the customer, then requeue it "
                                                  f"if it did not arrive")
                log.warning("message %d to %s is uncertain: %s", msg.id, who, exc)
                self._modem_trouble(exc)
                return
            except CommandFailed as exc:
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
                return
            except (ModemTimeout, ModemRebooted) as exc:
                # No prompt: the modem never had the message. Counted, but no backoff:
                # once the modem is resynced it may go at once.
                self.queue.retry_later(msg.id, f"{part}{exc}", RetryPolicy(self.policy.max_attempts, 0.0, 0.0))
                self._modem_trouble(exc)
                return
            except ModemError as exc:  # port gone or closed: not the message's fault
                self.queue.give_back(msg.id, f"{part}{exc}")
                self._modem_trouble(exc)
                return
            self.queue.record_segment(msg.id, seq, reference)
        self.queue.mark_sent(msg.id)
        self.stats["sent"] += 1
        log.info("message %d sent to %s (%d part%s)", msg.id, who, len(pdus), "" if len(pdus) == 1 else "s")

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
                memory, _, index = urc.args.partition(",")
                memory = memory.strip().strip('"')
                if memory and memory not in self._memories:
                    self._memories.append(memory)
                if index.strip().isdigit():
                    stored = self.modem.read_stored(int(index), memory)
                    if stored is not None:
                        self._incoming(stored.pdu, stored.length)
                        self.modem.delete_stored(stored.index)

    def _read_stored(self) -> None:
        """After (re)start: texts and delivery reports that arrived while we were not listening.

        Reads the modem's current memory, then every memory it has named in
        an indication since this daemon started (some keep reports in "SR").
        """
        for memory in [None, *self._memories]:
            try:
                stored = self.modem.list_stored(memory)
            except CommandFailed as exc:
                log.warning("could not list the modem's stored messages%s: %s",
                            f" in {memory}" if memory else "", exc)
                continue
            for item in stored:
                if item.status in (2, 3):  # stored unsent/sent by someone else: not ours to handle
                    continue
                self._incoming(item.pdu, item.length)
                self.modem.delete_stored(item.index)

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
            self.stats["reports"] += 1
            if msg is None:
                log.info("delivery report for %s (ref %d) matches no message", mask_number(decoded.recipient),
                         decoded.reference)
            return
        concat = decoded.concat
        stored = self.queue.store_inbound(
            decoded.sender, decoded.timestamp.isoformat() if decoded.timestamp else None, decoded.text, pdu_hex,
            concat=(concat.reference, concat.sequence, concat.total) if concat else None,
            problem=decoded.user_data.problem)
        if stored:
            self.stats["inbound"] += 1
            log.info("inbound SMS from %s", mask_number(decoded.sender))

    # --- state for people ---------------------------------------------------------------------------

    def _publish(self, force: bool = False, **override) -> None:
        data = self.modem.state.as_dict()
        now = self.clock.monotonic()
        if now < self._hold_until and self.modem.state.ready:
            data["detail"] = f"sending paused for a moment: {self._hold_reason}"
        data.update(override)
        data["pid"] = os.getpid()
        key = tuple(sorted((k, str(v)) for k, v in data.items()))
        if not force and key == self._published and now - self._published_at < PUBLISH_INTERVAL:
            return
        self.queue.set_modem_status(self.config.modem.port, data)
        self._published, self._published_at = key, now
