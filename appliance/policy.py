"""Sending like a careful operator: per-SIM caps and pacing, and quiet hours.

Chinese carriers bar ordinary SIMs that send too much too fast (figures
seen in the field for China Mobile: about 200 an hour and 1,000 a day, and
limits on distinct recipients). So each modem's SIM has caps per minute,
per hour and per calendar day, a cap on distinct recipients per day, and a
minimum gap with random jitter between messages. The defaults per carrier
are in :data:`CARRIER_DEFAULTS` (and docs/sending-policy.md); each
``[[modem]]`` may override any of them, 0 meaning "no cap".

What was sent is counted from the ``send_log`` table (one row per SMS part
the network accepted), so counters survive restarts. Minute and hour are
rolling windows; the day is the box's local calendar day. When a cap is
reached the queue waits - nothing is dropped - and the gate says why and
when sending resumes.

Quiet hours (default 21:00-08:00, box local time, a shop setting) hold
marketing lists; transactional ones ("your order is ready") go anyway.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from appliance.config import ModemConfig
from appliance.errors import SettingsError
from appliance.text import say


@dataclass(frozen=True)
class Caps:
    per_minute: int
    per_hour: int
    per_day: int
    distinct_per_day: int
    min_gap_seconds: float
    jitter_seconds: float


#: Defaults for an ordinary (non-bulk) SIM, from field reports; the shop's carrier contract may differ.
_ORDINARY = Caps(per_minute=10, per_hour=200, per_day=1000, distinct_per_day=800, min_gap_seconds=3.0,
                 jitter_seconds=2.0)
CARRIER_DEFAULTS: dict[str, Caps] = {
    "China Mobile": _ORDINARY,
    "China Unicom": _ORDINARY,
    "China Telecom": _ORDINARY,
    "China Broadnet": _ORDINARY,
    "": _ORDINARY,
}


#: For tests and benchmarks that are not about the policy: a modem with no caps and no gap.
NO_CAPS = {"per_minute": 0, "per_hour": 0, "per_day": 0, "distinct_per_day": 0, "min_gap_seconds": 0.0,
           "jitter_seconds": 0.0}


def caps_for(modem: ModemConfig, shop: dict | None = None) -> Caps:
    """The carrier's defaults, with what the modem's config overrides, with what the shop's admin
    set for this SIM on top (``shop``: the ``sim_caps`` setting's entry for the modem's label).

    The shop has the last word because the shop holds the SIM's contract; the technician's config
    file says what the box was installed with.
    """
    base = CARRIER_DEFAULTS.get(modem.carrier, _ORDINARY)
    values = {name: getattr(modem, name) if getattr(modem, name) is not None else getattr(base, name)
              for name in Caps.__dataclass_fields__}
    values.update({k: v for k, v in (shop or {}).items() if k in values})
    return Caps(**values)


@dataclass(frozen=True)
class Gate:
    """How many more SMS parts a modem may send now; if none, why and until when."""

    allowed: int
    reason: str | None = None
    resume_at: float | None = None

    @property
    def open(self) -> bool:
        return self.allowed > 0


UNLIMITED = 10**9


def _day_start(now: float) -> float:
    return datetime.combine(datetime.fromtimestamp(now).date(), time()).timestamp()


def gate(conn: sqlite3.Connection, modem: str, caps: Caps, now: float, in_flight: int = 0,
         in_flight_to: str | None = None) -> Gate:
    """Check ``modem``'s caps at ``now``; ``in_flight`` parts (to ``in_flight_to``) are with the modem
    but not yet in the send log."""
    day_start = _day_start(now)
    next_day = (datetime.fromtimestamp(day_start) + timedelta(days=1)).timestamp()
    allowed = UNLIMITED
    worst: tuple[str, float] | None = None

    def consider(cap: int, used: int, what: str, resume: float) -> None:
        nonlocal allowed, worst
        if cap <= 0:
            return
        left = cap - used
        allowed = min(allowed, left)
        if left <= 0 and (worst is None or resume > worst[1]):
            worst = (say("{what} cap of {cap} reached", what=what, cap=cap), resume)

    for seconds, cap, what in ((60, caps.per_minute, say("per-minute")), (3600, caps.per_hour, say("hourly"))):
        if cap > 0:
            used = conn.execute("SELECT COUNT(*) FROM send_log WHERE modem = ? AND at > ?",
                                (modem, now - seconds)).fetchone()[0] + in_flight
            resume = now
            if used >= cap:  # when enough of the window's sends have aged out
                row = conn.execute("SELECT at FROM send_log WHERE modem = ? AND at > ? ORDER BY at"
                                   " LIMIT 1 OFFSET ?", (modem, now - seconds, max(0, used - cap))).fetchone()
                resume = (row[0] if row else now) + seconds
            consider(cap, used, what, resume)
    if caps.per_day > 0:
        used = conn.execute("SELECT COUNT(*) FROM send_log WHERE modem = ? AND at >= ?",
                            (modem, day_start)).fetchone()[0] + in_flight
        consider(caps.per_day, used, say("daily"), next_day)
    if caps.distinct_per_day > 0:
        used = conn.execute("SELECT COUNT(DISTINCT recipient) FROM send_log WHERE modem = ? AND at >= ?",
                            (modem, day_start)).fetchone()[0]
        if in_flight_to and not conn.execute("SELECT 1 FROM send_log WHERE modem = ? AND at >= ? AND recipient = ?"
                                             " LIMIT 1", (modem, day_start, in_flight_to)).fetchone():
            used += 1
        consider(caps.distinct_per_day, used, say("daily distinct-recipient"), next_day)
    if worst is not None:
        return Gate(0, worst[0], worst[1])
    return Gate(allowed)


def usage(conn: sqlite3.Connection, modem: str, now: float) -> dict[str, int]:
    """What a modem sent: last minute, last hour, today, distinct recipients today."""
    day_start = _day_start(now)
    q = "SELECT COUNT(*) FROM send_log WHERE modem = ? AND at > ?"
    return {
        "minute": conn.execute(q, (modem, now - 60)).fetchone()[0],
        "hour": conn.execute(q, (modem, now - 3600)).fetchone()[0],
        "day": conn.execute("SELECT COUNT(*) FROM send_log WHERE modem = ? AND at >= ?",
                            (modem, day_start)).fetchone()[0],
        "distinct_recipients_day": conn.execute(
            "SELECT COUNT(DISTINCT recipient) FROM send_log WHERE modem = ? AND at >= ?",
            (modem, day_start)).fetchone()[0],
    }


# --- quiet hours -----------------------------------------------------------------------------------


def parse_quiet_hours(spec: str) -> tuple[time, time] | None:
    """'21:00-08:00' -> (21:00, 08:00); '' -> None (no quiet hours)."""
    spec = spec.strip()
    if not spec:
        return None
    try:
        start, end = (datetime.strptime(part.strip(), "%H:%M").time() for part in spec.split("-"))
    except ValueError:
        raise SettingsError(f"quiet hours {spec!r} should look like 21:00-08:00 (or be empty for none)") from None
    if start == end:
        raise SettingsError("quiet hours must start and end at different times")
    return start, end


def quiet_until(now: float, spec: str) -> float | None:
    """If ``now`` (box local time) is in the quiet hours, when they end; else None."""
    window = parse_quiet_hours(spec)
    if window is None:
        return None
    start, end = window
    moment = datetime.fromtimestamp(now)
    t = moment.time()
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    if not inside:
        return None
    end_at = datetime.combine(moment.date(), end)
    if end_at <= moment:
        end_at += timedelta(days=1)
    return end_at.timestamp()
