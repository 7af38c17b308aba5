"""Serving the page with waitress (a production WSGI server) in a background thread.

Whoever runs the box (the front door: ``smsgenie run``, the demo) makes the
server; the page itself never starts anything. With ``[web] tls = "auto"``
the page is HTTPS (web/tls.py) with the box's own certificate
(appliance/certs.py), and ``[web] redirect_from`` answers plain HTTP with a
redirect to it.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from typing import Callable

from waitress.server import create_server

from appliance import certs
from appliance.clock import Clock, SystemClock
from appliance.config import Config
from appliance.errors import SmsGenieError
from appliance.jobs import Jobs
from appliance.ui.link import PanelLink
from web import create_app
from web.gate import ANONYMOUS_BODY, body_limits, guard
from web.tls import redirect_app, serve_tls, server_context

log = logging.getLogger(__name__)

WHY = {errno.EADDRINUSE: "the port is in use (another smsgenie, or another program)",
       errno.EADDRNOTAVAIL: "that address is not one of this machine's",
       errno.EACCES: "ports under 1024 need the service's CAP_NET_BIND_SERVICE (or root)"}


class PageCannotListen(SmsGenieError, OSError):
    """The page's address cannot be listened on (port in use, an address not on this machine...)."""


def _cannot_listen(listen: str, source: str, exc: OSError, key: str = "listen") -> PageCannotListen:
    why = WHY.get(exc.errno) or (f"the host is not known ({exc.strerror})" if isinstance(exc, socket.gaierror)
                                 else exc.strerror or str(exc))
    return PageCannotListen(f"the page cannot listen on {listen}: {why}. Change [web] {key} in {source} "
                            f"(e.g. {key} = \"0.0.0.0:{8080 if key == 'listen' else 8000}\"), or stop what holds it")


def check_listen(listen: str, source: str, key: str = "listen") -> None:
    """Fail now, with what to change, if ``listen`` cannot be listened on (before anything else starts)."""
    host, _, port = listen.rpartition(":")
    try:
        infos = socket.getaddrinfo(host or "0.0.0.0", int(port), type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as waitress does
            s.bind(address)
    except OSError as exc:
        raise _cannot_listen(listen, source, exc, key) from None


class WebServer:
    """The LAN page on ``config.web.listen``, in a background thread; :meth:`close` stops it."""

    def __init__(self, config: Config, *, clock: Clock | None = None, panel: PanelLink | None = None,
                 on_failure: Callable[[BaseException], None] = lambda exc: None):
        """``on_failure(error)`` is called if the server stops by itself (not by :meth:`close`)."""
        clock = clock or SystemClock()
        host, _, port = config.web.listen.rpartition(":")
        self.jobs = Jobs(processes=True)  # big lists read in worker processes, not against the modems' workers
        self.app = create_app(config, clock=clock, panel=panel, jobs=self.jobs)
        self.certificates = None
        if config.web.https:
            names = lambda: certs.box_names(host)  # noqa: E731 - the LAN address may change while it runs
            self.certificates = certs.ensure(config.data_dir, *names(), clock)
        self.server = self._listen(config, "listen", self.app, threads=8,
                                   url_scheme="https" if self.certificates else "http")
        guard(self.server, body_limits(self.app, config.web.max_upload_mb))
        if self.certificates:
            chain, key = str(self.certificates.chain), str(self.certificates.key)
            context = server_context(chain, key)

            def recheck() -> None:
                certs.ensure(config.data_dir, *names(), clock)
                context.load_cert_chain(chain, key)

            serve_tls(self.server, context, recheck)
        scheme = "https" if self.certificates else "http"
        self.url = f"{scheme}://{'127.0.0.1' if host in ('', '0.0.0.0') else host}:{self.server.effective_port}"
        self.servers = [self.server]
        if config.web.redirect_from:
            ca = self.certificates.ca
            redirect = redirect_app(self.server.effective_port, ca.read_bytes,
                                    lambda: certs.lan_ip() if host in ("", "0.0.0.0") else host)
            plain = self._listen(config, "redirect_from", redirect, threads=2)
            guard(plain, lambda path, headers: ANONYMOUS_BODY)
            self.servers.append(plain)
        self._on_failure = on_failure
        self._closing = False
        self._threads = [threading.Thread(target=self._serve, args=(server,), name=f"web{i or ''}", daemon=True)
                         for i, server in enumerate(self.servers)]

    @staticmethod
    def _listen(config: Config, key: str, app, **options):
        listen = getattr(config.web, key)
        host, _, port = listen.rpartition(":")
        try:
            return create_server(app, host=host or "0.0.0.0", port=int(port), channel_timeout=30,
                                 ident="smsgenie", **options)
        except OSError as exc:
            raise _cannot_listen(listen, config.source, exc, key) from None

    def _serve(self, server) -> None:
        try:
            server.run()
        except BaseException as exc:  # noqa: BLE001 - whatever it was, the box must not go on without its page
            if not self._closing:
                log.exception("the page stopped: %s", exc)
                self._on_failure(exc)
            return
        if not self._closing:
            log.error("the page stopped by itself")
            self._on_failure(RuntimeError("the web page's server stopped by itself"))

    def start(self) -> "WebServer":
        for thread in self._threads:
            thread.start()
        log.info("web page on %s", self.url)
        if self.certificates:
            log.info("the page's certificate is signed by the box's CA %s, SHA-256 %s",
                     self.certificates.ca, self.certificates.fingerprint)
        return self

    def close(self) -> None:
        self._closing = True
        for server in self.servers:
            server.close()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=5)
        self.jobs.shutdown()
