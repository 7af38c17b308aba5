"""Switching a modem's power, for the last step of hung-modem recovery.

Cheap LTE HATs hang in ways no AT command reaches; only cutting the power
helps. Boards differ (the Sixfab base HAT cuts modem power with GPIO26,
active high: :class:`GPIOPowerSwitch`; the Waveshare SIM7600 HAT has a
PWRKEY on GPIO6 instead: :class:`GPIOPowerKey`), so the pin and its
polarity come from the config. Like gpiozero's pin factories, there
is a real switch and a simulated one side by side, behind one interface.
"""

from __future__ import annotations

import logging
from typing import Callable

from hw.errors import HardwareError

log = logging.getLogger(__name__)


class PowerSwitchError(HardwareError):
    """The power switch could not be set up or used."""


class PowerSwitch:
    """Must override: :meth:`off`, :meth:`on`. May override: :meth:`close`."""

    def off(self) -> None:
        raise NotImplementedError

    def on(self) -> None:
        raise NotImplementedError

    def cycle(self, off_seconds: float, wait: Callable[[float], None]) -> None:
        """Power off, wait (with the caller's clock), power on."""
        self.off()
        try:
            wait(off_seconds)
        finally:
            self.on()

    def close(self) -> None:
        pass


def _output(pin: int, active_high: bool, initial: bool, pin_factory, use: str, key: str):
    """gpiozero's OutputDevice on ``pin``, or a PowerSwitchError a technician can act on."""
    try:
        from gpiozero import OutputDevice  # noqa: PLC0415 - only boxes with a power pin need gpiozero
        return OutputDevice(pin, active_high=active_high, initial_value=initial, pin_factory=pin_factory)
    except Exception as exc:  # gpiozero raises many kinds when there is no GPIO at all
        raise PowerSwitchError(f"cannot use GPIO{pin} {use} ({exc}); check {key} in the config and that the "
                               f"service user is in the 'gpio' group") from exc


class GPIOPowerSwitch(PowerSwitch):
    """A GPIO that powers the modem while it is active (gpiozero; lgpio on every Pi model).

    ``pin_factory`` is gpiozero's: left out, gpiozero picks the board's own;
    tests pass its MockFactory.
    """

    def __init__(self, pin: int, *, active_high: bool = True, pin_factory=None):
        self._device = _output(pin, active_high, True, pin_factory, "to switch the modem's power", "power_gpio")

    def off(self) -> None:
        self._device.off()

    def on(self) -> None:
        self._device.on()

    def close(self) -> None:
        self._device.close()


class GPIOPowerKey(PowerSwitch):
    """A modem with a PWRKEY instead of a power switch (the Waveshare SIM7600 HAT: BCM6, active high).

    The SIM7600 turns on after PWRKEY is held for about a second and off after 2.5 s or more,
    so a power cycle is: hold 3 s (off; a modem that was already off turns on instead), wait,
    then hold 1 s (on; too short to turn a running modem off). Either way it ends up on.
    """

    OFF_HOLD = 3.0
    ON_HOLD = 1.0

    def __init__(self, pin: int, *, active_high: bool = True, pin_factory=None):
        self._device = _output(pin, active_high, False, pin_factory, "as the modem's power key", "power_key_gpio")

    def _press(self, seconds: float, wait: Callable[[float], None]) -> None:
        self._device.on()
        try:
            wait(seconds)
        finally:
            self._device.off()

    def cycle(self, off_seconds: float, wait: Callable[[float], None]) -> None:
        self._press(self.OFF_HOLD, wait)
        wait(off_seconds)
        self._press(self.ON_HOLD, wait)

    def off(self) -> None:
        raise PowerSwitchError("a power key can only cycle the modem (it toggles; cycle() ends with it on)")

    on = off

    def close(self) -> None:
        self._device.close()


class SimulatedPowerSwitch(PowerSwitch):
    """Cuts the power of a :class:`~hw.modem.sim.SimulatedModem`: its port vanishes, then it boots again."""

    def __init__(self, sim):
        self.sim = sim
        self.cycles = 0

    def off(self) -> None:
        self.sim.power_off()

    def on(self) -> None:
        self.cycles += 1
        self.sim.power_on()
