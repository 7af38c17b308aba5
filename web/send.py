"""Upload a send list, see exactly what will go out and what it costs, then send.

The checks and the queueing are the domain's (appliance/intake.py), the same
as for ``smsgenie send`` and the API; this module only carries the upload
between the two steps.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from pathlib import Path

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from appliance.errors import AlreadyQueued, IntakeError, SendListError, ServiceCodeMissing, TemplateError
from appliance.intake import Intake
from appliance.messages import KINDS, MARKETING
from web.i18n import gettext
from web.state import clock, config, current_user, db, login_required

bp = Blueprint("send", __name__)
ALLOWED = (".csv", ".txt", ".xlsx")


def _upload_path(token: str) -> Path:
    if not token or not all(c.isalnum() or c in "-_" for c in token):
        raise SendListError(gettext("The upload has expired; upload the list again."))
    return Path(current_app.config["UPLOAD_DIR"]) / token


def _intake() -> Intake:
    return Intake(db(), clock(), config())


def _start_at(intake: Intake, text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        start_at = datetime.strptime(text, "%Y-%m-%dT%H:%M").timestamp()
    except ValueError:
        raise SendListError(gettext("The start time is not a date and time.")) from None
    return intake.check_start(start_at)


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
    intake = _intake()
    try:
        _start_at(intake, request.form.get("start_at", ""))
        checked = intake.check_file(path, text, name=name)
    except (SendListError, TemplateError, IntakeError) as exc:
        path.unlink(missing_ok=True)
        return _form_error(str(exc))
    return render_template("preview.html", p=checked.preview, token=token, name=name, text=text,
                           kind=request.form.get("kind", MARKETING), start_at=request.form.get("start_at", ""))


def _already_sent(list_id: int | None):
    """The second of two confirms (a double click, two tabs, the browser's resubmit): nothing queued again."""
    return render_template("error.html", title=gettext("Already sent"),
                           message=gettext("This list was already sent; it is not queued a second time."),
                           link=url_for("history.list_detail", list_id=list_id) if list_id else None,
                           link_text=gettext("See the list")), 409


@bp.route("/send/confirm", methods=["POST"])
@login_required
def confirm():
    try:
        token = request.form.get("token", "")
        path = _upload_path(token)
        key = f"upload:{token}"
        intake = _intake()
        if (listed := intake.queued_for(key)) is not None:
            return _already_sent(listed)
        if not path.exists():
            raise SendListError(gettext("The upload has expired; upload the list again."))
        kind = request.form.get("kind", MARKETING)
        if kind not in KINDS:
            raise SendListError(gettext("Choose marketing or transactional."))
        start_at = _start_at(intake, request.form.get("start_at", ""))
        queued, _ = intake.queue_file(path, request.form.get("text", ""), name=request.form.get("name", "list"),
                                      kind=kind, start_at=start_at, key=key, by=f"user:{current_user().id}")
        if queued is None:
            raise SendListError(gettext("No row of this list can be sent."))
    except AlreadyQueued as exc:
        return _already_sent(exc.list_id)
    except (SendListError, TemplateError, IntakeError, ServiceCodeMissing) as exc:
        return _form_error(str(exc))
    path.unlink(missing_ok=True)
    return redirect(url_for("history.list_detail", list_id=queued.list_id, queued=queued.count))
