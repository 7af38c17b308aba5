"""Which library drives the GPIO pins: gpiozero's pin factory, chosen in an order we state.

gpiozero talks to the pins through a "pin factory". Two matter on a Pi:

- ``lgpio`` talks to the kernel's ``/dev/gpiochip*``: it works on every Pi model, the Pi 5 included (its
  GPIOs sit behind the RP1 chip, which RPi.GPIO cannot reach). It comes first.
- ``rpigpio`` is RPi.GPIO, the pin library most Pi 3/4/Zero 2 W owners know, which drives the SoC's GPIO
  registers directly; it is the fallback where lgpio is missing (an older Raspberry Pi OS). It refuses to
  load on a Pi 5 and anywhere that is not a Pi.

``[panel] pin_factory`` chooses: ``auto`` (that order), ``lgpio``, ``rpigpio``, or ``mock`` (gpiozero's
MockFactory: no pins at all, for tests and the demo). A factory that cannot load says why and what to do.
The choice is made once per process and shared by the buttons and the modem's power switch.
"""

from __future__ import annotations

import importlib
from typing import Callable

from hw.errors import HardwareError

#: The config's names, each with gpiozero's module and class.
FACTORIES = {
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"),
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"),
    "mock": ("gpiozero.pins.mock", "MockFactory"),
}
#: What ``auto`` tries, first to last.
AUTO_ORDER = ("lgpio", "rpigpio")
CHOICES = ("auto", *FACTORIES)
#: What the technician installs for each (Raspberry Pi OS packages; pip names in parentheses).
INSTALL = {"lgpio": "python3-lgpio (pip: lgpio)", "rpigpio": "python3-rpi.gpio (pip: RPi.GPIO; not on a Pi 5)"}
#: The boards each one drives.
BOARDS = {"lgpio": "every Pi", "rpigpio": "a Pi 3, 4 or Zero 2 W: not a Pi 5, nor anything that is not a Pi"}


class PinFactoryError(HardwareError):
    """No pin factory could be loaded (the library is missing, or the board is not one it drives)."""


def open_pin_factory(choice: str = "auto", *,
                     load: Callable[[str], object] = importlib.import_module) -> tuple[str, object]:
    """(name, gpiozero pin factory) for ``choice`` (one of :data:`CHOICES`); ``load`` imports a module
    (tests pass one in which a library is missing)."""
    if choice not in CHOICES:
        raise PinFactoryError(f"pin_factory {choice!r} is not one of {', '.join(CHOICES)}")
    tried, missing, refused = [], [], []
    for name in AUTO_ORDER if choice == "auto" else (choice,):
        module, cls = FACTORIES[name]
        try:
            return name, getattr(load(module), cls)()
        except Exception as exc:  # ImportError (not installed), RuntimeError (not a Pi, a Pi 5), gpiozero's own
            tried.append(f"{name}: {type(exc).__name__}: {exc}")
            (missing if isinstance(exc, ImportError) else refused).append(name)
    advice = [f"install {' or '.join(INSTALL[n] for n in missing if n in INSTALL)}"] if missing else []
    advice += [f"{n} is installed but drives {BOARDS[n]}" for n in refused if n in BOARDS]
    raise PinFactoryError(f"no GPIO library could drive the pins ({'; '.join(tried)}): {'; '.join(advice)}; "
                          f"or set [panel] pin_factory in the config (auto, lgpio, rpigpio, mock)")
