"""Set-up (the first admin, with the PIN shown on the box), login, logout, password, language."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for

from appliance.accounts import AccountError, LoginRefused
from web.i18n import LANGUAGES, gettext
from web.state import accounts, current_user, login_required

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only redirect within this site (never to another host)."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("dash.index")


def _new_session(user_id: int) -> None:
    """A fresh session on sign-in (nothing carried over but the chosen language)."""
    lang = session.get("lang")
    session.clear()
    session["uid"] = user_id
    if lang:
        session["lang"] = lang


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    acc = accounts()
    if acc.any_users():
        return redirect(url_for("auth.login"))
    error = None
    if request.method == "POST":
        if request.form.get("password") != request.form.get("password2"):
            error = gettext("The two passwords differ.")
        else:
            try:
                user = acc.setup_admin(request.form.get("pin", ""), request.form.get("username", ""),
                                       request.form.get("password", ""))
            except AccountError as exc:
                error = str(exc)
            else:
                _new_session(user.id)
                return redirect(url_for("dash.index"))
    return render_template("setup.html", error=error), (400 if error else 200)


@bp.route("/login", methods=["GET", "POST"])
def login():
    acc = accounts()
    if not acc.any_users():
        return redirect(url_for("auth.setup"))
    error = None
    if request.method == "POST":
        try:
            user = acc.login(request.form.get("username", ""), request.form.get("password", ""))
        except LoginRefused as exc:
            error = str(exc)
        else:
            _new_session(user.id)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error), (401 if error else 200)


@bp.route("/logout", methods=["POST"])
def logout():
    session.pop("uid", None)
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password():
    error = done = None
    if request.method == "POST":
        if request.form.get("new") != request.form.get("new2"):
            error = gettext("The two new passwords differ.")
        else:
            try:
                accounts().change_password(current_user().id, request.form.get("old", ""),
                                           request.form.get("new", ""))
                done = gettext("Password changed.")
            except AccountError as exc:
                error = str(exc)
    return render_template("password.html", error=error, done=done), (400 if error else 200)


@bp.route("/lang/<code>")
def language(code: str):
    if code in LANGUAGES:
        session["lang"] = code
    return redirect(_safe_next(request.args.get("next")))
