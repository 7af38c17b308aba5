"""A simulated SIM7600-class modem on a real pseudo-terminal.

The driver opens :attr:`SimulatedModem.port` with pyserial exactly as it
opens ``/dev/smsgenie-modem`` on a Pi, so the tests and the demo exercise the
real serial path: termios, the reader thread, line framing, the ``> ``
prompt, Ctrl-Z. ``port`` is a symlink to the current ``/dev/pts/N``, like
the udev name on the box, so the modem can "disappear" and come back.

What it does: answers the AT commands the driver uses (27.005/27.007 in PDU
mode), checks and records every SMS-SUBMIT it accepts, sends status reports
(per-number outcome and delay), takes injected inbound texts, and injects
faults on request: +CMS errors, silence, garbage bytes, a reboot in the
middle of a send, no SIM, no network, and a port that vanishes. The answers
to each command are in :mod:`hw.modem.simcommands`.
"""

from __future__ import annotations

import collections
import fcntl
import heapq
import itertools
import logging
import os
import select
import tempfile
import threading
import time
import tty
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from hw.modem import pdu as pducodec
from hw.modem.segments import split
from hw.modem.simcommands import BOOT_URCS, CHINA, DELIVERED, EXPIRED, FAILED, NO_REPORT, Accepted, AtCommands

log = logging.getLogger(__name__)

__all__ = ["DELIVERED", "EXPIRED", "FAILED", "NO_REPORT", "Accepted", "SimulatedModem"]


@dataclass
class _Fault:
    kind: str                # "cms", "silent", "silent-after-pdu", "reboot", "reboot-after-pdu", "garbage"
    command: str = "AT+CMGS"
    code: int = 0
    data: bytes = b""


@dataclass(order=True)
class _Scheduled:
    due: float
    seq: int
    action: Callable[[], None] = field(compare=False)
    network: bool = field(default=False, compare=False)
    """Network events (status reports) still happen when the modem reboots."""


