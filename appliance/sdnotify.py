"""Telling systemd how the service is: READY, WATCHDOG, STATUS, STOPPING (sd_notify(3)).

``smsgenie.service`` is ``Type=notify`` with ``WatchdogSec=``: systemd sets
``NOTIFY_SOCKET`` (a unix datagram socket, ``@`` meaning the abstract
namespace) and ``WATCHDOG_USEC``, and restarts the service when the pings
stop. The protocol is a few ``KEY=value`` lines per datagram, so it is
written here rather than pulling in libsystemd for it.

Outside systemd (a terminal, the demo, the tests without a socket) every
call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """The service manager's notify socket, if there is one."""

    def __init__(self, socket_path: str | None = None, watchdog_usec: int | None = None):
        self._address: str | bytes | None = None
        if socket_path:
            # "@name" is Linux's abstract namespace: a leading NUL byte on the wire.
            self._address = b"\0" + socket_path[1:].encode() if socket_path.startswith("@") else socket_path
        self.watchdog_interval = watchdog_usec / 1e6 if watchdog_usec else None
        """Seconds within which systemd expects a WATCHDOG=1, or None when it does not watch."""
        self._sock: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """What systemd gave this process. WATCHDOG_PID, when set, must be ours (not a parent's)."""
        env = os.environ if environ is None else environ
        usec = None
        pid = env.get("WATCHDOG_PID")
        if env.get("WATCHDOG_USEC", "").isdigit() and (not pid or pid == str(os.getpid())):
            usec = int(env["WATCHDOG_USEC"]) or None
        return cls(env.get("NOTIFY_SOCKET") or None, usec)

    @property
    def active(self) -> bool:
        return self._address is not None

    def notify(self, **fields: str | int) -> bool:
        """Send ``KEY=value`` lines; False if there is no socket or it would not take them."""
        if self._address is None:
            return False
        text = "\n".join(f"{key.upper()}={value}" for key, value in fields.items())
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(text.encode(), self._address)
            return True
        except OSError as exc:
            if not self._warned:  # once: a vanished socket must not flood the journal
                log.warning("cannot notify the service manager at %s: %s", self._address, exc)
                self._warned = True
            return False

    def ready(self, status: str = "") -> bool:
        return self.notify(ready=1, **({"status": status} if status else {}))

    def watchdog(self) -> bool:
        return self.notify(watchdog=1)

    def status(self, text: str) -> bool:
        return self.notify(status=text)

    def stopping(self) -> bool:
        return self.notify(stopping=1)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
