"""Writes that wait for the modem to be busy: the last send's bookkeeping, done during the next one.

The send step and the collection of stored texts both hand their database
writes here instead of doing them at once, so the modem never waits for an
fsync: the worker runs them (:meth:`Bookkeeping.flush`) while the modem
works on the next part, or between steps when nothing is with the modem.
"""

from __future__ import annotations

from typing import Callable, ContextManager


class Bookkeeping:
    def __init__(self) -> None:
        self._pending: list[Callable[[], None]] = []
        self._after: list[Callable[[], None]] = []

    def later(self, write: Callable[[], None]) -> None:
        """Do ``write`` at the next :meth:`flush`, after everything handed in before it."""
        self._pending.append(write)

    def after_commit(self, effect: Callable[[], None]) -> None:
        """Do ``effect`` (something outside the database: letting the modem forget what a write stored)
        once the write that asks for it has committed: at once when it ran alone, or after the
        transaction of :meth:`flush_together`, and never when that rolled back."""
        self._after.append(effect)

    def flush(self) -> None:
        """Do every pending write, in order, each in its own transaction. One that raises (the database
        busy, say) stays pending, with those after it, for the next flush; those before it are done and gone."""
        while self._pending:
            self._pending[0]()
            self._pending.pop(0)
            self._effects()

    def flush_together(self, atomic: Callable[[], ContextManager]) -> None:
        """Do every pending write in one transaction (``atomic``: one fsync for all). They are gone only
        when it commits; if one raises (a full disk), it rolls back and every one stays pending, with
        nothing of theirs done outside the database."""
        count = len(self._pending)
        if not count:
            return
        try:
            with atomic():
                for write in self._pending[:count]:
                    write()
        except BaseException:
            self._after.clear()
            raise
        del self._pending[:count]
        self._effects()

    def _effects(self) -> None:
        effects, self._after = self._after, []
        for effect in effects:
            effect()

    def __bool__(self) -> bool:
        return bool(self._pending)
