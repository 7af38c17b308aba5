"""The admin's pages: settings, the shop's forbidden words, users, API tokens, the record export, updates."""

from __future__ import annotations

import secrets
import tempfile
from datetime import datetime
from importlib.metadata import version as package_version

from flask import Blueprint, redirect, render_template, request, send_file, session, url_for

from appliance import boxkey, export, shop
from appliance import update as updates
from appliance.accounts import DEFAULT_SCOPES, SCOPES, AccountError
from appliance.audit import day_span
from appliance.errors import ExportRangeError, KeywordListError, SettingsError, SmsGenieError
from appliance.files import write_new
from appliance.keywords import KeywordStore, verify_list
from appliance.policy import caps_for
from appliance.settings import CAP_FIELDS, read_settings, save_caps, save_setting
from appliance.text import from_json
from appliance.vendor import parse_public_key
from web.credit import this_device
from web.i18n import gettext, translate
from web.state import accounts, admin_required, clock, config, current_user, db, queue

bp = Blueprint("admin", __name__, url_prefix="/admin")
#: Bytes of a vendor keyword list an upload may hold (100,000 words of a few characters fit easily).
MAX_KEYWORD_LIST = 4 * 2**20


def _render(error=None, done=None, new_token=None, status=200):
    cfg = config()
    values = read_settings(cfg.data_dir)
    fingerprint = parse_public_key(cfg.vendor.public_key)[1] if cfg.vendor.public_key else None
    from appliance.device import format_device_id  # noqa: PLC0415
    waiting = updates.pending(cfg.data_dir)
    result = updates.last_result(cfg.data_dir)
    if result:  # the installer's words (a Text kept as JSON) in the page's language
        result = {**result, "message": translate(from_json(result.get("message")))}
    return render_template("admin.html", settings=values, error=error, done=done, new_token=new_token,
                           version=package_version("smsgenie"), update_result=result,
                           update_waiting_minutes=None if waiting is None else
                           int((datetime.now().timestamp() - waiting.stat().st_mtime) // 60),
                           keywords=KeywordStore(db(), clock()).all(), users=accounts().all(),
                           vendor_list=KeywordStore(db(), clock()).vendor_list(),
                           tokens=accounts().tokens(), scopes=SCOPES, default_scopes=DEFAULT_SCOPES,
                           device=format_device_id(this_device()), fingerprint=fingerprint,
                           box_key=boxkey.load(cfg.data_dir), shop=shop.read(db().conn),
                           modems=[(m, caps_for(m), values["sim_caps"].get(m.label, {}), CAP_FIELDS)
                                   for m in cfg.modems]), status


@bp.route("/")
@admin_required
def page():
    return _render()


@bp.route("/settings", methods=["POST"])
@admin_required
def settings():
    try:
        for key in ("signature", "quiet_hours", "default_region", "audit_retention_days", "low_credit_alert",
                    "test_number", "panel_language", "session_idle_hours", "staff_may_steer", "approval",
                    "consent_gate", "unsubscribe_footer", "consent_question", "consent_days", "signup_word",
                    "auto_replies", "webhook_url", "webhook_secret"):
            if key == "webhook_secret" and not request.form.get(key):
                continue  # empty: the secret stays as it is (it is never shown again)
            if key in request.form:
                save_setting(config().data_dir, key, request.form.getlist(key)[-1])  # a checkbox: its last
    except SettingsError as exc:
        return _render(error=translate(exc), status=400)
    return _render(done=gettext("Settings saved."))


@bp.route("/shop", methods=["POST"])
@admin_required
def shop_identity():
    try:
        shop.save(db(), request.form.get("shop_name", ""), request.form.get("shop_licence", ""))
    except SettingsError as exc:
        return _render(error=translate(exc), status=400)
    return _render(done=gettext("Settings saved."))


@bp.route("/caps/<label>", methods=["POST"])
@admin_required
def caps(label):
    """One SIM's caps; an empty field goes back to the config file's or the carrier's default."""
    if label not in {m.label for m in config().modems}:
        return _render(error=gettext("There is no modem called %(label)s.", label=label), status=404)
    try:
        save_caps(config().data_dir, label, {name: request.form.get(name, "") for name in CAP_FIELDS})
    except SettingsError as exc:
        return _render(error=translate(exc), status=400)
    return _render(done=gettext("Caps of %(label)s saved; the box uses them within a minute.", label=label))


@bp.route("/keywords", methods=["POST"])
@admin_required
def keywords():
    store = KeywordStore(db(), clock())
    try:
        if request.form.get("action") == "import":
            return _import_vendor_list(store)
        if request.form.get("action") == "remove":
            store.remove_local(request.form.get("word", ""))
        else:
            words = [w for w in request.form.get("words", "").split() if w]
            store.add_local(words, request.form.get("note", ""))
    except KeywordListError as exc:
        return _render(error=translate(exc), status=400)
    return redirect(url_for("admin.page"))


def _import_vendor_list(store: KeywordStore):
    """The vendor's signed list, uploaded: checked against the vendor key, taken only if newer."""
    upload = request.files.get("list")
    if upload is None or not upload.filename:
        return _render(error=gettext("Choose the vendor's signed keyword list file."), status=400)
    if not config().vendor.public_key:
        return _render(error=gettext("This box has no vendor key in its config; ask the vendor's technician."),
                       status=400)
    try:
        text = upload.read(MAX_KEYWORD_LIST + 1).decode("utf-8")
    except UnicodeDecodeError:
        return _render(error=gettext("That file is not a keyword list (not UTF-8 text)."), status=400)
    signed = verify_list(text, parse_public_key(config().vendor.public_key)[0])
    if not store.replace_vendor(signed):
        return _render(done=gettext("The box has the vendor's list version %(v)s already: nothing changed.",
                                    v=signed.version))
    return _render(done=gettext("Imported the vendor's list version %(v)s: %(n)s words.", v=signed.version,
                                n=len(signed.words)))


@bp.route("/users", methods=["POST"])
@admin_required
def users():
    acc = accounts()
    action = request.form.get("action")
    try:
        if action == "create":
            acc.create(request.form.get("username", ""), request.form.get("password", ""),
                       request.form.get("role", "staff"))
        elif action == "delete":
            uid = int(request.form.get("id", "0"))
            if uid == current_user().id:
                raise AccountError(gettext("You cannot delete yourself."))
            acc.delete(uid)
        elif action == "reset":
            acc.set_password(int(request.form.get("id", "0")), request.form.get("password", ""))
        elif action == "role":
            uid = int(request.form.get("id", "0"))
            if uid == current_user().id:
                raise AccountError(gettext("Ask another admin to change your own role."))
            acc.set_role(uid, request.form.get("role", ""))
    except (AccountError, ValueError) as exc:
        return _render(error=translate(exc), status=400)
    return redirect(url_for("admin.page"))


@bp.route("/tokens", methods=["POST"])
@admin_required
def tokens():
    acc = accounts()
    try:
        if request.form.get("action") == "revoke":
            acc.revoke_token(int(request.form.get("id", "0")))
        else:
            token = acc.new_token(request.form.get("name", ""), request.form.getlist("scope") or DEFAULT_SCOPES)
            return _render(new_token=token)
    except (AccountError, ValueError) as exc:
        return _render(error=translate(exc), status=400)
    return redirect(url_for("admin.page"))


@bp.route("/audit.zip")
@admin_required
def audit_export():
    """The record between two days for a lawful query: the signed export (appliance/export.py), as the CLI
    makes it. Written to a temporary file in the data dir (the record may be large), then sent."""
    try:
        start = datetime.strptime(request.args.get("from", ""), "%Y-%m-%d")
        last = datetime.strptime(request.args.get("to", ""), "%Y-%m-%d")
    except ValueError:
        return _render(error=gettext("Give the first and last day of the export."), status=400)
    try:
        span = export.Range(f"{start:%Y-%m-%d}", f"{last:%Y-%m-%d}", *day_span(start.date(), last.date()))
    except ExportRangeError:
        return _render(error=gettext("The last day of the export is before the first."), status=400)
    f = tempfile.TemporaryFile(dir=config().data_dir)  # never on a RAM disk, gone when sent
    export.export_box(f, queue(), config().data_dir, span)
    f.seek(0)
    session["last_audit_export"] = f"{start:%Y-%m-%d}..{last:%Y-%m-%d}"
    return send_file(f, mimetype="application/zip", as_attachment=True,
                     download_name=f"record-{start:%Y%m%d}-{last:%Y%m%d}.zip")


@bp.route("/update", methods=["POST"])
@admin_required
def update():
    """Take a vendor-signed update bundle: checked here at once, installed by root's smsgenie-update.service."""
    cfg = config()
    upload = request.files.get("bundle")
    if upload is None or not upload.filename:
        return _render(error=gettext("Choose the update file from the vendor (.bundle)."), status=400)
    if not cfg.vendor.public_key:
        return _render(error=gettext("This box has no vendor key in its config; ask the vendor's technician."),
                       status=400)
    path = updates.updates_dir(cfg.data_dir) / f"upload-{secrets.token_hex(8)}.part"
    write_new(path, upload.save)
    try:
        bundle = updates.stage_upload(cfg.data_dir, path, parse_public_key(cfg.vendor.public_key)[0])
    except SmsGenieError as exc:
        return _render(error=gettext("Update refused: %(why)s", why=translate(exc)), status=400)
    finally:
        path.unlink(missing_ok=True)
    return _render(done=gettext("SMS Genie %(version)s is signed by your vendor and is being installed; the box "
                                "restarts by itself in a minute or two. Sending goes on after.",
                                version=bundle.version))
