"""Serving the page with waitress (a production WSGI server) in a background thread.

Whoever runs the box (the front door: ``smsgenie run``, the demo) makes the
server; the page itself never starts anything.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from typing import Callable

from waitress.server import create_server

from appliance.clock import Clock
from appliance.config import Config
from appliance.errors import SmsGenieError
from appliance.ui.link import PanelLink
from web import create_app
from web.gate import body_limits, guard

log = logging.getLogger(__name__)

WHY = {errno.EADDRINUSE: "the port is in use (another smsgenie, or another program)",
       errno.EADDRNOTAVAIL: "that address is not one of this machine's",
       errno.EACCES: "ports under 1024 need the service's CAP_NET_BIND_SERVICE (or root)"}


class PageCannotListen(SmsGenieError, OSError):
    """The page's address cannot be listened on (port in use, an address not on this machine...)."""


def _cannot_listen(listen: str, source: str, exc: OSError) -> PageCannotListen:
    why = WHY.get(exc.errno) or (f"the host is not known ({exc.strerror})" if isinstance(exc, socket.gaierror)
                                 else exc.strerror or str(exc))
    return PageCannotListen(f"the page cannot listen on {listen}: {why}. Change [web] listen in {source} "
                            f"(e.g. listen = \"0.0.0.0:8080\"), or stop what holds it")


def check_listen(listen: str, source: str) -> None:
    """Fail now, with what to change, if ``listen`` cannot be listened on (before anything else starts)."""
    host, _, port = listen.rpartition(":")
    try:
        infos = socket.getaddrinfo(host or "0.0.0.0", int(port), type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as waitress does
            s.bind(address)
    except OSError as exc:
        raise _cannot_listen(listen, source, exc) from None


class WebServer:
    """The LAN page on ``config.web.listen``, in a background thread; :meth:`close` stops it."""

    def __init__(self, config: Config, *, clock: Clock | None = None, panel: PanelLink | None = None,
                 on_failure: Callable[[BaseException], None] = lambda exc: None):
        """``on_failure(error)`` is called if the server stops by itself (not by :meth:`close`)."""
        host, _, port = config.web.listen.rpartition(":")
        self.app = create_app(config, clock=clock, panel=panel)
        try:
            self.server = create_server(self.app, host=host or "0.0.0.0", port=int(port), threads=8,
                                        channel_timeout=30, ident="smsgenie")
        except OSError as exc:
            raise _cannot_listen(config.web.listen, config.source, exc) from None
        guard(self.server, body_limits(self.app, config.web.max_upload_mb))
        self.url = f"http://{'127.0.0.1' if host in ('', '0.0.0.0') else host}:{self.server.effective_port}"
        self._on_failure = on_failure
        self._closing = False
        self._thread = threading.Thread(target=self._serve, name="web", daemon=True)

    def _serve(self) -> None:
        try:
            self.server.run()
        except BaseException as exc:  # noqa: BLE001 - whatever it was, the box must not go on without its page
            if not self._closing:
                log.exception("the page stopped: %s", exc)
                self._on_failure(exc)
            return
        if not self._closing:
            log.error("the page stopped by itself")
            self._on_failure(RuntimeError("the web page's server stopped by itself"))

    def start(self) -> "WebServer":
        self._thread.start()
        log.info("web page on %s", self.url)
        return self

    def close(self) -> None:
        self._closing = True
        self.server.close()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
