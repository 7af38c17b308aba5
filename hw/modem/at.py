"""The AT conversation over a serial port (3GPP TS 27.007 / 27.005 framing).

One reader thread owns the input side. It cuts the byte stream into lines
and sorts each one: the echo of our own command (dropped), a final result
code (OK, ERROR, +CME ERROR, +CMS ERROR) that ends the pending command, an
information line that belongs to it, or an unsolicited result code (URC:
+CMTI, +CDS, RDY, ...) that goes to the ``on_urc`` callback. It also spots
the ``> `` prompt AT+CMGS answers with, which has no line end.

Commands are sent one at a time under a lock, each with its own timeout.
Modems differ: echo may be on until ATE0, URCs may arrive between a command
and its result, and boot URCs may be waiting in the buffer when we open the
port. A line we cannot place is logged and dropped, never fatal.
"""

from __future__ import annotations

import logging
import termios
import threading
from dataclasses import dataclass, field
from typing import Callable

import serial

from hw.errors import (
    ModemClosed,
    ModemDisconnected,
    ModemError,
    ModemRebooted,
    ModemTimeout,
    OutcomeUnknown,
)
from hw.modem.codes import command_failed
from hw.modem.lines import (
    _HEX,
    FINAL_ERROR_PREFIXES,
    FINAL_ERRORS,
    FINAL_OK,
    PDU_RESPONSES,
    PDU_URCS,
    REBOOT_URCS,
    URC_NAMES,
    Urc,
    info_prefix_for,
    line_name,
)
from hw.modem.port import open_serial

__all__ = ["CTRL_Z", "ESC", "ATChannel", "Submission", "Urc", "info_prefix_for", "line_name", "open_serial"]

log = logging.getLogger(__name__)

CTRL_Z = b"\x1a"
ESC = b"\x1b"



@dataclass
class _Pending:
    command: str
    info_prefix: str | None
    payload: str | None
    lines: list[str] = field(default_factory=list)
    prompt: bool = False
    final: str | None = None
    error: ModemError | None = None

    @property
    def finished(self) -> bool:
        return self.final is not None or self.error is not None


class Submission:
    """A command sent to the modem whose final result has not been read yet."""

    def __init__(self, channel: "ATChannel", pending: _Pending, timeout: float, payload_sent: bool):
        self._channel = channel
        self._pending = pending
        self._timeout = timeout
        self.payload_sent = payload_sent
        self._done = False

    def result(self) -> list[str]:
        """Wait for the final result; the information lines on OK, else raise."""
        if self._done:
            raise RuntimeError(f"{self._pending.command}: result() was already read")
        self._done = True
        try:
            return self._channel._wait_final(self._pending, self._timeout)
        except (ModemTimeout, ModemRebooted, ModemDisconnected, ModemClosed) as exc:
            if self.payload_sent:
                raise OutcomeUnknown(f"{exc}; the modem had the message, it may have been sent") from exc
            raise
        finally:
            self._channel._release()


