"""Opening a modem's serial port, with every failure said as what the technician should do.

``port`` is a device path (``/dev/smsgenie-modem``, the udev name) or any
pyserial URL; the simulated modem's pty is opened the same way. The port is
opened exclusively (a flock), so a second smsgenie - or ModemManager - on
the same modem is refused rather than sharing it.
"""

from __future__ import annotations

import errno

import serial

from hw.errors import ModemBusy, ModemDisconnected, ModemNotFound, ModemPermissionDenied


def open_serial(port: str, baudrate: int, *, read_timeout: float = 0.1) -> serial.Serial:
    """Open ``port`` (a device path or any pyserial URL) and map failures to plain errors."""
    try:
        return serial.serial_for_url(port, baudrate=baudrate, timeout=read_timeout,
                                     write_timeout=5, exclusive=True)
    except serial.SerialException as exc:
        code = getattr(exc, "errno", None)
        if code is None and isinstance(exc.__context__, OSError):
            code = exc.__context__.errno
        if code == errno.ENOENT:
            raise ModemNotFound(
                f"modem port {port} does not exist: check the modem is plugged in and powered, "
                f"and that the udev rule created the name") from exc
        if code in (errno.EACCES, errno.EPERM):
            raise ModemPermissionDenied(
                f"not allowed to open modem port {port}: add the service user to the 'dialout' group") from exc
        if code in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY):
            raise ModemBusy(
                f"modem port {port} is in use by another program (another smsgenie, or ModemManager: "
                f"stop it or blacklist the modem)") from exc
        raise ModemDisconnected(f"could not open modem port {port}: {exc}") from exc
