"""A SIM7600 / EC25 class modem, driven over AT in PDU mode.

Nothing here is specific to our simulator: the same calls go to any modem
that follows 3GPP TS 27.005 / 27.007. :meth:`Modem.init` brings a freshly
opened (or freshly rebooted) modem into the state the daemon relies on:
echo off, numeric errors, SIM unlocked, PDU mode, new-message and
status-report indications on. :attr:`Modem.state` (:mod:`hw.modem.state`)
is what the status page, the OLED and ``smsgenie status`` show.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Callable

from hw.errors import CommandFailed, ModemError, ModemNotReady, ModemRebooted, ModemTimeout
from hw.modem.at import ESC, ATChannel, Submission, Urc
from hw.modem.codes import SIM_FAILED, SIM_LOCKED, SIM_MISSING
from hw.modem.pdu import Pdu
from hw.modem.state import ACCESS, ModemState, StoredMessage, best_registration, fields_of, int_or, registration_state

__all__ = ["Modem", "ModemState", "PendingSend", "StoredMessage", "Timeouts"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait for each kind of answer. 27.005 allows AT+CMGS to take a while."""

    command: float = 5.0
    sync: float = 1.0
    prompt: float = 5.0
    send: float = 60.0


class PendingSend:
    """An SMS-SUBMIT the modem has; its reference arrives with the final result."""

    def __init__(self, submission: Submission):
        self._submission = submission

    def reference(self) -> int | None:
        """Wait for +CMGS: the TP-MR. Raises CommandFailed or OutcomeUnknown."""
        for line in self._submission.result():
            if line.upper().startswith("+CMGS:"):
                return int_or(fields_of(line)[0])
        log.warning("modem accepted a message without reporting its reference")
        return None


