"""The box's device id: stable, short, and readable over the phone.

Top-up codes are made for one box. The id comes from the Raspberry Pi's
serial number (device tree, or /proc/cpuinfo), falling back to
/etc/machine-id on other machines, hashed down to 40 bits and shown as
eight Crockford base32 characters in two groups: ``7K3M-9QAZ``. Crockford's
alphabet has no I, L, O or U, so nothing is misheard or misread.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from appliance import crockford
from appliance.errors import SmsGenieError

DEVICE_TREE_SERIAL = "/proc/device-tree/serial-number"
CPUINFO = "/proc/cpuinfo"
MACHINE_ID = "/etc/machine-id"


class DeviceIdError(SmsGenieError, ValueError):
    """No source for a device id, or an id that is not one."""


def _read(path: str | os.PathLike) -> str:
    try:
        return Path(path).read_bytes().replace(b"\x00", b"").decode("ascii", "replace").strip()
    except OSError:
        return ""


def hardware_serial(device_tree: str = DEVICE_TREE_SERIAL, cpuinfo: str = CPUINFO,
                    machine_id: str = MACHINE_ID) -> str:
    """The most stable identity this machine has: the Pi's serial, else the machine id."""
    serial = _read(device_tree)
    if not serial:
        for line in _read(cpuinfo).splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "serial" and value.strip().strip("0"):
                serial = value.strip()
                break
    if serial:
        return f"pi:{serial.lower()}"
    mid = _read(machine_id)
    if mid:
        return f"machine-id:{mid.lower()}"
    raise DeviceIdError(f"cannot tell which box this is: none of {device_tree}, {cpuinfo} (Serial) or "
                        f"{machine_id} holds an id")


def device_id_bytes(source: str) -> bytes:
    return hashlib.sha256(b"smsgenie device " + source.encode()).digest()[:5]


def format_device_id(raw: bytes) -> str:
    text = crockford.encode(raw)
    return f"{text[:4]}-{text[4:]}"


def parse_device_id(text: str) -> bytes:
    """'7k3m-9qaz' -> 5 bytes; forgiving about case, dashes and O/0, I/L/1."""
    raw = crockford.normalise(text)
    try:
        if len(raw) != 8:
            raise ValueError(f"a device id has 8 characters, not {len(raw)}")
        return crockford.decode(raw)
    except ValueError as exc:
        raise DeviceIdError(f"{text!r} is not a device id ({exc}); it looks like 7K3M-9QAZ") from None


def device_id(**sources: str) -> bytes:
    """This box's id (5 bytes); ``sources`` override the paths read, for tests."""
    return device_id_bytes(hardware_serial(**sources))


def this_device_id(data_dir: str | os.PathLike) -> bytes:
    """The id of the box whose data is in ``data_dir``: the machine's, or - on a machine with no id at all
    (a container running the demo) - one derived from the data dir, the same for the page, the command
    line and the demo."""
    try:
        return device_id()
    except DeviceIdError:
        return device_id_bytes(f"demo:{data_dir}")
