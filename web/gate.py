"""What the server refuses before the page sees a byte of it: bodies over their limit, too many connections.

waitress reads a request's whole body before the page runs, so a limit
checked in the page comes too late: a gigabyte sent by anyone on the shop's
Wi-Fi would already be on the box's card. Here each request gets its limit
as soon as its first line and headers are in - by what it is for and who
sends it - and a body over it is answered "413" unread (waitress checks a
declared length at once, and a chunked body as it arrives):

- no signed-in session: :data:`ANONYMOUS_BODY` (a login or set-up form);
- the API: :data:`API_BODY` (a thousand messages fit);
- a signed-in session: ``[web] max_upload_mb`` (a send list), or the update
  bundle's own limit on its one form.

"Signed in" here means a session cookie this box signed; whether the
session is still valid is the page's to decide. And one address may hold
at most :data:`PER_CLIENT` connections at a time: one machine on the LAN
cannot take all of the box's.
"""

from __future__ import annotations

import copy
from http.cookies import CookieError, SimpleCookie
from typing import Callable

from flask import Flask
from itsdangerous import BadSignature
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser

from appliance.update import MAX_BUNDLE_BYTES

ANONYMOUS_BODY = 64 * 1024
API_BODY = 1024 * 1024
PER_CLIENT = 20
UPDATE_PATH = "/admin/update"


def body_limits(app: Flask, max_upload_mb: int) -> Callable[[str, dict], int]:
    """The limit for a request to ``path`` with ``headers`` (waitress's: upper-case, '_' for '-')."""
    serializer = app.session_interface.get_signing_serializer(app)
    cookie_name = app.config["SESSION_COOKIE_NAME"]

    def signed_in(headers: dict) -> bool:
        try:
            morsel = SimpleCookie(headers.get("COOKIE", "")).get(cookie_name)
            return morsel is not None and "uid" in serializer.loads(morsel.value)
        except (CookieError, BadSignature, ValueError, TypeError):
            return False

    def limit(path: str, headers: dict) -> int:
        if path.startswith("/api/"):
            return API_BODY
        if not signed_in(headers):
            return ANONYMOUS_BODY
        return MAX_BUNDLE_BYTES if path == UPDATE_PATH else max_upload_mb * 1024 * 1024

    return limit


def guard(server, limit: Callable[[str, dict], int], per_client: int = PER_CLIENT) -> None:
    """Make waitress's ``server`` refuse over-limit bodies unread and a client's connections past ``per_client``."""

    class Parser(HTTPRequestParser):
        def parse_header(self, header_plus):
            super().parse_header(header_plus)
            allowed = limit(self.path or "", self.headers)
            if allowed != self.adj.max_request_body_size:
                self.adj = copy.copy(self.adj)  # this request's limit; the server's stays as it was
                self.adj.max_request_body_size = allowed

    class Channel(HTTPChannel):
        parser_class = Parser

    accept = server.handle_accept

    def handle_accept():
        before = set(server.active_channels)
        accept()
        for fd in set(server.active_channels) - before:
            channel = server.active_channels[fd]
            address = channel.addr[0] if isinstance(channel.addr, tuple) else channel.addr
            same = sum(1 for c in list(server.active_channels.values())
                       if (c.addr[0] if isinstance(c.addr, tuple) else c.addr) == address)
            if same > per_client:
                channel.close()

    server.channel_class = Channel
    server.handle_accept = handle_accept
