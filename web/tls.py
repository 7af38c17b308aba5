"""HTTPS for waitress, which speaks only plain HTTP: its connections wrapped in TLS as they are accepted.

waitress runs every connection on one event loop (non-blocking sockets, no
thread per browser) and the page's limits live in its parser and accept
(web/gate.py); a TLS proxy in front would hide each client's address from
both. So the TLS is done here, inside waitress's loop:

- each accepted socket is wrapped server-side without a handshake; the
  handshake then runs on the loop as the socket becomes readable or writable
  (a client that never finishes it is closed by waitress's idle timeout);
- a read takes every byte TLS has decrypted, not only what one ``recv``
  returns: bytes left in the TLS buffer would not wake the loop again;
- "want read / want write" is "nothing now, try again", never an error.

waitress reads a connection only while no request of it is running, and
writes from a request's thread only under the connection's lock, so one TLS
connection is never used by two threads at once.
"""

from __future__ import annotations

import logging
import ssl
import time
from typing import Callable
from urllib.parse import quote

log = logging.getLogger(__name__)

#: Seconds between checks that the certificate still names the box (a new LAN address, a renewal due).
RECHECK_SECONDS = 60.0


def server_context(chain: str, key: str) -> ssl.SSLContext:
    """TLS 1.2 or later, Python's default ciphers, the certificate chain and key to serve."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(chain, key)
    return context


def serve_tls(server, context: ssl.SSLContext, recheck: Callable[[], None] | None = None,
              monotonic: Callable[[], float] = time.monotonic) -> None:
    """Make waitress's ``server`` speak TLS with ``context`` on every connection it accepts.

    ``recheck()``, if given, is called at most every :data:`RECHECK_SECONDS` as connections arrive:
    it may load a new certificate into ``context`` (the connections after it get the new one)."""
    plain_accept = server.accept
    checked = [monotonic()]

    def accept():
        pair = plain_accept()
        if pair is None:
            return None
        if recheck is not None and monotonic() - checked[0] >= RECHECK_SECONDS:
            checked[0] = monotonic()
            try:
                recheck()
            except Exception:  # noqa: BLE001 - the certificate in use still serves; say why it was not renewed
                log.exception("the page's certificate could not be renewed")
        conn, addr = pair
        try:
            return context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False), addr
        except (OSError, ValueError):
            conn.close()
            return None

    server.accept = accept
    server.channel_class = type("TLSChannel", (TLSChannel, server.channel_class), {})


class TLSChannel:
    """Mixed in before waitress's channel class: the handshake on the loop, then TLS reads and writes."""

    handshaken = False
    handshake_wants_write = False

    def readable(self):
        return True if not self.handshaken else super().readable()

    def writable(self):  # will_close: waitress's idle timeout, for a handshake never finished too
        return self.handshake_wants_write or self.will_close if not self.handshaken else super().writable()

    def _handshake(self) -> bool:
        try:
            self.socket.do_handshake()
        except ssl.SSLWantReadError:
            self.handshake_wants_write = False
            return False
        except ssl.SSLWantWriteError:
            self.handshake_wants_write = True
            return False
        except OSError as exc:  # a browser that does not trust the certificate (yet) ends here
            log.debug("TLS handshake with %s failed: %s", self.addr, exc)
            self.handle_close()
            return False
        self.handshaken = True
        self.handshake_wants_write = False
        return True

    def handle_read(self):
        if not self.handshaken and not self._handshake():
            return
        while True:
            try:
                data = self.socket.recv(self.adj.recv_bytes)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            except OSError:
                self.handle_close()
                return
            if not data:  # the client closed the connection
                self.handle_close()
                return
            self.last_activity = time.time()
            self.received(data)
            if not self.socket.pending():
                return

    def handle_write(self):
        if not self.handshaken:
            if self.will_close:
                self.handle_close()
            elif self._handshake():
                self.handle_read()  # the first request may have come with the handshake's end
            return
        super().handle_write()

    def send(self, data, do_close=True):
        try:
            return super().send(data, do_close=do_close)
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return 0  # the same bytes are offered again when the socket can take them


def redirect_app(https_port: int, ca_pem: Callable[[], bytes], fallback_host: Callable[[], str | None]):
    """The plain-HTTP answer: the CA certificate at /smsgenie-ca.crt (a shop's first download,
    checked against the panel's fingerprint), and for everything else a redirect to the same
    path on the HTTPS page."""

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "/") or "/"
        if path == "/smsgenie-ca.crt" and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            body = ca_pem()
            start_response("200 OK", [("Content-Type", "application/x-x509-ca-cert"),
                                      ("Content-Disposition", 'attachment; filename="smsgenie-ca.crt"'),
                                      ("Content-Length", str(len(body)))])
            return [body]
        host = _host(environ.get("HTTP_HOST", "")) or fallback_host() or environ.get("SERVER_NAME", "localhost")
        query = environ.get("QUERY_STRING", "")
        path = quote(path.encode("latin-1"), safe="/:@!$&'()*+,;=-._~%")  # WSGI's path is decoded, latin-1
        target = f"https://{host}{'' if https_port == 443 else f':{https_port}'}{path}{'?' + query if query else ''}"
        body = f"This page is at {target}\n".encode()
        start_response("307 Temporary Redirect", [("Location", target), ("Content-Type", "text/plain"),
                                                   ("Content-Length", str(len(body))), ("Cache-Control", "no-store")])
        return [body]

    return app


def _host(header: str) -> str | None:
    """The host a browser asked for, without its port; None if it is not a plain name or address."""
    host = header.strip()
    if host.startswith("["):  # [IPv6]:port
        end = host.find("]")
        return host[:end + 1] if end > 0 and all(c in "0123456789abcdefABCDEF:." for c in host[1:end]) else None
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    ok = host and len(host) <= 253 and all(c.isascii() and (c.isalnum() or c in "-.") for c in host)
    return host if ok else None