class ATChannel:
    """A serial line to a modem that speaks AT commands.

    ``on_urc`` is called from the reader thread for every URC; keep it quick
    (put the URC on a queue). ``on_lost`` is called once if the port fails.
    """

    def __init__(
        self,
        port: str,
        baudrate: int = 115200,
        *,
        on_urc: Callable[[Urc], None] | None = None,
        on_lost: Callable[[ModemError], None] | None = None,
    ):
        self.port = port
        self.baudrate = baudrate
        self._on_urc = on_urc or (lambda urc: None)
        self._on_lost = on_lost or (lambda exc: None)
        self._serial: serial.Serial | None = None
        self._reader: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()          # one command at a time
        self._cond = threading.Condition()     # guards _pending and wakes the waiter
        self._write_lock = threading.Lock()
        self._pending: _Pending | None = None
        self._urc_waiting_pdu: tuple[str, str] | None = None
        self._lost: ModemError | None = None
        self.stray_lines = 0

    # --- life cycle -------------------------------------------------------------------

    def open(self) -> None:
        """Open the port and start the reader. If anything after the open fails (the port vanishing
        under us, say, while a modem reboots), the handle is closed before the error leaves: a handle
        left open would keep the port's exclusive lock, and every later open would find it "in use"."""
        ser = open_serial(self.port, self.baudrate)
        try:
            ser.reset_input_buffer()
        except (serial.SerialException, OSError, termios.error) as exc:
            ser.close()
            raise ModemDisconnected(f"modem port {self.port} went away as it was opened: {exc}") from exc
        except BaseException:
            ser.close()
            raise
        self._serial = ser
        self._lost = None
        self._stopping.clear()
        self._reader = threading.Thread(target=self._read_loop, name=f"at-reader {self.port}", daemon=True)
        self._reader.start()

    def close(self) -> None:
        """Stop the reader and close the port. Safe to call twice."""
        self._stopping.set()
        ser, self._serial = self._serial, None
        if ser is not None:
            try:
                ser.cancel_read()
            except Exception:  # noqa: BLE001 - port may already be gone
                pass
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=2)
        self._reader = None
        if ser is not None:
            try:
                ser.close()
            except Exception:  # noqa: BLE001
                pass
        self._fail_pending(ModemClosed("the modem connection was closed"))

    @property
    def closed(self) -> bool:
        return self._serial is None

    @property
    def lost(self) -> ModemError | None:
        """Why the port failed, if it did; the channel is useless after that."""
        return self._lost

    def __enter__(self) -> "ATChannel":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- commands ---------------------------------------------------------------------

    def command(self, command: str, *, timeout: float = 5.0) -> list[str]:
        """Send ``command`` and return its information lines; raise on anything but OK."""
        return self.start(command, timeout=timeout).result()

    def command_with_payload(self, command: str, payload: str, *, prompt_timeout: float = 5.0,
                             timeout: float = 60.0) -> list[str]:
        """AT+CMGS-style command: wait for '> ', send ``payload`` and Ctrl-Z, wait for the result.

        If the modem goes quiet, reboots or vanishes *after* the payload was
        sent, :class:`OutcomeUnknown` is raised: the payload may have gone out.
        """
        return self.start(command, payload, prompt_timeout=prompt_timeout, timeout=timeout).result()

    def start(self, command: str, payload: str | None = None, *, prompt_timeout: float = 5.0,
              timeout: float = 5.0, meanwhile: Callable[[], None] | None = None) -> "Submission":
        """Send ``command`` (and ``payload`` after its prompt); return before the final result.

        The caller may do other work - not other commands - while the modem
        works, then call :meth:`Submission.result`. The channel is reserved
        for this command until then. ``meanwhile`` is called once the command
        is written, before the payload is (while the modem sends its prompt).
        """
        self._lock.acquire()
        try:
            if self._serial is None:
                raise ModemClosed(f"{command}: the modem connection is closed")
            if self._lost is not None:
                raise self._lost
            pending = _Pending(command, info_prefix_for(command), payload)
            with self._cond:
                self._pending = pending
            self._write(command.encode("ascii") + b"\r")
            if meanwhile is not None:
                try:
                    meanwhile()
                except BaseException:
                    if payload is not None:
                        self._write(ESC)  # do not leave the modem waiting at its prompt
                    raise
            payload_sent = False
            if payload is not None:
                with self._cond:
                    self._cond.wait_for(lambda: pending.prompt or pending.finished, prompt_timeout)
                if not (pending.prompt or pending.finished):
                    self._write(ESC)  # leave the prompt if it comes late
                    raise ModemTimeout(f"{command}: no '> ' prompt within {prompt_timeout:g} s")
                if not pending.finished:
                    self._write(payload.encode("ascii") + CTRL_Z)
                    payload_sent = True
            return Submission(self, pending, timeout, payload_sent)
        except BaseException:
            self._release()
            raise

    def write_raw(self, data: bytes) -> None:
        """Write bytes with no framing (e.g. ESC to leave a stuck prompt)."""
        self._write(data)

    def _release(self) -> None:
        with self._cond:
            self._pending = None
        self._lock.release()

    def _wait_final(self, pending: _Pending, timeout: float) -> list[str]:
        with self._cond:
            self._cond.wait_for(lambda: pending.finished, timeout)
        if pending.error is not None:
            raise pending.error
        if pending.final is None:
            raise ModemTimeout(f"{pending.command}: no answer within {timeout:g} s")
        if pending.final in FINAL_OK:
            return pending.lines
        raise command_failed(pending.command, pending.final)

    def _write(self, data: bytes) -> None:
        ser = self._serial
        if ser is None:
            raise ModemClosed("the modem connection is closed")
        try:
            with self._write_lock:
                # No flush(): tcdrain would only wait for the bytes to leave the UART,
                # and the answer we wait for next cannot come before they have.
                ser.write(data)
        except (serial.SerialException, OSError) as exc:
            err = ModemDisconnected(f"writing to modem port {self.port} failed: {exc}")
            self._connection_lost(err)
            raise err from exc

    # --- reader -----------------------------------------------------------------------

    def _read_loop(self) -> None:
        buf = bytearray()
        ser = self._serial
        while not self._stopping.is_set() and ser is not None:
            try:
                data = ser.read(ser.in_waiting or 1)
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                if not self._stopping.is_set():
                    self._connection_lost(ModemDisconnected(f"modem port {self.port} went away: {exc}"))
                return
            if data:
                buf += data
                try:
                    self._process(buf)
                except Exception:  # noqa: BLE001 - a callback bug must not kill the reader
                    log.exception("error while handling modem output")

    def _process(self, buf: bytearray) -> None:
        while True:
            start = 0
            while start < len(buf) and buf[start] in b"\r\n":
                start += 1
            del buf[:start]
            if not buf:
                return
            pending = self._pending
            if buf[:1] == b">":  # the '> ' prompt: no line end follows it
                del buf[:2 if buf[1:2] == b" " else 1]
                if pending is not None and pending.payload is not None and not pending.prompt:
                    with self._cond:
                        pending.prompt = True
                        self._cond.notify_all()
                else:
                    self.stray_lines += 1  # a prompt nobody is waiting for (a cancelled AT+CMGS)
                continue
            ends = [i for i in (buf.find(b"\r"), buf.find(b"\n")) if i >= 0]
            if not ends:
                return
            end = min(ends)
            raw = bytes(buf[:end])
            del buf[:end + 1]
            self._handle_line(raw.decode("utf-8", errors="replace").strip())

    def _handle_line(self, line: str) -> None:
        if not line:
            return
        if self._urc_waiting_pdu is not None:
            name, header = self._urc_waiting_pdu
            self._urc_waiting_pdu = None
            self._on_urc(Urc(name, header, pdu=line))
            return
        pending = self._pending
        upper = line.upper()
        if upper.startswith("AT") or (pending is not None and line.rstrip("\x1a") == pending.payload):
            return  # echo
        name = line_name(line)
        if upper in FINAL_OK or upper in FINAL_ERRORS or upper.startswith(FINAL_ERROR_PREFIXES):
            if pending is None:
                log.debug("final result with no command waiting (late answer?): %r", line)
                return
            with self._cond:
                pending.final = upper if (upper in FINAL_OK or upper in FINAL_ERRORS) else line
                self._cond.notify_all()
            return
        if pending is not None and pending.info_prefix and upper.startswith(pending.info_prefix):
            pending.lines.append(line)
            return
        if name in PDU_URCS:
            self._urc_waiting_pdu = (name, line)
            return
        if name in URC_NAMES:
            if name in REBOOT_URCS and pending is not None:
                self._fail_pending(ModemRebooted(f"{pending.command}: the modem restarted (RDY) before answering"))
            self._on_urc(Urc(name, line))
            return
        if pending is not None and self._belongs_to(pending, line):
            pending.lines.append(line)
            return
        self.stray_lines += 1
        log.debug("unexpected modem output dropped: %r", line[:80])

    @staticmethod
    def _belongs_to(pending: _Pending, line: str) -> bool:
        """Is an unprefixed line part of the pending command's answer?

        Commands without a '+XXX:' prefix (ATI, AT+CGMM) answer in plain
        lines. For the others, only the PDU after a +CMGR/+CMGL line is
        unprefixed; anything else is line noise.
        """
        if pending.info_prefix is None:
            return True
        return (pending.info_prefix in PDU_RESPONSES and bool(pending.lines)
                and pending.lines[-1].upper().startswith(pending.info_prefix) and set(line) <= _HEX)

    def _fail_pending(self, error: ModemError) -> None:
        with self._cond:
            pending = self._pending
            if pending is not None and not pending.finished:
                pending.error = error
            self._cond.notify_all()

    def _connection_lost(self, error: ModemError) -> None:
        first = self._lost is None
        self._lost = error
        self._fail_pending(error)
        if first:
            try:
                self._on_lost(error)
            except Exception:  # noqa: BLE001
                log.exception("on_lost callback failed")
