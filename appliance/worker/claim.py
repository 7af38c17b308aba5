"""Which message one modem may take now: staff's pause, the clock, quiet hours, its SIM's caps, routing.

Each reason to wait is kept as :attr:`Claimer.paused` (why, and when it
lifts) for ``smsgenie status``, the page and the panel; the claim itself -
pay for the message and mark it ``sending`` in one transaction - is the
queue's (:meth:`appliance.sendqueue.SendQueue.claim`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable

from appliance import policy
from appliance.clock import Clock
from appliance.config import ModemConfig
from appliance.db import Database
from appliance.messages import Message
from appliance.pause import SendingPause
from appliance.policy import UNLIMITED, caps_for, quiet_until
from appliance.sendqueue import SendQueue
from appliance.settings import read_settings
from appliance.simhealth import SimHolds, silent_run
from appliance.text import say
from appliance.timecheck import ClockCheck
from appliance.worker.pool import Pool

log = logging.getLogger(__name__)

#: Seconds between re-reads of the quiet hours and this SIM's caps (the admin may change them).
SETTINGS_EVERY = 60.0
#: Seconds between two looks at whether this SIM's messages stopped getting delivery reports.
SILENCE_CHECK_EVERY = 300.0


class Claimer:
    def __init__(self, modem_config: ModemConfig, db: Database, queue: SendQueue, *, clock: Clock, pool: Pool,
                 data_dir: str, iccid: Callable[[], str] = str):
        self.modem_config = modem_config
        self.label = modem_config.label
        self.carrier = modem_config.carrier
        self.db = db
        self.queue = queue
        self.clock = clock
        self.pool = pool
        self.iccid = iccid
        """The SIM in this modem now (its ICCID): the record says which SIM sent each message."""
        self.data_dir = data_dir
        self.pause_switch = SendingPause(db, clock)
        self.clock_check = ClockCheck(db, clock)
        self.caps = caps_for(modem_config)
        """The caps in force; re-read with the settings (see :meth:`_refresh_settings`)."""
        self.paused: tuple[str, float | None] | None = None
        """(why, resumes at) while a cap, the quiet hours, the clock or staff hold this modem's sending."""
        self._settings_read_at = -1e18
        self._silence_checked_at = -1e18
        self._quiet_spec = ""

    def claim(self, in_flight: int = 0, in_flight_to: str | None = None) -> Message | None:
        """The next message for this modem, within its caps, its routing and the quiet hours.

        ``in_flight``: parts with the modem now and not yet in the send log
        (the last part of the current message, to ``in_flight_to``, when
        claiming ahead).
        """
        now = self.clock.time()
        held = self.pause_switch.current()
        if held is not None:
            self._pause(say("sending paused by {who}", who=held["by"]), None)
            return None
        barred = self._sim_held()
        if barred is not None:
            self._pause(barred, None)
            return None
        behind = self.clock_check.behind()
        if behind:
            self._pause(say("the clock is {minutes} min behind the last time this box recorded: waiting for "
                            "network time so the record's times are right (is the box online? if the clock is "
                            "right, 'smsgenie clock reset')", minutes=f"{behind / 60:.0f}"), now + 60)
            return None
        self._refresh_settings()
        quiet_end = quiet_until(now, self._quiet_spec)
        gate_now = policy.gate(self.db.conn, self.label, self.caps, now, in_flight, in_flight_to)
        if not gate_now.open:
            self._pause(gate_now.reason, gate_now.resume_at)
            return None
        msg = self.queue.claim(max_parts=gate_now.allowed, carrier=self.carrier or None,
                               avoid=self.pool.served_elsewhere(self.label), quiet=quiet_end is not None,
                               modem=self.label, sim=self.iccid())
        if msg is not None:
            self.paused = None
            return msg
        if quiet_end is not None and self.queue.has_due(marketing_only=True):
            self._pause(say("quiet hours: marketing lists wait"), quiet_end)
        elif gate_now.allowed < UNLIMITED and self.queue.has_due(more_parts_than=gate_now.allowed):
            self._pause(say("the caps allow {n} more part(s) now and the next message needs more",
                            n=gate_now.allowed), self.clock.time() + 60)
        else:
            self.paused = None
        return None

    def _sim_held(self):
        """Why this SIM is held (appliance/simhealth.py), checking now and then whether its carrier drops its
        messages; None while it may send."""
        holds = SimHolds(self.db, self.clock)
        current = holds.current(self.label)
        if current is not None:
            return current["why"]
        now = self.clock.monotonic()
        if now - self._silence_checked_at < SILENCE_CHECK_EVERY:
            return None
        self._silence_checked_at = now
        why = silent_run(self.db.conn, self.label, self.clock.time())
        if why is not None:
            holds.hold(self.label, why)
            log.warning("%s: the SIM is held: %s", self.label, why)
        return why

    def _pause(self, why: str, resume_at: float | None) -> None:
        if self.paused is None or self.paused[0] != why:
            when = datetime.fromtimestamp(resume_at).strftime("%H:%M") if resume_at else "later"
            log.info("%s: sending waits (%s) until %s", self.label, why, when)
        self.paused = (why, resume_at)

    def _refresh_settings(self) -> None:
        """Re-read the quiet hours and this SIM's caps at most once a minute (the admin may change them)."""
        now = self.clock.monotonic()
        if now - self._settings_read_at <= SETTINGS_EVERY:
            return
        self._settings_read_at = now
        values = read_settings(self.data_dir)
        self._quiet_spec = values["quiet_hours"]
        caps = caps_for(self.modem_config, values["sim_caps"].get(self.label))
        if caps != self.caps:
            log.info("%s: caps now %s", self.label, caps)
            self.caps = caps
