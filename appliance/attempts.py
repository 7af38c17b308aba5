"""Guessing, slowed: failed logins and set-up PINs counted per address and per account, atomically.

A few failures cost nothing; after that each one doubles the wait before the
next try is even checked - per address up to 15 minutes, per account up to
a minute. So a guesser on the shop's Wi-Fi gets a handful of tries an hour,
while the same guesser cannot lock the shop's admin out for more than a
minute (an account locked for good is a lock anyone can set). A try is
counted *before* the password is checked, in one transaction, so twenty
tries at the same moment are twenty tries, not twenty free ones. A
success clears both counts; a count forgets itself after a quiet day.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.clock import Clock
from appliance.db import Database

#: Failures before waits begin.
FREE_TRIES = 3
#: The longest wait, in seconds, per kind of key.
MAX_WAIT = {"address": 900.0, "account": 60.0, "pin": 900.0}
#: Seconds without a try after which a count starts again from nothing.
FORGET_AFTER = 24 * 3600.0


@dataclass(frozen=True)
class Refused:
    """No try now: the wait still to go, in seconds."""

    wait: float


def wait_after(failures: int, kind: str) -> float:
    """Seconds before the next try, after ``failures`` failures in a row."""
    if failures < FREE_TRIES:
        return 0.0
    return min(MAX_WAIT[kind], 2.0 ** (failures - FREE_TRIES))


class Attempts:
    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock

    def begin(self, keys: dict[str, str]) -> Refused | None:
        """Count one try against every key ({key: kind}), or refuse it if any key must still wait.

        Counted as a failure now; :meth:`succeeded` takes it back."""
        now = self.clock.time()
        with self.db.atomic() as conn:
            rows = {r["key"]: r for r in conn.execute(
                f"SELECT key, failures, next_at, last_at FROM attempt WHERE key IN ({', '.join('?' * len(keys))})",
                list(keys))}
            waits = [r["next_at"] - now for r in rows.values() if now - r["last_at"] < FORGET_AFTER]
            if waits and max(waits) > 0:
                return Refused(max(waits))
            for key, kind in keys.items():
                row = rows.get(key)
                failures = 1 if row is None or now - row["last_at"] >= FORGET_AFTER else row["failures"] + 1
                conn.execute("INSERT INTO attempt (key, failures, next_at, last_at) VALUES (?, ?, ?, ?)"
                             " ON CONFLICT (key) DO UPDATE SET failures = excluded.failures,"
                             " next_at = excluded.next_at, last_at = excluded.last_at",
                             (key, failures, now + wait_after(failures, kind), now))
        return None

    def succeeded(self, keys) -> None:
        """The try was right: its keys start again from nothing."""
        self.clear(*keys)

    def clear(self, *keys: str) -> None:
        with self.db.atomic() as conn:
            conn.execute(f"DELETE FROM attempt WHERE key IN ({', '.join('?' * len(keys))})", keys)
