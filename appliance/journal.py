"""The hand-over journal: which claimed messages were given to the modem.

A claimed message (``sending``) that never reached the modem can simply be
queued again after a crash; one that did may have gone out and must become
``uncertain``. The daemon writes one line here right before each PDU goes to
the modem, and fsyncs it while the modem prepares its ``>`` prompt (the PDU
cannot go before the prompt anyway, so the modem rarely waits for it).

Because each line is on the disk before its PDU leaves, the journal is
trusted after a power cut too: a claimed message not in it never reached the
modem and goes back to the queue uncharged, so only the one the modem had
becomes ``uncertain``. (Found by image-build/boot-test: when the journal was
not fsynced, every power cut also made the message claimed next uncertain,
charged and left for a person to check though it had never gone.) A journal
written without the fsyncs - by a release before them; it lacks
:data:`HEADER` - is trusted only if the machine did not restart.
"""

from __future__ import annotations

import os
from pathlib import Path

from appliance.files import fsync_dir

JOURNAL_GLOB = "handover.*.journal"
#: The first line of a journal whose every line was fsynced before its PDU went to the modem.
HEADER = b"# smsgenie hand-over journal: each line fsynced before its PDU goes to the modem\n"


def read_all(data_dir: str | os.PathLike) -> set[tuple[int, float]]:
    """Every modem's hand-overs (the daemon reads them all at start, before any worker runs)."""
    entries: set[tuple[int, float]] = set()
    for path in sorted(Path(data_dir).glob(JOURNAL_GLOB)):
        entries |= _parse(path)
    return entries


def durable(data_dir: str | os.PathLike) -> bool:
    """Whether every journal in the data dir was kept with fsyncs (:data:`HEADER`), so that it can be
    trusted after the machine restarted (a power cut)."""
    for path in Path(data_dir).glob(JOURNAL_GLOB):
        with open(path, "rb") as f:
            if f.read(len(HEADER)) != HEADER:
                return False
    return True


def _parse(path: Path) -> set[tuple[int, float]]:
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return set()
    entries = set()
    for line in text.split("\n")[:-1]:  # a last line without its newline was torn: not sent
        parts = line.split()  # HEADER has more than two words: no entry
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
        """Start empty (after recovery has read it), the header on the disk before anything is claimed."""
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        os.write(self._fd, HEADER)
        os.fsync(self._fd)
        fsync_dir(self.path.parent)

    def record(self, message_id: int, claimed_at: float) -> None:
        """Message ``message_id``, claimed at ``claimed_at``, goes to the modem now: on the disk when this
        returns."""
        if self._fd is None:
            raise RuntimeError("the hand-over journal is not open")
        os.write(self._fd, f"{message_id} {claimed_at!r}\n".encode("ascii"))
        os.fdatasync(self._fd)

    def clear(self) -> None:
        """Nothing is in flight: forget the past hand-overs (not fsynced: an old line names a message that
        is no longer ``sending``, or one claimed at another time, and matches nothing)."""
        if self._fd is not None:
            os.ftruncate(self._fd, len(HEADER))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
