"""The send step: hand each part of a claimed message to the modem and settle it by what happens.

The claim ("sending", paid for) is already on the card when a part goes.
The part references and "sent" are bookkeeping, written while the modem
works on the *next* part or message, and the next message is claimed and
encoded meanwhile too, so the modem never waits for the database
(docs/sending.md). Every fault becomes a queue outcome: a refused
message is retried or failed by its error code, a modem that went quiet
after taking a message leaves it ``uncertain``, and a box that cannot send
(no SIM, no network) gives the message back uncharged and holds a moment.
"""

from __future__ import annotations

import functools
import logging
import random
import sqlite3
import threading
from datetime import timedelta
from typing import Callable

from appliance import carriers
from appliance.carriers import SUBSCRIBER_ERRORS
from appliance.clock import Clock
from appliance.config import Config, ModemConfig
from appliance.db import is_busy
from appliance.errors import StorageFull
from appliance.journal import HandoverJournal
from appliance.messages import Message, RetryPolicy
from appliance.network import network_words
from appliance.privacy import mask_number
from appliance.sendqueue import SendQueue
from appliance.simhealth import BarringWatch, SimHolds
from appliance.text import say
from appliance.worker.bookkeeping import Bookkeeping
from appliance.worker.claim import Claimer
from appliance.worker.pool import Pool
from hw.errors import CommandFailed, ModemError, ModemRebooted, ModemTimeout, OutcomeUnknown, PduError
from hw.modem import pdu as pducodec
from hw.modem.driver import Modem
from hw.modem.segments import split

log = logging.getLogger(__name__)

#: After the modem says the box cannot send (no SIM, no network), wait this long.
DEVICE_HOLD = 15.0


