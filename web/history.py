"""What was sent and what came back: send lists, their messages, inbound texts, opt-outs."""

from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, redirect, render_template, request, url_for

from appliance import phones
from appliance.audit import safe_cell
from appliance.errors import IntakeError, MessageNotFound, SendListError
from appliance.inbox import Inbox
from appliance.intake import Intake
from appliance.optout import OptOuts
from appliance.replies import Replies
from appliance.sendlists import SendLists
from web.i18n import gettext, translate
from web.state import admin_required, admins_only, clock, config, current_user, db, login_required, queue, show_number

bp = Blueprint("history", __name__)


def _lists() -> SendLists:
    return SendLists(db(), clock())


@bp.route("/history")
@login_required
def lists():
    return render_template("history.html", lists=_lists().recent(limit=200))


@bp.route("/history/<id:list_id>")
@login_required
def list_detail(list_id: int):
    try:
        lst = _lists().get(list_id)
    except MessageNotFound:
        return render_template("error.html", title=gettext("Not found"), message=gettext("No such send list.")), 404
    page = max(0, request.args.get("page", 0, type=int))
    messages = _lists().messages(list_id, limit=200, offset=page * 200)
    return render_template("list.html", lst=lst, messages=messages, page=page,
                           queued=request.args.get("queued", type=int))


@bp.route("/history/<id:list_id>.csv")
@login_required
def list_csv(list_id: int):
    """The list's messages, numbers masked unless an admin asks for them whole (?full=1)."""
    lists = _lists()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "recipient", "state", "parts", "error", "created", "sent"])
    offset = 0
    while True:
        batch = lists.messages(list_id, limit=1000, offset=offset)
        if not batch:
            break
        for m in batch:
            writer.writerow([safe_cell(v) for v in (m.id, show_number(m.recipient), m.state, m.segments, m.error,
                                                    m.created_at, m.sent_at)])
        offset += len(batch)
    return Response("\ufeff" + out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename=list-{list_id}.csv"})


@bp.route("/message/<id:message_id>")
@login_required
def message(message_id: int):
    q = queue()
    try:
        m = q.get(message_id)
    except MessageNotFound:
        return render_template("error.html", title=gettext("Not found"), message=gettext("No such message.")), 404
    parts = q.segments(message_id)
    return render_template("message.html", m=m, parts=parts)


@bp.route("/inbox")
@login_required
def inbox():
    return render_template("inbox.html", items=Inbox(db(), clock()).messages(200),
                           senders=Replies(db(), clock()).senders(100))


@bp.route("/inbox/<int:iid>", methods=["GET", "POST"])
@login_required
def inbox_conversation(iid: int):
    """The conversation with whoever sent inbound text ``iid`` (the inbox's link: no number in the address)."""
    row = db().execute("SELECT sender FROM inbound WHERE id = ?", (iid,)).fetchone()
    if row is None:
        return render_template("error.html", title=gettext("Not found"), message=gettext("No such text.")), 404
    return _conversation(row["sender"])


@bp.route("/customers/<int:cid>/conversation", methods=["GET", "POST"])
@login_required
def conversation(cid: int):
    row = db().execute("SELECT number FROM customer WHERE rowid = ?", (cid,)).fetchone()
    if row is None:
        return render_template("error.html", title=gettext("Not found"),
                               message=gettext("No such customer (erased?).")), 404
    return _conversation(row["number"])


def _conversation(number: str):
    """Texts to and from one number, and a reply box: a reply is a transactional text, charged and recorded."""
    replies = Replies(db(), clock())
    error = note = None
    if request.method == "POST":
        try:
            answer = replies.reply(Intake(db(), clock(), config()), number, request.form.get("text", ""),
                                   by=f"user:{current_user().id}")
            result = answer.results[0]
            if "error" in result:
                raise SendListError(result["error"])
            note = gettext("Reply queued.")
        except (SendListError, IntakeError) as exc:
            error = translate(exc)
    customer = db().execute("SELECT rowid AS id, name FROM customer WHERE number = ?", (number,)).fetchone()
    return render_template("conversation.html", number=number, items=replies.conversation(number),
                           customer=customer, error=error, note=note), (400 if error else 200)


@bp.route("/optouts", methods=["GET", "POST"])
@login_required
def optouts():
    outs = OptOuts(db(), clock())
    error = None
    if request.method == "POST":
        if not current_user().is_admin:
            return admins_only()
        action = request.form.get("action")
        reason = request.form.get("reason", "").strip()
        try:
            number = phones.normalise(request.form.get("number", "")).e164
            if not reason:
                raise ValueError(gettext("Say why."))
            if action == "add":
                outs.add(number, f"manual ({current_user().username})", reason)
            elif action == "remove":
                outs.remove(number, reason)
            return redirect(url_for("history.optouts"))
        except (phones.NumberProblem, ValueError) as exc:
            error = translate(exc)
    return render_template("optouts.html", entries=outs.all(), error=error), (400 if error else 200)


@bp.route("/optouts/log")
@admin_required
def optout_log():
    return render_template("optout_log.html", entries=OptOuts(db(), clock()).log())
