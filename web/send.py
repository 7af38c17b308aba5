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

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for

from appliance.db import Database
from appliance.errors import AlreadyQueued, DatabaseDamaged, IntakeError, SendListError, StorageFull
from appliance.files import write_new
from appliance.intake import Intake
from appliance.jobs import Job, Progress
from appliance.messages import KINDS, MARKETING
from appliance.preview import Preview
from appliance.saved import SavedTemplates
from appliance.sendlist import count_rows
from appliance.settings import read_settings
from web.i18n import gettext, translate
from web.saved import saved_text
from web.state import clock, config, current_user, db, jobs, login_required

bp = Blueprint("send", __name__)
ALLOWED = (".csv", ".txt", ".xlsx")
#: Seconds a request waits for its list to be read or queued before it answers with the progress page instead.
WAIT_SECONDS = 1.0


def upload_path(token: str, prefix: str = "") -> Path:
    """Where an upload waiting for its confirm is kept (``prefix``: "book-" for a customer file); a token
    that is not one of ours is an expired upload, never a path."""
    if not token or not all(c.isalnum() or c in "-_" for c in token):
        raise SendListError(gettext("The upload has expired; upload the list again."))
    return Path(current_app.config["UPLOAD_DIR"]) / (prefix + token)


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
    return render_template("send.html", error=message, form=request.form, kinds=KINDS,
                           saved=SavedTemplates(db(), clock()).all()), status


@bp.route("/send", methods=["GET"])
@login_required
def form():
    return render_template("send.html", error=None, form={"text": saved_text(request.args.get("template"))},
                           kinds=KINDS, saved=SavedTemplates(db(), clock()).all())


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
    try:
        _start_at(_intake(), request.form.get("start_at", ""))
        _intake().require_marketing_basics(request.form.get("kind", MARKETING), read_settings(config().data_dir))
    except (SendListError, IntakeError) as exc:
        return _form_error(translate(exc))
    token = secrets.token_urlsafe(16)
    path = upload_path(token)
    write_new(path, upload.save)
    kind = request.form.get("kind", MARKETING)
    jobs().start(f"check:{token}", check_list, _box(), str(path), text, name, kind, total=count_rows(path), name=name,
                 text=text, kind=kind, start_at=request.form.get("start_at", ""))
    return _checked(token, wait=WAIT_SECONDS)


@bp.route("/send/preview/<token>")
@login_required
def preview(token: str):
    """Where a list read in the background is shown when it is done (the progress page comes here)."""
    return _checked(token, wait=0)


def _finished(kind: str, token: str, wait: float, title: str, endpoint: str):
    """(this upload's job once it is done, None) - or (None, the answer meanwhile: the upload expired, or
    the progress page that comes back to ``endpoint``)."""
    job = jobs().get(f"{kind}:{token}")
    if job is None:
        return None, _form_error(gettext("The upload has expired; upload the list again."))
    if not job.wait(wait):
        return None, _working(job, title, kind, token, url_for(endpoint, token=token))
    return job, None


def _checked(token: str, *, wait: float):
    job, meanwhile = _finished("check", token, wait, gettext("Reading the list"), "send.preview")
    if job is None:
        return meanwhile
    if job.state == "failed":
        upload_path(token).unlink(missing_ok=True)
        return _failed(job)
    info = job.info
    return render_template("preview.html", p=job.result, token=token, name=info["name"], text=info["text"],
                           kind=info["kind"], start_at=info["start_at"])


def _failed(job: Job):
    """A job's error for the person who sent the list; the box's own trouble (a full or damaged storage) as
    the page shows it everywhere."""
    if isinstance(job.exception, (StorageFull, DatabaseDamaged)):
        raise job.exception
    return _form_error(job.error)


def _working(job: Job, title: str, kind: str, token: str, next_url: str):
    return render_template("working.html", title=title, job=job, next=next_url,
                           poll=url_for("send.job_progress", kind=kind, token=token)), 202


@bp.route("/send/job/<kind>/<token>")
@login_required
def job_progress(kind: str, token: str):
    """How far a list's reading or queueing got (the progress page asks every second)."""
    job = jobs().get(f"{kind}:{token}") if kind in ("check", "queue") else None
    if job is None:
        return jsonify({"state": "gone"}), 404
    return jsonify(job.as_dict())


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
        path = upload_path(token)
        key = f"upload:{token}"
        intake = _intake()
        if (listed := intake.queued_for(key)) is not None:
            return _already_sent(listed)
        jobs().forget_failed(f"queue:{token}")  # a confirm that failed (a full disk) may be tried again
        if (first := jobs().get(f"queue:{token}")) is not None:
            return _already_sent(_queued_by(first))
        if not path.exists():
            raise SendListError(gettext("The upload has expired; upload the list again."))
        kind = request.form.get("kind", MARKETING)
        if kind not in KINDS:
            raise SendListError(gettext("Choose marketing or transactional."))
        start_at = _start_at(intake, request.form.get("start_at", ""))
    except (SendListError, IntakeError) as exc:
        return _form_error(translate(exc))
    text, name, by = request.form.get("text", ""), request.form.get("name", "list"), f"user:{current_user().id}"
    if jobs().start(f"queue:{token}", queue_list, _box(), str(path), text, name, kind, start_at, key, by,
                    total=count_rows(path)) is None:  # a double click, a moment apart
        return _already_sent(_queued_by(jobs().get(f"queue:{token}")))
    return _queued(token, wait=WAIT_SECONDS)


def _queued_by(job: Job | None) -> int | None:
    """The list the first of two confirms queued, once it is known (a moment's wait for it)."""
    if job is None or not job.wait(WAIT_SECONDS):
        return None
    if isinstance(job.exception, AlreadyQueued):
        return job.exception.list_id
    return job.result[0].list_id if job.state == "done" and job.result[0] is not None else None


@bp.route("/send/queued/<token>")
@login_required
def queued(token: str):
    """Where a list queued in the background goes when it is done (the progress page comes here)."""
    return _queued(token, wait=0)


def _queued(token: str, *, wait: float):
    job, meanwhile = _finished("queue", token, wait, gettext("Queueing the list"), "send.queued")
    if job is None:
        return meanwhile
    if isinstance(job.exception, AlreadyQueued):
        return _already_sent(job.exception.list_id)
    if job.state == "failed":
        return _failed(job)
    done, _ = job.result
    if done is None:
        return _form_error(gettext("No row of this list can be sent."))
    upload_path(token).unlink(missing_ok=True)
    return redirect(url_for("history.list_detail", list_id=done.list_id, queued=done.count))


def _box() -> tuple:
    """What a job needs to open the box itself (it may run in another process): its config and clock."""
    return config(), clock()


def _intake_of(box: tuple) -> Intake:
    the_config, the_clock = box
    return Intake(Database.in_data_dir(the_config.data_dir), the_clock, the_config)


def check_list(progress: Progress, box: tuple, path: str, text: str, name: str, kind: str = MARKETING) -> Preview:
    """A job: read an uploaded list for its preview (its own connection: it runs on a worker)."""
    intake = _intake_of(box)
    try:
        return intake.check_file(path, text, name=name, kind=kind, progress=progress.update).preview
    finally:
        intake.db.close()


def queue_list(progress: Progress, box: tuple, path: str, text: str, name: str, kind: str, start_at: float | None,
               key: str, by: str):
    """A job: read and queue a confirmed list."""
    intake = _intake_of(box)
    try:
        return intake.queue_file(path, text, name=name, kind=kind, start_at=start_at, key=key, by=by,
                                 progress=progress.update)
    finally:
        intake.db.close()
