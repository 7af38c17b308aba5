"""Writes that wait for the modem to be busy: the last send's bookkeeping, done during the next one.

The send step and the collection of stored texts both hand their database
writes here instead of doing them at once, so the modem never waits for an
fsync: the worker runs them (:meth:`Bookkeeping.flush`) while the modem
works on the next part, or between steps when nothing is with the modem.
"""

from __future__ import annotations

from typing import Callable


class Bookkeeping:
    def __init__(self) -> None:
        self._pending: list[Callable[[], None]] = []

    def later(self, write: Callable[[], None]) -> None:
        """Do ``write`` at the next :meth:`flush`, after everything handed in before it."""
        self._pending.append(write)

    def flush(self) -> None:
        """Do every pending write, in order. One that raises (the database busy, say) stays pending, with
        those after it, for the next flush; those before it are done and gone."""
        while self._pending:
            self._pending[0]()
            self._pending.pop(0)

    def __bool__(self) -> bool:
        return bool(self._pending)
