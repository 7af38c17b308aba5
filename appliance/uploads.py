"""Uploaded lists waiting for "Send": kept an hour at most.

The page keeps an uploaded list in the data dir between its preview and the
shop's "Send" (appliance/intake.py reads it twice). One nobody confirmed - a
closed tab, a changed mind - must not fill the card: the daemon deletes
those older than :data:`KEEP_SECONDS` every hour (the page deletes its own
when a request fails).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

UPLOADS = "uploads"
KEEP_SECONDS = 3600.0


def forget_stale_uploads(data_dir: str | os.PathLike, older_than: float = KEEP_SECONDS,
                         now: float | None = None) -> int:
    """Delete uploads older than ``older_than`` seconds; returns how many."""
    folder = Path(data_dir) / UPLOADS
    now = time.time() if now is None else now
    gone = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False) and now - entry.stat(follow_symlinks=False).st_mtime > older_than:
                os.unlink(entry.path)
                gone += 1
        except OSError:
            continue  # gone meanwhile, or not ours to delete
    return gone
