"""Is the box's clock right? Sending waits while it is plainly behind.

A Raspberry Pi has no battery-backed clock. At boot the time comes from a
file saved at an earlier shutdown (fake-hwclock) - on the read-only root,
the one saved on the first boot - until network time (NTP) corrects it. A
message sent before that would go into the record with a wrong time, and the
record's times are what a lawful query asks for.

So the box keeps a high-water mark of its own clock (``clock_high_water`` in
the database, written at most once a minute; on a box that has none yet, the
newest send in the send log). A clock more than :data:`SLACK` behind the
mark has gone back: sending waits, saying why, until the clock has caught
up. A mark set by a clock that was wrong the other way (ahead) is cleared
with ``smsgenie clock reset``.
"""

from __future__ import annotations

from appliance import kv
from appliance.clock import Clock
from appliance.db import Database

KEY = "clock_high_water"
#: How far the clock may be behind the mark before it counts as wrong (NTP corrections are small).
SLACK = 300.0
#: How often the mark is written while the clock is right.
WRITE_EVERY = 60.0


class ClockCheck:
    """One worker's view of the mark; each thread has its own (own database connection)."""

    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock
        stored = _stored(db)
        if stored is not None:
            self.mark = stored
        else:  # a box from before the mark: its newest send, once
            self.mark = db.execute("SELECT MAX(at) FROM send_log").fetchone()[0] or 0.0
        self._written_at = -1e18

    def behind(self) -> float:
        """Seconds the clock is behind the mark, when that is more than the slack; else 0."""
        now = self.clock.time()
        if now < self.mark - SLACK:
            stored = _stored(self.db)
            if stored is None or now < stored - SLACK:
                return self.mark - now
            self.mark = now  # the mark was set back (`smsgenie clock reset`): believe the clock again
            return 0.0
        if now > self.mark:
            self.mark = now
            if self.clock.monotonic() - self._written_at >= WRITE_EVERY:
                self._write(now)
        return 0.0

    def _write(self, now: float) -> None:
        with self.db.atomic() as conn:
            conn.execute("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value ="
                         " MAX(CAST(value AS REAL), excluded.value)", (KEY, repr(now)))
        self._written_at = self.clock.monotonic()


def _stored(db: Database) -> float | None:
    value = kv.get(db.conn, KEY)
    return None if value is None else float(value)


def reset(db: Database, clock: Clock) -> float | None:
    """Set the mark to now (the technician says the clock is right; the mark was from a wrong clock).

    Returns the mark that was there."""
    with db.atomic() as conn:
        before = _stored(db)
        kv.put(conn, KEY, repr(clock.time()))
    return before
