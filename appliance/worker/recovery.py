"""A modem that stops answering: re-sync, soft reset, power cycle, then "dead", one step per silent try.

While a modem recovers it takes no messages; a pool's other modems take its
carrier's (routing only waits for a modem that is free). After "dead" the
whole ladder starts again every :data:`DEAD_RETRY` seconds, so a modem that
comes back is used again without anyone at the box.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import Callable

from appliance.clock import Clock
from hw.errors import HardwareError, ModemError
from hw.modem.driver import Modem
from hw.power import PowerSwitch

log = logging.getLogger(__name__)

#: How long to let each step take effect before trying the modem again.
RESYNC_WAIT = 2.0
SOFT_RESET_WAIT = 20.0
POWER_OFF_SECONDS = 3.0
POWER_BOOT_WAIT = 20.0
DEAD_RETRY = 600.0


class HungModemRecovery:
    """The recovery ladder of one modem; ``beat`` tells the watchdog about a wait on purpose."""

    def __init__(self, modem: Modem, power: PowerSwitch | None, *, label: str, clock: Clock,
                 stop: threading.Event, beat: Callable[[float], None]):
        self.modem = modem
        self.power = power
        self.label = label
        self.clock = clock
        self._stop = stop
        self._beat = beat
        self._unanswered = 0  # bring-ups in a row that found the modem silent
        self.steps: list[str] = []
        """Every step taken, in order (re-sync, soft reset, power cycle, dead)."""

    def answered(self) -> None:
        """The modem came up: the next silence starts at the first step again."""
        self._unanswered = 0

    def next_step(self) -> float:
        """The modem was open but silent: take the next step; returns the seconds to wait before trying again."""
        self._unanswered += 1
        step = self._unanswered
        if step == 1:  # init re-syncs (ESC, AT...) on the next try
            return self._took("re-sync", RESYNC_WAIT)
        if step == 2:
            try:
                self.modem.soft_reset()
            except ModemError:
                pass
            self.modem.close()
            return self._took("soft reset", SOFT_RESET_WAIT)
        if step == 3 and self.power is not None:
            self.modem.close()
            try:
                self._beat(POWER_OFF_SECONDS)
                self.power.cycle(POWER_OFF_SECONDS, lambda s: self.clock.wait(self._stop, s))
            except HardwareError as exc:
                log.error("%s: power cycle failed: %s", self.label, exc)
            return self._took("power cycle", POWER_BOOT_WAIT)
        self.modem.close()
        self._unanswered = 0  # the whole ladder again, later
        self.modem.state = replace(
            self.modem.state, state="dead",
            detail="the modem does not answer after a re-sync, a soft reset"
                   + (" and a power cycle" if self.power is not None else " (no power switch configured)")
                   + f": check it; the box tries again every {DEAD_RETRY / 60:.0f} minutes")
        return self._took("dead", DEAD_RETRY)

    def _took(self, step: str, wait: float) -> float:
        self.steps.append(step)
        log.warning("%s: modem not answering: %s", self.label, step)
        return wait
