"""Errors raised by the hardware layer.

One root, :class:`HardwareError`, so the daemon can catch everything that
came off a wire in one place, and a base per area. ``hw`` never imports
``appliance``: the daemon decides what a hardware error means for a queued
message (retry, permanent failure, or uncertain).

Messages are written for the technician who has the box in front of them:
what failed, and what to try.
"""

from __future__ import annotations


class HardwareError(Exception):
    """Base class for every error raised by ``hw``."""


# --- PDU codec -------------------------------------------------------------


class PduError(HardwareError, ValueError):
    """A PDU could not be built or read."""


class TextTooLong(PduError):
    """The text needs more segments than one concatenated SMS can carry."""


# --- Modem -----------------------------------------------------------------


class ModemError(HardwareError):
    """Base for errors talking to the modem."""


class ModemNotFound(ModemError, FileNotFoundError):
    """The modem's serial port does not exist."""


class ModemPermissionDenied(ModemError, PermissionError):
    """The service user may not open the modem's serial port."""


class ModemDisconnected(ModemError, ConnectionError):
    """The serial port went away while it was open (USB unplugged, modem reset)."""


class ModemBusy(ModemError):
    """Another program holds the modem's serial port."""


class ModemClosed(ModemError):
    """An operation was tried on a modem connection that has been closed."""


class ModemTimeout(ModemError, TimeoutError):
    """The modem did not answer a command in time."""


class ModemRebooted(ModemError):
    """The modem restarted (sent RDY) while a command was waiting for its answer."""


class ModemNotReady(ModemError):
    """The modem answers but cannot send: no SIM, SIM locked, or no network.

    ``state`` is the machine-readable state (``no-sim``, ``sim-locked``,
    ``sim-error``, ``searching``, ``denied``); the message says what to check.
    """

    def __init__(self, state: str, message: str):
        self.state = state
        super().__init__(message)


class OutcomeUnknown(ModemError):
    """The modem stopped answering after a message was handed to it.

    The message may or may not have gone out; it must never be resent
    without a person deciding to. The original error is ``__cause__``.
    """


class CommandFailed(ModemError):
    """The modem answered ERROR, +CME ERROR or +CMS ERROR.

    ``kind`` is ``"cms"``, ``"cme"`` or ``None`` for a bare ERROR; ``code`` is
    the numeric code when there is one; ``reason`` is plain language;
    ``retryable`` says whether trying the same thing later may succeed;
    ``device_problem`` that the box, not the message, is at fault (no SIM, no
    network), so nothing should be sent until it is fixed.
    """

    def __init__(self, command: str, kind: str | None, code: int | None, reason: str, retryable: bool,
                 device_problem: bool = False):
        self.command = command
        self.kind = kind
        self.code = code
        self.reason = reason
        self.retryable = retryable
        self.device_problem = device_problem
        label = f"+{kind.upper()} ERROR: {code}" if kind else "ERROR"
        super().__init__(f"{command}: {label} ({reason})")


# --- Counter panel ---------------------------------------------------------


class DisplayError(HardwareError):
    """The OLED could not be opened or written."""


class DisplayNotFound(DisplayError, FileNotFoundError):
    """Nothing answers at the OLED's I2C bus and address."""


class ButtonsError(HardwareError):
    """The buttons' GPIO pins could not be set up."""
