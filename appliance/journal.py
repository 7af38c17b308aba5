"""The hand-over journal: which claimed messages were given to the modem.

A claimed message (``sending``) that never reached the modem can simply be
queued again after a crash; one that did may have gone out and must become
``uncertain``. The daemon writes one line here right before each PDU goes to
the modem. It is a plain ``write()``: a few microseconds, so the modem never
waits for it, and the kernel keeps it however this process dies.

It is deliberately *not* fsynced: after a power cut (the machine rebooted)
the daemon trusts none of it and treats every claimed message as uncertain.
"""

from __future__ import annotations

import os
from pathlib import Path

JOURNAL_GLOB = "handover.*.journal"


def read_all(data_dir: str | os.PathLike) -> set[tuple[int, float]]:
    """Every modem's hand-overs (the daemon reads them all at start, before any worker runs)."""
    entries: set[tuple[int, float]] = set()
    for path in sorted(Path(data_dir).glob(JOURNAL_GLOB)):
        entries |= _parse(path)
    return entries


def _parse(path: Path) -> set[tuple[int, float]]:
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return set()
    entries = set()
    for line in text.split("\n")[:-1]:  # a last line without its newline was torn: not sent
        parts = line.split()
        if len(parts) == 2:
            try:
                entries.add((int(parts[0]), float(parts[1])))
            except ValueError:
                continue
    return entries


class HandoverJournal:
    """One modem's journal; each worker writes its own, so one going idle never clears another's."""

    def __init__(self, data_dir: str | os.PathLike, label: str = "modem1"):
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in label)
        self.path = Path(data_dir) / f"handover.{safe}.journal"
        self._fd: int | None = None

    def read(self) -> set[tuple[int, float]]:
        """(message id, claimed at) of every hand-over since the journal was last cleared."""
        return _parse(self.path)

    def open(self) -> None:
        """Start empty (after recovery has read it)."""
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)

    def record(self, message_id: int, claimed_at: float) -> None:
        """Message ``message_id``, claimed at ``claimed_at``, goes to the modem now."""
        if self._fd is None:
            raise RuntimeError("the hand-over journal is not open")
        os.write(self._fd, f"{message_id} {claimed_at!r}\n".encode("ascii"))

    def clear(self) -> None:
        """Nothing is in flight: forget the past hand-overs."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