class SimulatedModem(AtCommands):
    """A modem that speaks AT over a pty. Control methods are thread-safe.

    ``send_latency`` is how long the network takes to accept each SMS (the
    modem-bound limit is one message per ``send_latency``); ``report_delay``
    how long after that the status report comes.
    """

    def __init__(
        self,
        *,
        directory: str | None = None,
        send_latency: float = 0.0,
        report_delay: float = 0.02,
        operator: str = "CHINA MOBILE",
        signal: int = 24,
        smsc: str = "+8613800100500",
        model: str = "SIMCOM_SIM7600G-H",
        boot_urcs: bool = True,
    ):
        self.directory = directory or tempfile.mkdtemp(prefix="smsgenie-sim-")
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        self.port = os.path.join(self.directory, "modem")
        self.send_latency = send_latency
        self.report_delay = report_delay
        self.operator = operator
        self.signal = signal
        self.smsc = smsc
        self.model = model
        self.iccid = "89860012345678901234"
        self.accepted: list[Accepted] = []
        self.service_times: list[float] = []
        """Seconds from the arrival of each accepted PDU to its +CMGS answer: the modem's own time per send."""
        self.commands: collections.deque[str] = collections.deque(maxlen=10_000)
        """The AT commands received, newest last (bounded: the demo may run for days)."""
        self.outcomes: dict[str, str | int] = {}
        self.default_outcome: str | int = DELIVERED
        self.sim_present = True
        self.sim_pin = ""
        self.registration = 1
        self.hung: str | None = None
        """None, or what cures the hang: "cfun", "power", "never"."""
        self.capacity = 50  # message slots in the (SIM) memory
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._inbuf = bytearray()
        self._received_at = 0.0
        self._faults: list[_Fault] = []
        self._schedule: list[_Scheduled] = []
        self._seq = itertools.count()
        self._mr = itertools.cycle(range(256))
        self._storage: dict[int, tuple[int, str, int]] = {}
        self._boot_urcs = boot_urcs
        self._reset_settings()

    def _reset_settings(self) -> None:
        self.echo = True
        self.cmee = 0
        self.cmgf = 0
        self.cnmi_mt = 0
        self.cnmi_ds = 0
        self.creg_n = 0
        self._pin_ok = not self.sim_pin
        self._mode = "command"
        self._cmgs_length = 0
        self._busy = False

    # --- life cycle -------------------------------------------------------------------

    def start(self) -> "SimulatedModem":
        with self._lock:
            self._plug()
            if self._boot_urcs:
                self._urc(*BOOT_URCS)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="simulated-modem", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        with self._lock:
            self._unplug()

    stop = close

    def __enter__(self) -> "SimulatedModem":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        flags = fcntl.fcntl(master, fcntl.F_GETFL)
        fcntl.fcntl(master, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        self._master, self._slave = master, slave
        tmp = self.port + ".new"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.port)
        self._inbuf.clear()

    def _unplug(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = None
        if os.path.lexists(self.port):
            os.unlink(self.port)

    # --- controls for tests and the demo ----------------------------------------------

    def set_outcome(self, number: str, outcome: str | int) -> None:
        """Per-number result: delivered, failed, expired, no-report, or a +CMS error code."""
        with self._lock:
            self.outcomes[number] = outcome

    def fail_next(self, cms_code: int, count: int = 1) -> None:
        """The next ``count`` sends get +CMS ERROR: ``cms_code`` after the PDU."""
        with self._lock:
            self._faults.extend(_Fault("cms", code=cms_code) for _ in range(count))

    def ignore_next(self, command: str = "AT+CMGS", *, after_pdu: bool = False) -> None:
        """The next ``command`` gets no answer at all (or, after_pdu, no answer once it has the PDU)."""
        with self._lock:
            self._faults.append(_Fault("silent-after-pdu" if after_pdu else "silent", command=command))

    def garbage_next(self, data: bytes = b"\xff\xfe\x00#@!\x80garbage\x9d", command: str = "AT") -> None:
        """Emit ``data`` (line noise) right before answering the next ``command``."""
        with self._lock:
            self._faults.append(_Fault("garbage", command=command, data=data))

    def reboot_next(self, *, after_pdu: bool = False) -> None:
        """The modem restarts (RDY) on the next AT+CMGS, before the prompt or after the PDU."""
        with self._lock:
            self._faults.append(_Fault("reboot-after-pdu" if after_pdu else "reboot"))

    def write_garbage(self, data: bytes) -> None:
        with self._lock:
            self._write(data)

    def reboot(self, *, wait: bool = False) -> None:
        """Restart now: settings and work in hand are lost, the boot URCs follow a moment later.

        ``wait``: return once the boot URCs are written (a modem that has finished booting), so a
        port opened next does not catch them halfway through its first command."""
        with self._lock:
            self._reboot()
        if wait:
            self.wait_until(lambda s: not any(not e.network for e in s._schedule))

    def set_sim(self, present: bool) -> None:
        with self._lock:
            self.sim_present = present
            if not present:
                self._urc("+CPIN: NOT INSERTED")
            else:
                self._urc("+CPIN: READY", "SMS DONE")

    def set_registration(self, stat: int) -> None:
        """0 not registered, 1 home, 2 searching, 3 denied, 5 roaming."""
        with self._lock:
            self.registration = stat
            if self.creg_n:
                self._urc(f"+CREG: {stat}")

    def unplug(self) -> None:
        """The port vanishes (USB unplugged): open handles fail, the path is gone."""
        with self._lock:
            self._unplug()

    def replug(self, *, boot: bool = True) -> None:
        """The modem comes back on a new pty behind the same path, freshly booted."""
        with self._lock:
            self._unplug()
            self._reset_settings()
            self._schedule = [s for s in self._schedule if s.network]
            heapq.heapify(self._schedule)
            self._plug()
            if boot:
                self._urc(*BOOT_URCS)

    def hang(self, cured_by: str | None = "power") -> None:
        """The modem stops answering anything. ``cured_by``: "cfun" (AT+CFUN=1,1 still reboots it),
        "power" (only a power cycle helps) or None (nothing does)."""
        with self._lock:
            self.hung = cured_by or "never"

    def power_off(self) -> None:
        with self._lock:
            self._unplug()
            self._schedule = [s for s in self._schedule if s.network]

    def power_on(self) -> None:
        with self._lock:
            if self.hung == "power":
                self.hung = None
            self.replug()

    def inject_sms(self, sender: str, text: str, when: datetime | None = None, reference: int = 0) -> None:
        """An inbound text from ``sender`` arrives (in parts if long)."""
        when = when or datetime.now(CHINA).replace(microsecond=0)
        plan = split(text)
        with self._lock:
            for seq, part in enumerate(plan.parts, start=1):
                concat = pducodec.Concat(reference, plan.segments, seq) if plan.concatenated else None
                p = pducodec.encode_deliver(sender, part, when, encoding=plan.encoding, concat=concat)
                self._deliver_inbound(p)

    def wait_until(self, predicate: Callable[["SimulatedModem"], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate(self):
                    return True
            time.sleep(0.005)
        with self._lock:
            return predicate(self)

    def stored_count(self) -> int:
        with self._lock:
            return len(self._storage)

    # --- the loop -------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                master = self._master
                wait = 0.02
                if self._schedule:
                    wait = max(0.0, min(wait, self._schedule[0].due - time.monotonic()))
            if master is None:
                time.sleep(wait)
            else:
                try:
                    readable, _, _ = select.select([master], [], [], wait)
                except (OSError, ValueError):
                    readable = []
                if readable:
                    try:
                        data = os.read(master, 4096)
                    except (BlockingIOError, InterruptedError):
                        data = b""
                    except OSError:
                        data = b""
                    with self._lock:
                        if master == self._master:
                            self._inbuf += data
                            self._received_at = time.monotonic()
            with self._lock:
                now = time.monotonic()
                while self._schedule and self._schedule[0].due <= now:
                    heapq.heappop(self._schedule).action()
                self._parse()

    def _after(self, delay: float, action: Callable[[], None], *, network: bool = False) -> None:
        heapq.heappush(self._schedule, _Scheduled(time.monotonic() + delay, next(self._seq), action, network))

    def _write(self, data: bytes) -> None:
        if self._master is None:
            return
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._master, view)
            except BlockingIOError:
                log.debug("simulated modem output dropped: nobody is reading the port")
                return
            except OSError:
                return
            view = view[n:]

    def _reply(self, *lines: str, final: str = "OK") -> None:
        out = b"".join(b"\r\n" + line.encode() + b"\r\n" for line in lines)
        if final:
            out += b"\r\n" + final.encode() + b"\r\n"
        self._write(out)

    def _urc(self, *lines: str) -> None:
        self._reply(*lines, final="")

    def _error(self, kind: str, code: int) -> None:
        if self.cmee == 0:
            self._reply(final="ERROR")
        else:
            self._reply(final=f"+{kind} ERROR: {code}")

    def _parse(self) -> None:
        while self._inbuf and not self._busy:
            if self._mode == "prompt":
                ends = [i for i in (self._inbuf.find(b"\x1a"), self._inbuf.find(b"\x1b")) if i >= 0]
                if not ends:
                    if len(self._inbuf) > 2000:
                        self._inbuf.clear()
                        self._mode = "command"
                        self._error("CMS", 304)
                    return
                end = min(ends)
                body, terminator = bytes(self._inbuf[:end]), self._inbuf[end]
                del self._inbuf[:end + 1]
                if self.echo:
                    self._write(body)
                self._mode = "command"
                if terminator == 0x1A:
                    self._submit(body)
                continue
            end = self._inbuf.find(b"\r")
            if end < 0:
                if len(self._inbuf) > 2000:
                    self._inbuf.clear()
                return
            raw = bytes(self._inbuf[:end])
            del self._inbuf[:end + 1]
            if self.echo:
                self._write(raw + b"\r")
            line = raw.replace(b"\x1b", b"").replace(b"\x1a", b"").replace(b"\n", b"").strip()
            text = line.decode("ascii", errors="replace")
            if text[:2].upper() != "AT":
                continue
            self.commands.append(text)
            self._command(text)

    def _take_fault(self, command: str, kinds: tuple[str, ...]) -> _Fault | None:
        for i, fault in enumerate(self._faults):
            if fault.kind in kinds and command.upper().startswith(fault.command.upper()):
                return self._faults.pop(i)
        return None
