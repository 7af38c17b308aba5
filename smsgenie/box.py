"""A running box, wired: config -> database -> daemon (modem workers, counter panel) -> the page.

``smsgenie run`` and the demo build one :class:`RunningBox` and run it; it
is the one place that knows all the rooms. The page gets only what it needs
from the daemon - the counter panel's :class:`~appliance.ui.link.PanelLink`.
"""

from __future__ import annotations

import logging

from appliance.accounts import Accounts
from appliance.clock import Clock, SystemClock
from appliance.config import Config
from appliance.daemon import Daemon
from appliance.db import Database
from web.serve import WebServer, check_listen

log = logging.getLogger(__name__)


def first_run_pin(config: Config, clock: Clock) -> str | None:
    """A fresh set-up PIN while the box has no admin (shown on the panel and by 'smsgenie setup-pin'), else None."""
    db = Database.in_data_dir(config.data_dir)
    try:
        accounts = Accounts(db, clock)
        return None if accounts.any_users() else accounts.new_setup_pin()
    finally:
        db.close()


class RunningBox:
    """The daemon and, when ``[web] listen`` is set, the page beside it in this process.

    Made in an order that fails early: the page's address is checked before
    anything starts, so a port in use is one clear error, not a half-started box.
    ``daemon_options`` go to :class:`~appliance.daemon.Daemon` (a notifier, a test's clock or pins).
    """

    def __init__(self, config: Config, *, clock: Clock | None = None, **daemon_options):
        self.config = config
        clock = clock or SystemClock()
        if config.web.listen:
            check_listen(config.web.listen, config.source)
        if config.web.redirect_from:
            check_listen(config.web.redirect_from, config.source, "redirect_from")
        self.setup_pin = first_run_pin(config, clock) if config.web.listen else None
        self.daemon = Daemon(config, clock=clock, **daemon_options)
        self.web: WebServer | None = None
        if config.web.listen:
            try:
                self.web = WebServer(config, clock=clock, panel=self.daemon.panel_link(),
                                     on_failure=self.daemon.fail)
            except BaseException:
                self.daemon.close()
                raise

    @property
    def url(self) -> str | None:
        return self.web.url if self.web is not None else None

    def run(self) -> None:
        """Serve the page and send until :meth:`stop`; the page closes when sending stops, however it stops."""
        try:
            if self.web is not None:
                self.web.start()
            self.daemon.run()
        finally:
            if self.web is not None:
                self.web.close()

    def stop(self) -> None:
        """Ask the daemon to finish the message in hand and return. Safe from a signal handler."""
        self.daemon.stop()
