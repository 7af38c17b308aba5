"""What a modem says about itself, as the box keeps it: registration, signal, operator, stored messages.

The parsing of 27.007 answers (+CREG/+CEREG <stat>, access technology,
quoted fields) lives here beside :class:`ModemState`, which the status page,
the OLED and ``smsgenie status`` show; :mod:`hw.modem.driver` asks the modem.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# <stat> of +CREG / +CEREG (27.007 §7.2)
REGISTRATION = {
    0: "not registered, not searching",
    1: "registered, home network",
    2: "searching for a network",
    3: "registration denied",
    4: "registration state unknown",
    5: "registered, roaming",
    6: "registered for SMS only, home network",
    7: "registered for SMS only, roaming",
    8: "emergency calls only",
    9: "registered (CSFB not preferred), home network",
    10: "registered (CSFB not preferred), roaming",
}
HOME = {1, 6, 9}
ROAMING = {5, 7, 10}
ACCESS = {0: "GSM", 1: "GSM", 2: "3G", 3: "EDGE", 4: "3G", 5: "3G", 6: "3G", 7: "4G", 8: "4G", 9: "4G",
          10: "4G", 11: "5G", 12: "5G", 13: "5G"}

#: States in which the modem can send.
READY_STATES = {"registered", "roaming"}


@dataclass(frozen=True)
class ModemState:
    """What the box knows about its modem, for people and for the daemon."""

    state: str = "disconnected"
    """disconnected, starting, no-sim, sim-locked, sim-error, searching, denied, registered, roaming, error"""
    detail: str = ""
    operator: str = ""
    signal: int = 99
    """+CSQ <rssi>: 0 (-113 dBm) to 31 (-51 dBm or better); 99 unknown."""
    access: str = ""
    registration: int | None = None
    smsc: str = ""
    model: str = ""
    iccid: str = ""
    """The SIM card's serial number (printed on the card): how a technician tells SIMs apart."""

    @property
    def ready(self) -> bool:
        return self.state in READY_STATES

    @property
    def signal_dbm(self) -> int | None:
        return -113 + 2 * self.signal if 0 <= self.signal <= 31 else None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["signal_dbm"] = self.signal_dbm
        d["ready"] = self.ready
        return d


@dataclass(frozen=True)
class StoredMessage:
    """A PDU held in the modem's (or SIM's) message memory."""

    index: int
    status: int
    length: int
    pdu: str


def fields_of(line: str) -> list[str]:
    """'+COPS: 0,0,"CHINA MOBILE",7' -> ['0', '0', 'CHINA MOBILE', '7']."""
    body = line.split(":", 1)[1] if ":" in line else line
    out, cur, quoted = [], "", False
    for ch in body:
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    out.append(cur.strip())
    return out


def int_or(value: str, default: int | None = None) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def best_registration(stats: list[int]) -> int | None:
    """The best of the +CREG/+CEREG answers: home over roaming over anything else."""
    for group in (HOME, ROAMING):
        for s in stats:
            if s in group:
                return s
    return stats[0] if stats else None

def registration_state(stat: int | None) -> dict:
    """A <stat> as the state and detail people read."""
    if stat in HOME:
        return {"state": "registered", "detail": REGISTRATION[stat]}
    if stat in ROAMING:
        return {"state": "roaming", "detail": REGISTRATION[stat]}
    if stat == 3:
        return {"state": "denied", "detail": "the network refused the SIM: check the SIM is active and paid up"}
    detail = REGISTRATION.get(stat, "registration unknown") if stat is not None else "registration unknown"
    return {"state": "searching", "detail": f"{detail}: check the antenna and the SIM's service"}
