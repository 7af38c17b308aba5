"""Time, injectable, so code that waits can be tested in simulated time.

Everything that waits (retry backoff, reopening a vanished port, polling)
asks a :class:`Clock`. :class:`SystemClock` is the real one; tests pass a
:class:`FakeClock`, which jumps forward instead of sleeping.
"""

from __future__ import annotations

import threading
import time


class Clock:
    """Must override: :meth:`time`, :meth:`monotonic`, :meth:`wait`."""

    def time(self) -> float:
        """Wall-clock seconds since the epoch, for timestamps people read."""
        raise NotImplementedError

    def monotonic(self) -> float:
        """Seconds that never go backwards, for intervals and deadlines."""
        raise NotImplementedError

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Wait until ``event`` is set or ``timeout`` passes; True if it was set."""
        raise NotImplementedError


class SystemClock(Clock):
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, event: threading.Event, timeout: float) -> bool:
        return event.wait(max(0.0, timeout))


class FakeClock(Clock):
    """A clock that moves only when told to, or when someone waits on it.

    ``wait`` yields the thread for a moment (so real I/O such as a simulated
    modem on a pty can make progress) and then advances simulated time by
    the whole timeout, unless the event is set.
    """

    def __init__(self, start: float = 1_790_000_000.0):
        self._now = start
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        return self.time()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def wait(self, event: threading.Event, timeout: float) -> bool:
        if event.wait(0.001):
            return True
        self.advance(max(0.0, timeout))
        return event.is_set()
