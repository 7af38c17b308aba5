"""The dashboard: balance, the queue, pace and time left (appliance/progress.py), every modem, problems; live.

The page shows a snapshot, then asks ``/status.json`` for a fresh one every
:data:`POLL_SECONDS` (plain JavaScript, no build). Each ask is a short
request, so fifty open dashboards do not hold fifty of the server's threads
(an event stream per browser would, and the page would stop answering);
and a session that ended stops the updates at the next ask.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, redirect, render_template, request, url_for

from appliance.approval import Approvals
from appliance.errors import ListStateError, MessageNotFound
from appliance.pause import SendingPause, paused_by_words
from appliance.progress import failures_by_reason
from appliance.recurring import RecurringSends
from appliance.sendlists import SendLists
from appliance.simhealth import SimHolds
from appliance.status import signal_bars, status
from web.i18n import gettext, state_label, translate
from web.state import (
    admin_required,
    clock,
    config,
    current_user,
    db,
    login_required,
    may_steer,
    queue,
    safe_next,
)

bp = Blueprint("dash", __name__)
#: Seconds between a dashboard's asks for a fresh snapshot.
POLL_SECONDS = 2.0


def snapshot() -> dict:
    q = queue()
    data = status(config(), q)
    for m in data["modems"]:
        m["bars"] = signal_bars(m["signal"])
        m["state_text"] = state_label(m["state"])
        m["detail"], m["paused"] = translate(m["detail"]), m["paused"] and translate(m["paused"])
        if m["held"]:
            m["held"] = {**m["held"], "why": translate(m["held"]["why"])}
    data["paused"] = data["paused"] and translate(data["paused"])  # why sending waits for credit
    held = data["sending_paused"]
    if held:  # who paused, in the page's language
        data["sending_paused"] = {**held, "by": translate(paused_by_words(held["by"]))}
    data["recent_errors"] = [{**e, "error": translate(e["error"])}
                             for e in failures_by_reason(db(), clock().time() - 86400)]
    data["lists"] = [{**{k: v for k, v in lst.items() if k not in ("template", "cancelled_by")},
                      "progress_text": state_label(lst["progress"]),
                      "waiting": lst["counts"]["queued"] + lst["counts"]["sending"]}
                     for lst in SendLists(db(), clock()).recent(limit=5)]
    data["lists_by_id"] = {str(lst["id"]): lst for lst in data["lists"]}  # the page's live rows, by list
    return data


@bp.route("/")
@login_required
def index():
    return render_template("dashboard.html", s=snapshot(), poll_seconds=POLL_SECONDS,
                           waiting=Approvals(db(), clock()).waiting(),
                           skipped=RecurringSends(db(), clock()).alerts())


@bp.route("/status.json")
@login_required
def status_json():
    return jsonify(snapshot())


def _not_yours():
    return render_template("error.html", title=gettext("Not allowed"),
                           message=gettext("Only an admin may do this (or staff, if the admin allows it in the "
                                           "settings); staff may steer the lists they sent.")), 403


@bp.route("/sending/<action>", methods=["POST"])
@login_required
def sending(action: str):
    """Pause or resume sending for the whole box (the same switch as the counter panel's menu)."""
    if not may_steer():
        return _not_yours()
    if action == "pause":
        SendingPause(db(), clock()).pause(current_user().username)
    elif action == "resume":
        SendingPause(db(), clock()).resume()
    return redirect(url_for("dash.index"))


@bp.route("/sims/<label>/resume", methods=["POST"])
@admin_required
def resume_sim(label: str):
    """A SIM held as barred (appliance/simhealth.py) sends again: an admin checked with the carrier."""
    SimHolds(db(), clock()).release(label)
    return redirect(url_for("dash.index"))


@bp.route("/lists/<id:list_id>/<action>", methods=["POST"])
@login_required
def list_action(list_id: int, action: str):
    lists = SendLists(db(), clock())
    try:
        if action in ("approve", "decline"):
            if not current_user().is_admin:
                return render_template("error.html", title=gettext("Not allowed"),
                                       message=gettext("Only an admin may approve or decline a list.")), 403
            decide = Approvals(db(), clock()).approve if action == "approve" else Approvals(db(), clock()).decline
            decide(list_id, f"user:{current_user().id}")
        elif not may_steer(lists.get(list_id)["created_by"]):
            return _not_yours()
        elif action == "pause":
            lists.pause(list_id)
        elif action == "resume":
            lists.resume(list_id)
        elif action == "cancel":
            lists.cancel(list_id, current_user().username)
        else:
            return redirect(url_for("history.lists"))
    except (ListStateError, MessageNotFound) as exc:
        return render_template("error.html", title="", message=translate(exc)), 409
    return redirect(safe_next(request.form.get("next")) if request.form.get("next") else url_for("history.lists"))