class Sender:
    """Sends one modem's messages. ``trouble(exc)`` hands a modem fault to the worker (resync, reopen);
    ``problem(text)`` tells people; ``beat(seconds)`` tells the watchdog this thread is alive."""

    def __init__(self, config: Config, modem_config: ModemConfig, modem: Modem, queue: SendQueue, *,
                 claimer: Claimer, journal: HandoverJournal, bookkeeping: Bookkeeping, pool: Pool, clock: Clock,
                 stop: threading.Event, beat: Callable[[float], None], trouble: Callable[[ModemError], None],
                 problem: Callable[[str], None]):
        self.modem = modem
        self.queue = queue
        self.claimer = claimer
        self.journal = journal
        self.bookkeeping = bookkeeping
        self.pool = pool
        self.clock = clock
        self.label = modem_config.label
        self.carrier = modem_config.carrier
        q = config.queue
        self.policy = RetryPolicy(q.max_attempts, q.retry_base_seconds, q.retry_cap_seconds)
        self.validity = timedelta(hours=q.validity_hours)
        self._stop = stop
        self._beat = beat
        self._trouble = trouble
        self._problem = problem
        self._random = random.Random()
        self.next_send_at = 0.0         # monotonic: the minimum gap (with jitter) after the last send
        self.hold_until = 0.0           # monotonic: the modem said the box cannot send; wait till then
        self.hold_reason = ""
        self.watch = BarringWatch()
        """The network's refusals in a row: a run of them holds the SIM (appliance/simhealth.py)."""
        self.next: Message | None = None  # claimed while the modem works on the current message
        self._pdus: dict[int, list[pducodec.Pdu]] = {}  # ... and its PDUs, encoded meanwhile
        self._sending_to: str | None = None

    def send(self, msg: Message) -> None:
        """Hand each part of ``msg`` the network has not confirmed to the modem; settle it by what happens."""
        try:
            pdus = self._pdus.pop(msg.id, None) or self._encode(msg)
        except PduError as exc:
            self.bookkeeping.flush()
            self.queue.fail(msg.id, f"cannot be sent: {exc}")
            log.warning("message %d to %s failed: %s", msg.id, mask_number(msg.recipient), exc)
            return
        handed = False
        self.pool.set(self.label, self.carrier, False)  # busy
        self._sending_to = msg.recipient
        caps = self.claimer.caps
        # The gap runs from when the network took the last part (the moment the send log keeps), so no
        # two sends come closer than it however long the modem took; set now too, for a send that fails.
        pause = caps.min_gap_seconds + self._random.uniform(0, caps.jitter_seconds)
        self.next_send_at = self.clock.monotonic() + pause
        for seq, p in enumerate(pdus, start=1):
            if seq in msg.accepted:
                continue
            part = "" if len(pdus) == 1 else say("part {seq} of {n}: ", seq=seq, n=len(pdus))
            self._beat(0.0)
            try:
                # noted in the journal while the modem answers AT+CMGS with its prompt
                pending = self.modem.submit(p, meanwhile=None if handed else functools.partial(
                    self.journal.record, msg.id, msg.sending_at))
                handed = True
            except ModemError as exc:
                return self._not_sent(msg, part, exc)
            # The network is working: write down what came before (one transaction, one fsync), and
            # claim what comes next (its search reads before it takes the lock: a long search never keeps
            # the others from the database).
            try:
                self.bookkeeping.flush_together(self.queue.db.atomic)
                if seq == len(pdus):
                    self._claim_ahead()
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
                log.warning("the database was busy during a send (%s): its bookkeeping waits a step", exc)
            except StorageFull as exc:
                log.error("%s: the bookkeeping of this send waits for room", exc)
            try:
                reference = pending.reference()
            except ModemError as exc:
                return self._not_sent(msg, part, exc)
            at = self.clock.time()  # read before the gap's clock: the gap is never shorter than pause
            self.next_send_at = self.clock.monotonic() + pause
            self.bookkeeping.later(functools.partial(self.queue.record_segment, msg.id, seq, reference,
                                                     at=at, modem=self.label))
        self.bookkeeping.later(functools.partial(self._sent, msg, len(pdus), self.clock.time()))

    def _encode(self, msg: Message) -> list[pducodec.Pdu]:
        return pducodec.encode_message(msg.recipient, split(msg.text), concat_reference=msg.concat_ref,
                                       validity=self.validity)

    def _reroute(self, msg: Message, reason: str, exc: CommandFailed) -> bool:
        """A number its prefix's carrier does not know (携号转网?): tried once through another carrier's SIM."""
        others = self.pool.other_carriers(self.label, self.carrier)
        if exc.code not in SUBSCRIBER_ERRORS or not self.carrier or msg.carrier != self.carrier or not others:
            return False
        if not carriers.reroute(self.queue, msg.id, msg.recipient, self.carrier, others[0], reason):
            return False
        log.info("message %d to %s: %s; trying a %s SIM", msg.id, mask_number(msg.recipient), reason, others[0])
        return True

    def _sent(self, msg: Message, parts: int, at: float) -> None:
        self.queue.mark_sent(msg.id, at=at)
        self.watch.went()
        log.info("message %d sent to %s (%d part%s)", msg.id, mask_number(msg.recipient), parts,
                 "" if parts == 1 else "s")

    def _claim_ahead(self) -> None:
        """Claim the next message (an fsync) while the modem is busy, so it costs no sending time."""
        if self.next is None and not self._stop.is_set() and self.clock.monotonic() >= self.hold_until:
            self.next = self.claimer.claim(in_flight=1, in_flight_to=self._sending_to)  # the part the modem has
            if self.next is not None:
                try:
                    self._pdus = {self.next.id: self._encode(self.next)}
                except PduError:
                    pass  # send() fails it with the reason

    def release_next(self) -> None:
        """Give back a message claimed ahead (refunded, as it was)."""
        if self.next is not None:
            self.queue.unclaim(self.next.id)
            self.next = None
            self._pdus.clear()

    def _not_sent(self, msg: Message, part: str, exc: ModemError) -> None:
        """A part did not go (or may have gone): settle the message by the kind of failure."""
        self.bookkeeping.flush()
        self.release_next()
        who = mask_number(msg.recipient)
        if isinstance(exc, OutcomeUnknown):
            self.queue.mark_uncertain(msg.id, f"{part}{exc}. Check with the customer, then requeue it "
                                              f"if it did not arrive")
            log.warning("message %d to %s is uncertain: %s", msg.id, who, exc)
            self._trouble(exc)
        elif isinstance(exc, CommandFailed):
            why = network_words(exc.reason)
            self._refused(msg, say("{part}{why}", part=part, why=why) if part else why, exc)
        elif isinstance(exc, (ModemTimeout, ModemRebooted)):
            # No prompt: the modem never had the message. Counted, but no backoff:
            # once the modem is resynced it may go at once.
            self.queue.retry_later(msg.id, f"{part}{exc}", RetryPolicy(self.policy.max_attempts, 0.0, 0.0))
            self._trouble(exc)
        else:  # port gone or closed: not the message's fault
            self.queue.give_back(msg.id, f"{part}{exc}")
            self._trouble(exc)

    def _refused(self, msg: Message, reason: str, exc: CommandFailed) -> None:
        """The modem or network said no (+CMS ERROR): the box's problem, a passing one, or the message's."""
        who = mask_number(msg.recipient)
        if exc.device_problem:
            self.queue.give_back(msg.id, reason)
            self.hold_until = self.clock.monotonic() + DEVICE_HOLD
            self.hold_reason = reason
            self._problem(f"sending paused: {reason}")
            self.modem.needs_init = True
        elif exc.retryable:
            state = self.queue.retry_later(msg.id, reason, self.policy)
            log.info("message %d to %s: %s (%s)", msg.id, who, reason, "will retry" if state == "queued" else "failed")
        else:
            if self._reroute(msg, reason, exc):
                return
            barred = self.watch.refused(msg.recipient, reason)
            if barred is not None:  # not this number: the SIM. The message waits for another SIM, or for this one
                self.queue.give_back(msg.id, reason)
                SimHolds(self.queue.db, self.clock).hold(self.label, barred)
                log.warning("%s: the SIM is held: %s", self.label, barred)
                return
            self.queue.fail(msg.id, reason)
            log.info("message %d to %s failed: %s", msg.id, who, reason)
