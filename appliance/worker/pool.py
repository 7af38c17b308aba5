"""Which modems of a pool are free right now, shared by their workers."""

from __future__ import annotations

import threading


class Pool:
    """Which modems are free right now, so a message waits for its own carrier's SIM when that one is free."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, tuple[str, bool]] = {}

    def set(self, label: str, carrier: str, available: bool) -> None:
        with self._lock:
            self._state[label] = (carrier, available)

    def other_carriers(self, label: str, carrier: str) -> tuple[str, ...]:
        """Carriers of the pool's other modems besides ``carrier``, free or not (a number its own carrier's
        SIM could not reach is tried through them: appliance/carriers.py)."""
        with self._lock:
            return tuple(sorted({c for other, (c, _free) in self._state.items()
                                 if other != label and c and c != carrier}))

    def served_elsewhere(self, label: str) -> tuple[str, ...]:
        """Carriers another free modem is on: their messages are left for it."""
        with self._lock:
            return tuple(sorted({c for other, (c, free) in self._state.items() if other != label and free and c}))
