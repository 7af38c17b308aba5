"""What the simulated modem answers to each AT command (27.005/27.007, PDU mode), and what it does.

:class:`AtCommands` is the command half of :class:`hw.modem.sim.SimulatedModem`
(which holds the pty, the loop, the faults and the test controls), kept in a
module of its own so each half reads alone. Its methods run in the modem's
loop thread and use the state the modem keeps (``self.registration``,
``self._storage``...).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from hw.errors import PduError
from hw.modem import pdu as pducodec

log = logging.getLogger("hw.modem.sim")

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


class AtCommands:
    """The AT command handlers of the simulated modem (a mixin: the state is the modem's)."""

    @property
    def busy(self) -> bool:
        """A PDU is with the network and its +CMGS answer not given yet: the moment in which a power cut
        leaves the sender not knowing whether the message went (it is then "uncertain")."""
        with self._lock:
            return self._busy

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
        for answer in (self._general, self._sim_and_network, self._sms_settings, self._sms):
            if answer(body, body.upper()):
                return
        self._reply(final="ERROR")

    def _general(self, body: str, upper: str) -> bool:
        """Echo, identity, error reporting, reset."""
        if upper in ("", "Z"):
            self._reply()
        elif upper in ("E0", "E1"):
            self.echo = upper == "E1"
            self._reply()
        elif upper == "I":
            self._reply("Manufacturer: SIMCOM INCORPORATED", f"Model: {self.model}", "Revision: SIM-SIMULATED")
        elif upper == "+CGMM":
            self._reply(self.model)
        elif upper.startswith("+CMEE="):
            self.cmee = int(upper[6:] or 0)
            self._reply()
        elif upper == "+CFUN=1,1":
            self._reply()
            self._reboot()
        else:
            return False
        return True

    def _sim_and_network(self, body: str, upper: str) -> bool:
        """The SIM (ICCID, PIN) and the network (registration, signal, operator)."""
        if upper in ("+CICCID", "+QCCID", "+CCID"):
            # SIMCom answers AT+CICCID, Quectel AT+QCCID; each names its own reply
            if not self.sim_present:
                self._error("CME", 10)
            elif (upper == "+QCCID") != ("EC25" in self.model.upper()):
                self._reply(final="ERROR")
            else:
                self._reply(f"{'+QCCID' if upper == '+QCCID' else '+ICCID'}: {self.iccid}")
        elif upper == "+CPIN?" or upper.startswith("+CPIN="):
            self._cpin(body, upper)
        elif upper in ("+CREG?", "+CEREG?", "+CGREG?"):
            self._reply(f"{upper[:-1]}: {self.creg_n},{self.registration if self.sim_present else 0}")
        elif upper.startswith("+CREG="):
            self.creg_n = int(upper[6:] or 0)
            self._reply()
        elif upper == "+CSQ":
            self._reply(f"+CSQ: {self.signal if self.sim_present else 99},99")
        elif upper.startswith("+COPS="):
            self._reply()
        elif upper == "+COPS?":
            registered = self.sim_present and self.registration in (1, 5)
            self._reply(f'+COPS: 0,0,"{self.operator}",7' if registered else "+COPS: 0")
        else:
            return False
        return True

    def _cpin(self, body: str, upper: str) -> None:
        if not self.sim_present:
            self._error("CME", 10)
        elif upper == "+CPIN?":
            self._reply("+CPIN: READY" if self._pin_ok else "+CPIN: SIM PIN")
        elif body[6:].strip('"') == self.sim_pin:
            self._pin_ok = True
            self._reply()
        else:
            self._error("CME", 16)

    def _sms_settings(self, body: str, upper: str) -> bool:
        """PDU mode, where indications go, the service centre, message storage."""
        if upper.startswith("+CMGF="):
            self.cmgf = int(upper[6:] or 0)
            self._reply()
        elif upper.startswith("+CNMI="):
            values = [int(v) if v.strip().isdigit() else 0 for v in upper[6:].split(",")] + [0] * 5
            self.cnmi_mt, self.cnmi_ds = values[1], values[3]
            self._reply()
        elif upper == "+CSCA?":
            self._reply(f'+CSCA: "{self.smsc}",145')
        elif upper.startswith("+CPMS="):
            n = len(self._storage)
            self._reply(f"+CPMS: {n},{self.capacity},{n},{self.capacity},{n},{self.capacity}")
        elif upper == "+CPMS?":
            n = len(self._storage)
            self._reply(",".join([f'+CPMS: "SM",{n},{self.capacity}'] + [f'"SM",{n},{self.capacity}'] * 2))
        elif upper.startswith("+CSMS"):
            self._reply("+CSMS: 1,1,1")
        else:
            return False
        return True

    def _sms(self, body: str, upper: str) -> bool:
        """Sending, reading, listing and deleting messages."""
        if upper.startswith("+CMGS="):
            self._cmgs(upper)
        elif upper.startswith("+CMGR="):
            self._cmgr(int(upper[6:]))
        elif upper.startswith("+CMGD="):
            self._cmgd(upper[6:])
        elif upper.startswith("+CMGL"):
            lines = []
            for index, (stat, p, length) in sorted(self._storage.items()):
                lines += [f"+CMGL: {index},{stat},,{length}", p]
                if stat == 0:  # listing marks received messages read (27.005 §3.4.2)
                    self._storage[index] = (1, p, length)
            self._reply(*lines)
        else:
            return False
        return True

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
