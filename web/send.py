"""Upload a send list, see exactly what will go out and what it costs, then send."""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from pathlib import Path

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from appliance.errors import SendListError, TemplateError
from appliance.keywords import KeywordStore
from appliance.optout import OptOuts
from appliance.preview import prepare
from appliance.sendlist import open_table
from appliance.sendqueue import KINDS, MARKETING
from appliance.settings import read_settings
from appliance.template import Template
from web.i18n import gettext
from web.state import config, login_required, queue

bp = Blueprint("send", __name__)
ALLOWED = (".csv", ".txt", ".xlsx")


def _upload_path(token: str) -> Path:
    if not token or not all(c.isalnum() or c in "-_" for c in token):
        raise SendListError(gettext("The upload has expired; upload the list again."))
    return Path(current_app.config["UPLOAD_DIR"]) / token


def _box() -> dict:
    return read_settings(config().data_dir)


def _preview(path: Path, name: str, text: str):
    q = queue()
    box = _box()
    template = Template(text, box["signature"])
    with open_table(path, name=name) as table:
        return template, prepare(table, template, region=box["default_region"],
                                 screen=KeywordStore(q.db, q.clock).screen(),
                                 opted_out=OptOuts(q.db, q.clock).numbers(), balance=q.ledger.balance())


def _form_error(message: str, status: int = 400):
    return render_template("send.html", error=message, form=request.form, kinds=KINDS), status


@bp.route("/send", methods=["GET"])
@login_required
def form():
    return render_template("send.html", error=None, form={}, kinds=KINDS)


@bp.route("/send", methods=["POST"])
@login_required
def upload():
    upload = request.files.get("file")
    text = request.form.get("text", "")
    if upload is None or not upload.filename:
        return _form_error(gettext("Choose the send list file (CSV or Excel .xlsx)."))
    name = os.path.basename(upload.filename)
    if not name.lower().endswith(ALLOWED):
        return _form_error(gettext("%(name)s is not a CSV or Excel (.xlsx) file.", name=name))
    token = secrets.token_urlsafe(16)
    path = _upload_path(token)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        upload.save(f)
    try:
        template, preview = _preview(path, name, text)
    except (SendListError, TemplateError) as exc:
        path.unlink(missing_ok=True)
        return _form_error(str(exc))
    return render_template("preview.html", p=preview, token=token, name=name, text=text,
                           kind=request.form.get("kind", MARKETING), start_at=request.form.get("start_at", ""))


@bp.route("/send/confirm", methods=["POST"])
@login_required
def confirm():
    try:
        path = _upload_path(request.form.get("token", ""))
        if not path.exists():
            raise SendListError(gettext("The upload has expired; upload the list again."))
        kind = request.form.get("kind", MARKETING)
        if kind not in KINDS:
            raise SendListError(gettext("Choose marketing or transactional."))
        start_text = request.form.get("start_at", "").strip()
        start_at = None
        if start_text:
            try:
                start_at = datetime.strptime(start_text, "%Y-%m-%dT%H:%M").timestamp()
            except ValueError:
                raise SendListError(gettext("The start time is not a date and time.")) from None
        name = request.form.get("name", "list")
        template, preview = _preview(path, name, request.form.get("text", ""))
    except (SendListError, TemplateError) as exc:
        return _form_error(str(exc))
    if not preview.accepted:
        return _form_error(gettext("No row of this list can be sent."))
    q = queue()
    cfg = config()
    list_id = q.create_list(name, cfg.service_code, template.text, kind=kind, start_at=start_at)
    q.enqueue_many(list_id, ((a.recipient, a.plan) for a in preview.accepted), cfg.service_code)
    path.unlink(missing_ok=True)
    return redirect(url_for("history.list_detail", list_id=list_id, queued=len(preview.accepted)))
