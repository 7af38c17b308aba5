"""The LAN web page: a thin Flask app over ``appliance``.

``create_app(config)`` builds it (application factory); every part of the
page is a blueprint in a module of its own. It never talks to the serial
port: it reads and writes the same database as the daemon, through the
appliance's classes, with one connection per request.

Security: no default password (first-run set-up with the PIN shown on the
box), scrypt-hashed passwords, lock-out after repeated failures, CSRF on
every form (Flask-WTF), a session required on every page but login and
set-up, HttpOnly + SameSite cookies, numbers masked unless an admin asks.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.routing import IntegerConverter

from appliance.clock import Clock, SystemClock
from appliance.config import Config
from appliance.db import ensure_data_dir
from appliance.errors import DatabaseDamaged, StorageFull
from appliance.jobs import Jobs
from appliance.ui.link import PanelLink
from appliance.update import MAX_BUNDLE_BYTES
from web import i18n

log = logging.getLogger(__name__)
csrf = CSRFProtect()
#: The page's own files only: no inline script or style, no framing, forms post only here.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def _secret_key(data_dir: Path) -> bytes:
    """The session-signing key: made once, kept in the data dir, readable by the service user only."""
    path = data_dir / "web.secret"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key


class IdConverter(IntegerConverter):
    """An id in a URL: a whole number the database can hold (past 2^63-1, the page says "not found")."""

    def __init__(self, url_map, *args, **kwargs):
        super().__init__(url_map, max=2**63 - 1)


def create_app(config: Config, *, clock: Clock | None = None, testing: bool = False,
               panel: PanelLink | None = None, jobs: Jobs | None = None) -> Flask:
    """``panel``: the counter panel run in this process, if any, mirrored on /device. ``jobs``: where long
    work (big lists) runs; by default on threads of this process (the running box gives worker processes)."""
    data_dir = ensure_data_dir(config.data_dir)
    app = Flask(__name__)
    app.url_map.converters["id"] = IdConverter
    app.config.update(
        SECRET_KEY=_secret_key(data_dir),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.web.https,  # over HTTPS, the cookie never travels in the clear
        MAX_CONTENT_LENGTH=config.web.max_upload_mb * 1024 * 1024,
        TESTING=testing,
        SMSGENIE=config,
        SMSGENIE_CLOCK=clock or SystemClock(),
        UPLOAD_DIR=str(data_dir / "uploads"),
        SMSGENIE_PANEL=panel,
    )
    (data_dir / "uploads").mkdir(mode=0o700, exist_ok=True)
    app.extensions["smsgenie_jobs"] = jobs or Jobs()

    @app.before_request  # before the CSRF check, which reads the form and so applies the limit
    def _bundle_upload_limit():
        if request.endpoint == "admin.update":  # an update bundle carries every wheel: larger than any list
            request.max_content_length = MAX_BUNDLE_BYTES

    csrf.init_app(app)
    i18n.init_app(app, data_dir)

    from web import (  # noqa: PLC0415
        admin,
        api,
        api_customers,
        api_shop,
        auth,
        credit,
        customers,
        dashboard,
        device,
        history,
        recurring,
        saved,
        send,
        state,
    )

    state.init_app(app)
    for bp in (auth.bp, dashboard.bp, send.bp, history.bp, customers.bp, recurring.bp, credit.bp, admin.bp, device.bp,
               saved.bp, api.bp, api_customers.bp, api_shop.bp):
        app.register_blueprint(bp)
    csrf.exempt(api.bp)  # the API authenticates each call with a token, not a cookie
    csrf.exempt(api_customers.bp)
    csrf.exempt(api_shop.bp)

    _answers(app, config)
    return app


def _answers(app: Flask, config: Config) -> None:
    """What every answer carries (security headers), and the pages for errors a person can act on."""

    @app.after_request
    def _security_headers(response):
        """No inline script runs, no other site frames the page, nothing with customers' numbers is cached."""
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return render_template("error.html", title=i18n.gettext("The form expired"),
                               message=i18n.gettext("The page was open too long or came from elsewhere. "
                                                    "Go back, reload it and try again.")), 400

    @app.errorhandler(413)
    def too_large(exc):
        return render_template("error.html", title=i18n.gettext("File too large"),
                               message=i18n.gettext("Send lists can be at most %(mb)d MB. Split the list, or "
                                                    "save it as CSV, which is smaller.",
                                                    mb=config.web.max_upload_mb)), 413

    @app.errorhandler(StorageFull)
    def storage_full(exc):
        return render_template("error.html", title=i18n.gettext("The box's storage is full"),
                               message=i18n.gettext("Nothing new can be saved until there is room; nothing "
                                                    "already saved is lost. Ask the technician to free space.")
                               + f" ({i18n.translate(exc)})"), 507

    @app.errorhandler(DatabaseDamaged)
    def damaged(exc):
        return render_template("error.html", title=i18n.gettext("The box's data is damaged"),
                               message=i18n.gettext("Ask the technician to restore the last backup.")
                               + f" ({exc})"), 503

    @app.errorhandler(404)
    def not_found(exc):
        if request.path.startswith("/api/"):
            return jsonify(error="no such resource"), 404
        return render_template("error.html", title=i18n.gettext("Not found"),
                               message=i18n.gettext("There is no such page.")), 404
