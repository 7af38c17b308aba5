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
middle of a send, no SIM, no network, and a port that vanishes.
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
from datetime import datetime, timedelta, timezone
from typing import Callable

from hw.errors import PduError
from hw.modem import pdu as pducodec
from hw.modem.segments import split

log = logging.getLogger(__name__)

DELIVERED = "delivered"
FAILED = "failed"
EXPIRED = "expired"
NO_REPORT = "no-report"
_STATUS_CODES = {DELIVERED: 0x00, FAILED: 0x41, EXPIRED: 0x46}

BOOT_URCS = ["RDY", "+CPIN: READY", "SMS DONE", "PB DONE"]
CHINA = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class Accepted:
    """An SMS-SUBMIT the simulated network took."""

    at: float
    pdu: str
    reference: int
    recipient: str
    text: str | None
    concat: pducodec.Concat | None


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


class SimulatedModem:
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

    def reboot(self) -> None:
        with self._lock:
            self._reboot()

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

    # --- commands ---------------------------------------------------------------------

    def _command(self, text: str) -> None:
        if self.hung:
            if self.hung == "cfun" and text.upper() == "AT+CFUN=1,1":
                self.hung = None
                return self._reboot()
            return  # a hung modem answers nothing
        fault = self._take_fault(text, ("garbage",))
        if fault:
            self._write(fault.data)
        if self._take_fault(text, ("silent",)):
            return
        body = text[2:]
        upper = body.upper()
        if upper in ("", "Z"):
            return self._reply()
        if upper in ("E0", "E1"):
            self.echo = upper == "E1"
            return self._reply()
        if upper == "I":
            return self._reply("Manufacturer: SIMCOM INCORPORATED", f"Model: {self.model}", "Revision: SIM-SIMULATED")
        if upper == "+CGMM":
            return self._reply(self.model)
        if upper in ("+CICCID", "+QCCID", "+CCID"):
            # SIMCom answers AT+CICCID, Quectel AT+QCCID; each names its own reply
            if not self.sim_present:
                return self._error("CME", 10)
            if (upper == "+QCCID") != ("EC25" in self.model.upper()):
                return self._reply(final="ERROR")
            return self._reply(f"{'+QCCID' if upper == '+QCCID' else '+ICCID'}: {self.iccid}")
        if upper.startswith("+CMEE="):
            self.cmee = int(upper[6:] or 0)
            return self._reply()
        if upper == "+CPIN?":
            if not self.sim_present:
                return self._error("CME", 10)
            return self._reply("+CPIN: READY" if self._pin_ok else "+CPIN: SIM PIN")
        if upper.startswith("+CPIN="):
            if not self.sim_present:
                return self._error("CME", 10)
            if body[6:].strip('"') == self.sim_pin:
                self._pin_ok = True
                return self._reply()
            return self._error("CME", 16)
        if upper in ("+CREG?", "+CEREG?", "+CGREG?"):
            name = upper[:-1]
            stat = self.registration if self.sim_present else 0
            return self._reply(f"{name}: {self.creg_n},{stat}")
        if upper.startswith("+CREG="):
            self.creg_n = int(upper[6:] or 0)
            return self._reply()
        if upper == "+CSQ":
            return self._reply(f"+CSQ: {self.signal if self.sim_present else 99},99")
        if upper.startswith("+COPS="):
            return self._reply()
        if upper == "+COPS?":
            if self.sim_present and self.registration in (1, 5):
                return self._reply(f'+COPS: 0,0,"{self.operator}",7')
            return self._reply("+COPS: 0")
        if upper.startswith("+CMGF="):
            self.cmgf = int(upper[6:] or 0)
            return self._reply()
        if upper.startswith("+CNMI="):
            values = [int(v) if v.strip().isdigit() else 0 for v in upper[6:].split(",")] + [0] * 5
            self.cnmi_mt, self.cnmi_ds = values[1], values[3]
            return self._reply()
        if upper == "+CSCA?":
            return self._reply(f'+CSCA: "{self.smsc}",145')
        if upper.startswith("+CPMS="):
            n = len(self._storage)
            return self._reply(f"+CPMS: {n},{self.capacity},{n},{self.capacity},{n},{self.capacity}")
        if upper == "+CPMS?":
            n = len(self._storage)
            return self._reply(",".join([f'+CPMS: "SM",{n},{self.capacity}'] + [f'"SM",{n},{self.capacity}'] * 2))
        if upper.startswith("+CSMS"):
            return self._reply("+CSMS: 1,1,1")
        if upper.startswith("+CMGS="):
            return self._cmgs(upper)
        if upper.startswith("+CMGR="):
            return self._cmgr(int(upper[6:]))
        if upper.startswith("+CMGD="):
            return self._cmgd(upper[6:])
        if upper.startswith("+CMGL"):
            lines = []
            for index, (stat, p, length) in sorted(self._storage.items()):
                lines += [f"+CMGL: {index},{stat},,{length}", p]
                if stat == 0:  # listing marks received messages read (27.005 §3.4.2)
                    self._storage[index] = (1, p, length)
            return self._reply(*lines)
        if upper == "+CFUN=1,1":
            self._reply()
            return self._reboot()
        return self._reply(final="ERROR")

    def _cmgs(self, upper: str) -> None:
        if self.cmgf != 0:
            return self._error("CMS", 302)
        fault = self._take_fault("AT+CMGS", ("reboot",))
        if fault:
            return self._after(0.01, self._reboot)
        try:
            self._cmgs_length = int(upper[6:])
        except ValueError:
            return self._error("CMS", 304)
        self._mode = "prompt"
        self._write(b"\r\n> ")

    def _submit(self, body: bytes) -> None:
        hex_ = body.decode("ascii", errors="replace").strip()
        try:
            data = bytes.fromhex(hex_)
            if not data or len(data) - data[0] - 1 != self._cmgs_length:
                raise PduError("length does not match AT+CMGS")
            sub = pducodec.decode_submit(hex_)
        except (ValueError, PduError):
            return self._error("CMS", 304)
        if not self.sim_present:
            return self._error("CMS", 310)
        if self.registration not in (1, 5):
            return self._error("CMS", 331)
        fault = self._take_fault("AT+CMGS", ("cms",))
        if fault:
            return self._error("CMS", fault.code)
        outcome = self.outcomes.get(sub.recipient, self.default_outcome)
        if isinstance(outcome, int):
            return self._error("CMS", outcome)
        mr = next(self._mr)
        self.accepted.append(Accepted(time.time(), hex_, mr, sub.recipient, sub.text, sub.user_data.concat))
        if sub.status_report and outcome in _STATUS_CODES:
            self._after(self.send_latency + self.report_delay,
                        lambda: self._status_report(mr, sub.recipient, _STATUS_CODES[outcome]), network=True)
        if self._take_fault("AT+CMGS", ("silent-after-pdu",)):
            return
        if self._take_fault("AT+CMGS", ("reboot-after-pdu",)):
            return self._after(0.01, self._reboot)
        received = self._received_at  # the modem is busy from the moment the PDU arrives
        if self.send_latency <= 0:
            self._reply(f"+CMGS: {mr}")
            self.service_times.append(time.monotonic() - received)
            return
        self._busy = True

        def done() -> None:
            self._busy = False
            self._reply(f"+CMGS: {mr}")
            self.service_times.append(time.monotonic() - received)

        self._after(max(0.0, received + self.send_latency - time.monotonic()), done)

    def _cmgr(self, index: int) -> None:
        entry = self._storage.get(index)
        if entry is None:
            return self._error("CMS", 321)
        stat, p, length = entry
        self._reply(f"+CMGR: {stat},,{length}", p)
        if stat == 0:
            self._storage[index] = (1, p, length)

    def _cmgd(self, args: str) -> None:
        """AT+CMGD=<index>[,<delflag>]: 1 read, 2 read+sent, 3 read+sent+unsent, 4 all (27.005 §3.5.4)."""
        parts = [a.strip() for a in args.split(",")]
        try:
            index = int(parts[0])
            flag = int(parts[1]) if len(parts) > 1 and parts[1] else 0
        except ValueError:
            return self._error("CMS", 304)
        doomed = {0: set(), 1: {1}, 2: {1, 2}, 3: {1, 2, 3}, 4: {0, 1, 2, 3}}.get(flag)
        if doomed is None:
            return self._error("CMS", 304)
        if flag:
            for i in [i for i, (stat, _, _) in self._storage.items() if stat in doomed]:
                del self._storage[i]
        else:
            self._storage.pop(index, None)
        return self._reply()

    def _store(self, stat: int, p: pducodec.Pdu) -> int | None:
        """Keep a PDU in memory; None when the memory is full (the network will retry later)."""
        if len(self._storage) >= self.capacity:
            log.warning("simulated modem memory full: a PDU was not stored")
            return None
        index = next(i for i in itertools.count() if i not in self._storage)
        self._storage[index] = (stat, p.hex, p.tpdu_length)
        return index

    def _status_report(self, mr: int, recipient: str, status: int) -> None:
        now = datetime.now(CHINA).replace(microsecond=0)
        p = pducodec.encode_status_report(mr, recipient, status, now, now, smsc=self.smsc)
        if self.cnmi_ds == 1:
            self._urc(f"+CDS: {p.tpdu_length}", p.hex)
        else:
            index = self._store(0, p)
            if self.cnmi_ds == 2 and index is not None:
                self._urc(f'+CDSI: "SM",{index}')

    def _deliver_inbound(self, p: pducodec.Pdu) -> None:
        if self.cnmi_mt in (2, 3):
            self._urc(f"+CMT: ,{p.tpdu_length}", p.hex)
            return
        index = self._store(0, p)
        if self.cnmi_mt == 1 and index is not None:
            self._urc(f'+CMTI: "SM",{index}')

    def _reboot(self) -> None:
        """Lose all settings and in-flight work, then announce the boot."""
        self._inbuf.clear()
        self._reset_settings()
        self._schedule = [s for s in self._schedule if s.network]
        heapq.heapify(self._schedule)
        self._after(0.02, lambda: self._urc(*BOOT_URCS))
