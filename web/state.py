"""Per-request access to the box: a database connection, the signed-in user, and guards."""

from __future__ import annotations

import functools
from urllib.parse import unquote, urlsplit

from flask import Flask, current_app, g, redirect, request, session, url_for

from appliance.accounts import Accounts, User
from appliance.db import Database
from appliance.jobs import Jobs
from appliance.privacy import mask_number
from appliance.sendqueue import SendQueue
from appliance.settings import read_settings


def config():
    return current_app.config["SMSGENIE"]


def clock():
    return current_app.config["SMSGENIE_CLOCK"]


def db() -> Database:
    """This request's connection to the box's database (one per request, closed at its end)."""
    if "db" not in g:
        g.db = Database.in_data_dir(config().data_dir)
    return g.db


def jobs() -> Jobs:
    """The box's long jobs (big lists read or queued), shared by every request of this app."""
    return current_app.extensions["smsgenie_jobs"]


def queue() -> SendQueue:
    if "queue" not in g:
        g.queue = SendQueue(db(), clock())
    return g.queue


def accounts() -> Accounts:
    return Accounts(db(), clock())


#: Seconds between two writes of a session's "last seen" (each is a new cookie).
SEEN_EVERY = 60.0


def current_user() -> User | None:
    """The signed-in user, while the session is valid: the user still exists, has not ended their
    sessions since (logout, a new password or role) and has not been idle past the admin's setting."""
    if "user" not in g:
        g.user = _session_user()
    return g.user


def _session_user() -> User | None:
    uid = session.get("uid")
    if uid is None:
        return None
    now = clock().time()
    idle = float(read_settings(config().data_dir)["session_idle_hours"]) * 3600
    user = accounts().session_user(uid, session.get("epoch"))
    if user is None or now - session.get("seen", 0) > idle:
        end_session()
        return None
    if now - session.get("seen", 0) > SEEN_EVERY:
        session["seen"] = now
    return user


def start_session(user: User) -> None:
    """A fresh session on sign-in (nothing carried over but the chosen language)."""
    lang = session.get("lang")
    session.clear()
    session.update(uid=user.id, epoch=accounts().session_epoch(user.id), seen=clock().time())
    if lang:
        session["lang"] = lang
    g.pop("user", None)


def end_session() -> None:
    """Forget this browser's sign-in (the language stays)."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    g.pop("user", None)


def safe_next(target: str | None) -> str:
    """Where to go after a form: only a path on this site, else the dashboard (never an open redirect).

    A browser reads '//host', '/\\host' and '\\\\host' as another site, and a tab, CR or LF inside can
    split the redirect's header: all of those are refused, as is anything with a scheme or a host - and
    the same once percent-decoded, for whatever decodes it further along."""
    home = url_for("dash.index")
    for form in (target or "", unquote(target or "")):
        if not form.startswith("/") or form[1:2] in ("/", "\\") or "\\" in form:
            return home
        if any(ord(c) < 0x21 or ord(c) == 0x7F for c in form):
            return home
        parts = urlsplit(form)
        if parts.scheme or parts.netloc:
            return home
    return target


def login_required(view):
    """Every page but login and set-up: no session, no page."""
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if current_user() is None:
            if not accounts().any_users():
                return redirect(url_for("auth.setup"))
            return redirect(url_for("auth.login", next=request.full_path))
        return view(*args, **kwargs)
    return wrapped


def admins_only():
    """The answer to staff who reach what only an admin may do (a page, or one action on a page)."""
    from flask import render_template  # noqa: PLC0415

    from web.i18n import gettext  # noqa: PLC0415 - web.i18n reads this module
    return render_template("error.html", title=gettext("Admins only"),
                           message=gettext("This page is for the shop's admin.")), 403


def admin_required(view):
    @functools.wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user().is_admin:
            return admins_only()
        return view(*args, **kwargs)
    return wrapped


def may_steer(created_by: str | None = None) -> bool:
    """May the signed-in user pause the whole box (``created_by`` None), or pause, resume or cancel the list
    ``created_by`` queued? An admin may; staff only their own lists, unless the admin allowed them all."""
    user = current_user()
    if user is None:
        return False
    if user.is_admin or read_settings(config().data_dir)["staff_may_steer"]:
        return True
    return created_by is not None and created_by == f"user:{user.id}"


def show_number(number: str) -> str:
    """Whole for an admin who asked (?full=1), masked for everyone else."""
    user = current_user()
    if user is not None and user.is_admin and request.args.get("full") == "1":
        return number
    return mask_number(number) if number.lstrip("+").isdigit() else number


def when(epoch: float | None) -> str:
    """Seconds since the epoch as a date and time in the page's language."""
    if not epoch:
        return ""
    from datetime import datetime  # noqa: PLC0415

    from flask_babel import format_datetime  # noqa: PLC0415
    return format_datetime(datetime.fromtimestamp(epoch), "short")


def who(by: str | None) -> str:
    """Who queued or decided ("user:3", "api:2", "cli", "panel", "demo") as a person reads it."""
    from appliance.audit import who as named  # noqa: PLC0415
    from web.i18n import gettext as _  # noqa: PLC0415

    places = {"cli": _("the box's command line"), "panel": _("the counter panel"), "demo": _("the demo")}
    if not by:
        return ""
    if by in places:
        return places[by]
    kind, _sep, rest = named(db().conn, by).partition(" ")
    if not rest:
        return by
    return rest if kind.startswith("user:") else _("API token %(name)s", name=rest)


def init_app(app: Flask) -> None:
    @app.teardown_appcontext
    def close_db(exc):
        g.pop("queue", None)
        conn = g.pop("db", None)
        if conn is not None:
            conn.close()

    app.jinja_env.filters["number"] = show_number
    app.jinja_env.filters["when"] = when
    app.jinja_env.filters["who"] = who
    app.jinja_env.globals["current_user"] = current_user
    app.jinja_env.globals["may_steer"] = may_steer