class Modem:
    """One modem on one serial port.

    ``on_urc`` receives every unsolicited result code (from the reader
    thread); the driver itself reacts to RDY (the modem restarted: it needs
    :meth:`init` again) and to SIM and registration changes.
    """

    def __init__(
        self,
        port: str,
        baudrate: int = 115200,
        *,
        sim_pin: str = "",
        timeouts: Timeouts = Timeouts(),
        on_urc: Callable[[Urc], None] | None = None,
        on_lost: Callable[[ModemError], None] | None = None,
    ):
        self.port = port
        self.baudrate = baudrate
        self.sim_pin = sim_pin
        self.timeouts = timeouts
        self._on_urc = on_urc or (lambda urc: None)
        self._on_lost = on_lost or (lambda exc: None)
        self._channel: ATChannel | None = None
        self._read_memory: str | None = None
        self.state = ModemState()
        self.storage: tuple[int, int] | None = None
        """(used, total) slots of the read memory, from AT+CPMS?."""
        self.needs_init = True
        self.refresh_wanted = False

    # --- life cycle -------------------------------------------------------------------

    def open(self) -> None:
        """Open the port. Raises ModemNotFound / ModemPermissionDenied / ModemBusy."""
        self.close()
        channel = ATChannel(self.port, self.baudrate, on_urc=self._urc, on_lost=self._lost)
        try:
            channel.open()
        except ModemError as exc:
            self.state = replace(self.state, state="disconnected", detail=str(exc))
            raise
        self._channel = channel
        self.needs_init = True
        self.state = ModemState(state="starting", detail="talking to the modem")

    def close(self) -> None:
        """Close the port. Safe to call twice; keeps the reason if the port had failed."""
        if self._channel is not None:
            lost = self._channel.lost
            self._channel.close()
            self._channel = None
            self.state = replace(self.state, state="disconnected",
                                 detail=str(lost) if lost else "modem port closed")

    @property
    def closed(self) -> bool:
        """True when the port is closed or has failed: :meth:`open` it again."""
        return self._channel is None or self._channel.closed or self._channel.lost is not None

    def __enter__(self) -> "Modem":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _cmd(self, command: str, timeout: float | None = None) -> list[str]:
        if self._channel is None:
            raise ModemError(f"{command}: the modem is not open")
        return self._channel.command(command, timeout=timeout or self.timeouts.command)

    # --- set-up -------------------------------------------------------------------------

    def sync(self, attempts: int = 4) -> None:
        """Get a clean OK: leave any half-typed prompt (ESC), then AT until it answers."""
        last: Exception | None = None
        for _ in range(attempts):
            try:
                if self._channel is None:
                    raise ModemError("the modem is not open")
                self._channel.write_raw(ESC)
                self._cmd("AT", self.timeouts.sync)
                return
            except (ModemTimeout, ModemRebooted, CommandFailed) as exc:
                last = exc
        self.state = replace(self.state, state="error", detail="the modem does not answer AT")
        raise ModemTimeout(
            f"the modem on {self.port} does not answer AT ({last}): check its power, the cable, "
            f"and that {self.port} is its AT port") from last

    def init(self) -> ModemState:
        """Bring the modem into PDU mode with indications on; returns the new state.

        Raises :class:`ModemNotReady` when the SIM is missing or locked, and
        ModemTimeout / ModemRebooted when the modem misbehaves; call again later.
        """
        self.state = replace(self.state, state="starting", detail="setting up the modem")
        self.sync()
        self._cmd("ATE0")
        self._cmd("AT+CMEE=1")
        self._check_sim()
        self._cmd("AT+CMGF=0")
        # New SMS and status reports are stored in the modem and indicated (+CMTI / +CDSI),
        # not routed straight to us (+CMT / +CDS): what arrives while the daemon is down
        # waits in memory and is collected at the next start.
        self._cmd("AT+CNMI=2,1,0,2,0")
        self._read_memory = None
        smsc = ""
        try:
            for line in self._cmd("AT+CSCA?"):
                f = fields_of(line)
                smsc = f[0] if f else ""
        except CommandFailed:
            pass
        model = ""
        try:
            model = next((line for line in self._cmd("AT+CGMM") if line.strip()), "")
        except CommandFailed:
            pass
        try:
            self._cmd("AT+COPS=3,0")  # operator as long alphanumeric name
        except CommandFailed:
            pass
        model = model.split(":", 1)[1] if model.upper().startswith("+CGMM:") else model
        self.state = replace(self.state, smsc=smsc, model=model.strip(), iccid=self._read_iccid())
        self._read_storage()
        self.needs_init = False
        return self.refresh()

    def _read_iccid(self) -> str:
        """The SIM's ICCID: SIMCom answers AT+CICCID, Quectel AT+QCCID; "" when neither does."""
        for cmd in ("AT+CICCID", "AT+QCCID"):
            try:
                for line in self._cmd(cmd):
                    digits = line.split(":", 1)[-1].strip().strip('"')
                    if 18 <= len(digits) <= 22 and digits[:19].isdigit():
                        return digits
            except CommandFailed:
                continue
        return ""

    def _read_storage(self) -> None:
        """AT+CPMS?: which memory stored messages are read from, and how big it is."""
        try:
            lines = self._cmd("AT+CPMS?")
        except CommandFailed:
            return
        for line in lines:
            f = fields_of(line)
            if len(f) >= 3:
                self._read_memory = f[0] or None
                self.storage = (int_or(f[1], 0), int_or(f[2], 0))

    @property
    def read_memory(self) -> str | None:
        """The memory AT+CMGR / AT+CMGL read from (e.g. "SM", "ME"), once known."""
        return self._read_memory

    def _check_sim(self) -> None:
        try:
            status = self._sim_status()
            if status == "SIM PIN" and self.sim_pin:
                self._cmd(f'AT+CPIN="{self.sim_pin}"')
                for _ in range(10):
                    status = self._sim_status()
                    if status != "SIM PIN":
                        break
                    time.sleep(0.2)
        except CommandFailed as exc:
            if exc.kind == "cme" and exc.code in SIM_MISSING:
                self._not_ready("no-sim", "no SIM card: insert the shop's SIM card (contacts down) and restart")
            if exc.kind == "cme" and exc.code in SIM_LOCKED:
                self._not_ready("sim-locked", f"the SIM refused the PIN ({exc.reason}): check sim_pin in the config")
            if exc.kind == "cme" and exc.code in SIM_FAILED:
                self._not_ready("sim-error", f"SIM problem: {exc.reason}")
            if exc.kind == "cme" and exc.code == 14:
                self._not_ready("starting", "the SIM is busy starting up")
            raise
        if status == "READY":
            return
        if status == "SIM PIN":
            self._not_ready("sim-locked", "the SIM needs a PIN: set sim_pin in the config, or remove the PIN")
        if status in ("SIM PUK", "SIM PUK2"):
            self._not_ready("sim-locked", "the SIM is blocked (PUK needed): unblock it in a phone first")
        self._not_ready("sim-error", f"the SIM reports {status!r}")

    def _sim_status(self) -> str:
        for line in self._cmd("AT+CPIN?"):
            return line.split(":", 1)[1].strip().upper()
        return ""

    def _not_ready(self, state: str, message: str) -> None:
        self.state = replace(self.state, state=state, detail=message)
        raise ModemNotReady(state, message)

    def refresh(self) -> ModemState:
        """Read registration, signal and operator again."""
        stats = []
        access = ""
        for cmd in ("AT+CREG?", "AT+CEREG?"):
            try:
                for line in self._cmd(cmd):
                    f = fields_of(line)
                    stat = int_or(f[1]) if len(f) > 1 else None
                    if stat is not None:
                        stats.append(stat)
                    if len(f) > 4 and int_or(f[4]) is not None:
                        access = ACCESS.get(int_or(f[4]), access)
            except CommandFailed:
                pass  # a modem without LTE does not know +CEREG
        signal = 99
        for line in self._cmd("AT+CSQ"):
            signal = int_or(fields_of(line)[0], 99)
        operator = ""
        try:
            for line in self._cmd("AT+COPS?"):
                f = fields_of(line)
                operator = f[2] if len(f) > 2 else ""
                if len(f) > 3 and int_or(f[3]) is not None:
                    access = ACCESS.get(int_or(f[3]), access)
        except CommandFailed:
            pass
        self.refresh_wanted = False
        best = best_registration(stats)
        self.state = replace(self.state, signal=signal, operator=operator, access=access,
                             registration=best, **registration_state(best))
        return self.state

    # --- sending ------------------------------------------------------------------------

    def send(self, pdu: Pdu) -> int | None:
        """Hand one SMS-SUBMIT to the network; returns the TP-MR it was given.

        Raises CommandFailed (the network or modem refused it: not sent),
        ModemTimeout / ModemRebooted (no prompt: not sent), or OutcomeUnknown
        (the modem had it and then went quiet: it may have been sent).
        """
        return self.submit(pdu).reference()

    def submit(self, pdu: Pdu, *, meanwhile: Callable[[], None] | None = None) -> "PendingSend":
        """Like :meth:`send`, in two halves: returns once the PDU is with the modem.

        The daemon does its bookkeeping while the network works, then calls
        :meth:`PendingSend.reference`. ``meanwhile`` runs after AT+CMGS is
        written and before the PDU is, while the modem prepares its prompt.
        Raises here what :meth:`send` raises before the PDU is handed over.
        """
        if self._channel is None:
            raise ModemError("the modem is not open")
        return PendingSend(self._channel.start(
            f"AT+CMGS={pdu.tpdu_length}", pdu.hex, prompt_timeout=self.timeouts.prompt, timeout=self.timeouts.send,
            meanwhile=meanwhile))

    def soft_reset(self) -> None:
        """AT+CFUN=1,1: restart the modem, without waiting for an answer a hung modem will not give."""
        if self._channel is None:
            raise ModemError("the modem is not open")
        self._channel.write_raw(b"AT+CFUN=1,1\r")
        self.needs_init = True

    # --- message memory -----------------------------------------------------------------

    def select_memory(self, memory: str) -> None:
        if memory and memory != self._read_memory:
            self._cmd(f'AT+CPMS="{memory}"')
            self._read_memory = memory

    def read_stored(self, index: int, memory: str | None = None) -> StoredMessage | None:
        """AT+CMGR: one stored PDU, or None if the slot is empty."""
        if memory:
            self.select_memory(memory)
        try:
            lines = self._cmd(f"AT+CMGR={index}")
        except CommandFailed as exc:
            if exc.kind == "cms" and exc.code == 321:
                return None
            raise
        return next(iter(self._stored(lines, index)), None)

    def list_stored(self, memory: str | None = None) -> list[StoredMessage]:
        """AT+CMGL=4: every stored PDU (read, unread, sent, unsent)."""
        if memory:
            self.select_memory(memory)
        return self._stored(self._cmd("AT+CMGL=4", timeout=max(self.timeouts.command, 20)))

    def delete_stored(self, index: int) -> None:
        self._cmd(f"AT+CMGD={index}")

    def delete_read(self) -> None:
        """AT+CMGD=0,1: delete every *read* message in the current memory.

        After AT+CMGL=4 has listed (and so marked read) everything, this
        clears exactly what was listed: a message that arrived since is
        still unread and stays.
        """
        self._cmd("AT+CMGD=0,1")

    @staticmethod
    def _stored(lines: list[str], index: int | None = None) -> list[StoredMessage]:
        out = []
        header: list[str] | None = None
        for line in lines:
            if line.upper().startswith(("+CMGR:", "+CMGL:")):
                header = fields_of(line)
                continue
            if header is None:
                continue
            if index is None:  # +CMGL: <index>,<stat>,[<alpha>],<length>
                idx, stat, length = int_or(header[0], -1), int_or(header[1], -1), int_or(header[-1], 0)
            else:  # +CMGR: <stat>,[<alpha>],<length>
                idx, stat, length = index, int_or(header[0], -1), int_or(header[-1], 0)
            out.append(StoredMessage(idx, stat, length, line.strip()))
            header = None
        return out

    # --- unsolicited --------------------------------------------------------------------

    def _urc(self, urc: Urc) -> None:
        if urc.name == "RDY":
            self.needs_init = True
            self.state = replace(self.state, state="starting", detail="the modem restarted")
        elif urc.name == "+CPIN":
            value = urc.args.upper()
            if "NOT INSERTED" in value or "NOT READY" in value:
                self.state = replace(self.state, state="no-sim", detail="no SIM card: insert the shop's SIM card")
                self.needs_init = True
        elif urc.name in ("+CREG", "+CEREG"):
            # One URC shows one access technology (LTE can be registered while
            # +CREG says 0), so ask for the whole picture again.
            self.refresh_wanted = True
        try:
            self._on_urc(urc)
        except Exception:  # noqa: BLE001
            log.exception("URC handler failed for %r", urc.line)

    def _lost(self, error: ModemError) -> None:
        self.needs_init = True
        self.state = replace(self.state, state="disconnected", detail=str(error))
        self._on_lost(error)
