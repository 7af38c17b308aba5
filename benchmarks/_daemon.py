"""What the daemon benchmarks share: the real ``smsgenie run`` in its own process, as on the box.

:func:`daemon_process` writes the config where the daemon reads it, starts
the daemon, and stops it with SIGTERM (as systemd does) when the block ends;
:func:`wait_until_sent` polls the queue until nothing is queued or being
sent; :func:`send_window` is the span from the first claim to the last
"sent", from the queue's own timestamps; :func:`machine` names the host.
"""

from __future__ import annotations

import contextlib
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from appliance import config as configmod
from appliance.config import Config
from appliance.db import Database
from appliance.sendqueue import SendQueue
from appliance.settings import ShopSettings as BoxSettings


def machine() -> str:
    return f"{platform.machine()} {platform.python_implementation()} {platform.python_version()}"


@contextlib.contextmanager
def daemon_process(config: Config, directory: str | Path) -> Iterator[subprocess.Popen]:
    """``smsgenie run`` on ``config`` (written to DIRECTORY/config.toml) until the block ends."""
    config_file = Path(directory) / "config.toml"
    config_file.write_text(configmod.dump(config))
    box = BoxSettings(config.data_dir)  # a benchmark runs at any hour: no quiet hours holding its list
    box.set("quiet_hours", "")
    box.close()
    daemon = subprocess.Popen([sys.executable, "-m", "smsgenie", "--config", str(config_file), "run"],
                              stderr=subprocess.DEVNULL)
    try:
        yield daemon
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)


def wait_until_sent(q: SendQueue, timeout: float, *, poll: float = 0.1,
                    each: Callable[[], None] | None = None) -> None:
    """Poll until nothing is queued or sending (or ``timeout`` seconds pass), calling ``each`` per poll."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if each is not None:
            each()
        c = q.counts()
        if c["queued"] == c["sending"] == 0:
            return
        time.sleep(poll)


def send_window(db: Database) -> tuple[float, float]:
    """(first claim, last "sent") over every message, epoch seconds."""
    first = db.execute("SELECT MIN(sending_at) FROM message").fetchone()[0]
    last = db.execute("SELECT MAX(sent_at) FROM message").fetchone()[0]
    return first, last
