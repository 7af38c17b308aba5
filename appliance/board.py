"""Which pin libraries a release installs on this board: the rule install.sh and the updater share.

gpiozero drives the pins through lgpio on every Raspberry Pi, and through RPi.GPIO (its fallback, the
library most Pi 3/4/Zero 2 W images know) on every Pi but the Pi 5 family, whose pins sit behind the RP1
chip (hw/pins.py chooses between them at run time). So smsgenie has two extras for a Pi: ``pi`` (lgpio and
RPi.GPIO) and ``pi5`` (lgpio alone).

RPi.GPIO comes as source only: install.sh builds its wheel once, with a compiler it takes away again, and
keeps it in ``PREFIX/wheelhouse`` so an update (which installs with no network and no compiler) finds it
there. A box installed before that has no such wheel, and its updates keep to ``pi5``'s lgpio, which drives
every model.

``python -m appliance.board`` prints the plan for install.sh: the extra, then the RPi.GPIO requirement to
build (none when the board does not take RPi.GPIO). ``SMSGENIE_BOARD_MODEL`` names another file to read the
model from (the arm64 smoke test plays a Pi 5 with it).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
from pathlib import Path

MODEL_PATH = "/proc/device-tree/model"
ARM = ("aarch64", "armv7l")
WHEELHOUSE = "wheelhouse"
#: The boards RPi.GPIO cannot drive (RP1): "Raspberry Pi 5 Model B", "Raspberry Pi 500", "... Compute Module 5".
_RP1 = re.compile(r"Raspberry Pi (5|500|Compute Module 5)\b")
_RPI_GPIO = re.compile(r"^rpi[._-]gpio\b", re.IGNORECASE)


def model(path: str | os.PathLike = MODEL_PATH) -> str:
    """The board's model as its device tree says it ("" where there is none: a PC, a chroot)."""
    try:
        return Path(path).read_bytes().rstrip(b"\0").decode("ascii", "replace").strip()
    except OSError:
        return ""


def takes_rpi_gpio(board: str) -> bool:
    """Whether RPi.GPIO belongs on an ARM board: any Pi but the Pi 5 family. An unknown ARM board (an image
    being built, for every model) takes it: lgpio still comes first where both load."""
    return not _RP1.search(board)


def _board_extra(machine: str | None, model_path: str | os.PathLike) -> str:
    """The extra this board takes: "" off a Pi, "pi" (lgpio and RPi.GPIO) or "pi5" (lgpio alone)."""
    if (machine or os.uname().machine) not in ARM:
        return ""
    return "pi" if takes_rpi_gpio(model(model_path)) else "pi5"


def has_rpi_gpio_wheel(prefix: str | os.PathLike) -> bool:
    house = Path(prefix) / WHEELHOUSE
    return house.is_dir() and any(_RPI_GPIO.match(p.name) and p.suffix == ".whl" for p in house.iterdir())


def extras(prefix: str | os.PathLike, *, machine: str | None = None,
           model_path: str | os.PathLike = MODEL_PATH) -> str:
    """The extra an update installs here: the board's, but "pi5" (lgpio alone) where RPi.GPIO's wheel was
    never built on this box (an update has no compiler)."""
    extra = _board_extra(machine, model_path)
    return "pi5" if extra == "pi" and not has_rpi_gpio_wheel(prefix) else extra


def rpi_gpio_requirement() -> str:
    """The ``pi`` extra's RPi.GPIO requirement (e.g. ``RPi.GPIO<0.8,>=0.7.1``), read from the installed
    package's metadata, so pyproject.toml is the one place that names its version."""
    for line in importlib.metadata.requires("smsgenie") or ():
        if _RPI_GPIO.match(line) and 'extra == "pi"' in line:
            return line.split(";", 1)[0].strip()
    raise LookupError("smsgenie's metadata names no RPi.GPIO in its pi extra")


def plan(*, machine: str | None = None, model_path: str | os.PathLike = MODEL_PATH) -> tuple[str, str]:
    """(extra, RPi.GPIO requirement to build or "") for install.sh, which builds before it installs."""
    extra = _board_extra(machine, model_path)
    return extra, rpi_gpio_requirement() if extra == "pi" else ""


if __name__ == "__main__":  # install.sh: python -m appliance.board
    extra, requirement = plan(model_path=os.environ.get("SMSGENIE_BOARD_MODEL", MODEL_PATH))
    sys.stdout.write(f"{extra} {requirement}\n")
