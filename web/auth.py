"""Set-up (the first admin, with the PIN shown on the box), login, logout, password, language."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for

from appliance import shop
from appliance.accounts import AccountError, LoginRefused
from appliance.errors import SettingsError
from appliance.settings import check_setting, read_settings, save_setting
from web.i18n import LANGUAGES, gettext, translate
from web.state import accounts, config, current_user, db, end_session, login_required, safe_next, start_session

bp = Blueprint("auth", __name__)


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
                identity = shop.check(request.form.get("shop_name", ""), request.form.get("shop_licence", ""))
                signature = check_setting("signature", shop.signature_for(request.form.get("signature", ""),
                                                                          identity[0]))
                user = acc.setup_admin(request.form.get("pin", ""), request.form.get("username", ""),
                                       request.form.get("password", ""))
            except (AccountError, SettingsError) as exc:
                error = translate(exc)
            else:
                shop.save(db(), *identity)
                save_setting(config().data_dir, "signature", signature)
                start_session(user)
                return redirect(url_for("dash.index"))
    return render_template("setup.html", error=error, shop=shop.read(db().conn),
                           signature=read_settings(config().data_dir)["signature"]), (400 if error else 200)


@bp.route("/login", methods=["GET", "POST"])
def login():
    acc = accounts()
    if not acc.any_users():
        return redirect(url_for("auth.setup"))
    error = None
    if request.method == "POST":
        try:
            user = acc.login(request.form.get("username", ""), request.form.get("password", ""),
                             address=request.remote_addr or "unknown")
        except LoginRefused as exc:
            error = translate(exc)
        else:
            start_session(user)
            return redirect(safe_next(request.args.get("next")))
    return render_template("login.html", error=error), (401 if error else 200)


@bp.route("/logout", methods=["POST"])
def logout():
    """Sign out, on every device: a shared counter PC must not stay signed in elsewhere either."""
    user = current_user()
    if user is not None:
        accounts().end_sessions(user.id)
    end_session()
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
                user = current_user()
                accounts().change_password(user.id, request.form.get("old", ""), request.form.get("new", ""))
                start_session(user)  # the other devices are signed out; this one goes on
                done = gettext("Password changed.")
            except AccountError as exc:
                error = translate(exc)
    return render_template("password.html", error=error, done=done), (400 if error else 200)


@bp.route("/lang/<code>")
def language(code: str):
    if code in LANGUAGES:
        session["lang"] = code
    return redirect(safe_next(request.args.get("next")))
