"""The counter panel's four buttons: Up, Down, OK, Back (gpiozero).

Each button is a gpiozero ``Button`` to ground (internal pull-up) with
debounce. Events go to one callback as ``(name, kind)``:

- ``("up", "press")`` ... on every press;
- ``("up", "repeat")`` / ``("down", "repeat")`` every ``hold_time`` while Up
  or Down is held, so a long menu scrolls without tapping;
- ``("back", "long")`` once when Back is held: "home" from anywhere.

Like gpiozero's own devices, the pin factory is a keyword argument: left
out, gpiozero picks the board's (lgpio on every Pi model); the simulated
panel passes gpiozero's ``MockFactory`` and presses its buttons with
:meth:`Buttons.press`, which drives the mock pins exactly as a finger would
- through gpiozero's edge detection, debounce and hold timers.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from hw.errors import ButtonsError

NAMES = ("up", "down", "ok", "back")
#: Seconds a button must be held before it repeats (Up/Down) or counts as a long press (Back).
HOLD_TIME = 0.8
#: Contact bounce to ignore, seconds.
BOUNCE_TIME = 0.03


class Buttons:
    """Four buttons on ``pins`` ({"up": 17, ...}, BCM numbers) reporting to ``on_event(name, kind)``."""

    def __init__(self, pins: dict[str, int], on_event: Callable[[str, str], None], *, pin_factory=None,
                 hold_time: float = HOLD_TIME, bounce_time: float | None = BOUNCE_TIME):
        self.on_event = on_event
        self.pins = dict(pins)
        self._buttons = {}
        try:
            from gpiozero import Button  # noqa: PLC0415

            for name in NAMES:
                repeat = name in ("up", "down")
                b = Button(self.pins[name], pull_up=True, bounce_time=bounce_time, hold_time=hold_time,
                           hold_repeat=repeat, pin_factory=pin_factory)
                b.when_pressed = self._pressed(name)
                b.when_held = self._held(name, repeat)
                self._buttons[name] = b
        except Exception as exc:  # gpiozero raises many kinds when there is no GPIO at all
            self.close()
            raise ButtonsError(f"cannot use the buttons' GPIOs {self.pins} ({exc}): check pin_up/pin_down/"
                               f"pin_ok/pin_back in [panel] and that the service user is in the 'gpio' "
                               f"group") from exc
        from gpiozero.pins.mock import MockFactory  # noqa: PLC0415

        self._mock = isinstance(pin_factory, MockFactory)

    def _pressed(self, name: str):
        def handler():
            self.on_event(name, "press")
        return handler

    def _held(self, name: str, repeat: bool):
        def handler():
            if repeat:
                self.on_event(name, "repeat")
            elif name == "back":  # without hold_repeat, gpiozero calls when_held once per hold
                self.on_event(name, "long")
        return handler

    def press(self, name: str, hold: float = 0.0) -> None:
        """Simulated buttons only: press ``name`` for ``hold`` seconds (real time), then release."""
        if not self._mock:
            raise ButtonsError("only simulated buttons can be pressed from software")
        if name not in self._buttons:
            raise ButtonsError(f"no button called {name!r}; the buttons are {', '.join(NAMES)}")
        pin = self._buttons[name].pin
        pin.drive_low()  # to ground: pressed
        if hold:
            time.sleep(hold)
        pin.drive_high()

    def press_async(self, name: str, hold: float = 0.0) -> threading.Thread:
        """:meth:`press` in a thread, for callers that must not wait out a long press."""
        t = threading.Thread(target=self.press, args=(name, hold), name=f"press {name}", daemon=True)
        t.start()
        return t

    @property
    def simulated(self) -> bool:
        """True for buttons on gpiozero's MockFactory, which :meth:`press` can press."""
        return self._mock

    @property
    def closed(self) -> bool:
        return not self._buttons

    def close(self) -> None:
        """Release the pins; safe to call twice."""
        for b in self._buttons.values():
            b.close()
        self._buttons = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def mock_buttons(pins: dict[str, int], on_event: Callable[[str, str], None], **kwargs) -> Buttons:
    """Simulated buttons on gpiozero's MockFactory (the same Button code as on the Pi)."""
    from gpiozero.pins.mock import MockFactory  # noqa: PLC0415

    return Buttons(pins, on_event, pin_factory=MockFactory(), **kwargs)
