"""Serving the page with waitress (a production WSGI server) beside the daemon."""

from __future__ import annotations

import logging
import threading

from waitress.server import create_server

from appliance.accounts import Accounts
from appliance.clock import Clock, SystemClock
from appliance.config import Config
from appliance.db import Database
from web import create_app

log = logging.getLogger(__name__)


class WebServer:
    """The LAN page on ``config.web.listen``, in a background thread; :meth:`close` stops it."""

    def __init__(self, config: Config, *, clock: Clock | None = None):
        host, _, port = config.web.listen.rpartition(":")
        self.app = create_app(config, clock=clock)
        self.server = create_server(self.app, host=host or "0.0.0.0", port=int(port), threads=8,
                                    channel_timeout=30, ident="smsgenie")
        self.url = f"http://{'127.0.0.1' if host in ('', '0.0.0.0') else host}:{self.server.effective_port}"
        self.setup_pin = None
        db = Database.in_data_dir(config.data_dir)
        try:
            accounts = Accounts(db, clock or SystemClock())
            if not accounts.any_users():
                # First run: a fresh PIN each start until the admin exists; only its hash is kept.
                self.setup_pin = accounts.new_setup_pin()
                log.warning("first run: open %s and set up the admin with the set-up PIN %s", self.url,
                            self.setup_pin)
        finally:
            db.close()
        self._thread = threading.Thread(target=self.server.run, name="web", daemon=True)

    def attach(self, box) -> "WebServer":
        """Mirror ``box``'s (the daemon's) counter panel on /device."""
        self.app.config["SMSGENIE_BOX"] = box
        return self

    def start(self) -> "WebServer":
        self._thread.start()
        log.info("web page on %s", self.url)
        return self

    def close(self) -> None:
        self.server.close()
        self._thread.join(timeout=5)
