"""The REST API's saved templates, a customer's conversation and the recurring sends (docs/api.md).

Saved templates are the shop's (scope ``send``: they are what a send uses); a customer's conversation and
the recurring sends are read with the scope ``customers``. Recurring sends are made and changed by an admin
on the page only: a token is never an admin.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from appliance.book import Book
from appliance.errors import CustomerError, TemplateError
from appliance.recurring import RecurringSends
from appliance.replies import Replies
from appliance.saved import Saved, SavedTemplates
from appliance.text import unstored
from web.api import body_of, scope_required, token_required
from web.state import clock, db

bp = Blueprint("api_shop", __name__, url_prefix="/api/v1")


def _template(t: Saved) -> dict:
    return {"id": t.id, "name": t.name, "text": t.text, "fields": t.fields, "created_at": t.created_at}


@bp.route("/templates", methods=["GET"])
@token_required
@scope_required("send")
def templates():
    return jsonify(templates=[_template(t) for t in SavedTemplates(db(), clock()).all()])


@bp.route("/templates", methods=["POST"])
@token_required
@scope_required("send")
def save_template():
    """Save ``{"name", "text"}`` (a name used before has its text replaced); the text is checked now."""
    body = body_of()
    name, text = body.get("name"), body.get("text")
    if not isinstance(name, str) or not isinstance(text, str):
        return jsonify(error="send {\"name\": \"...\", \"text\": \"...\"}"), 400
    store = SavedTemplates(db(), clock())
    try:
        tid = store.save(name, text, by=g.api_client.owner)
    except TemplateError as exc:
        return jsonify(error=str(exc)), 400
    return jsonify(template=_template(store.get(tid))), 200


@bp.route("/templates/<int:tid>", methods=["DELETE"])
@token_required
@scope_required("send")
def delete_template(tid: int):
    if not SavedTemplates(db(), clock()).delete(tid):
        return jsonify(error="no saved template with this id"), 404
    return jsonify(deleted=tid), 200


@bp.route("/customers/<int:cid>/conversation", methods=["GET"])
@token_required
@scope_required("customers")
def conversation(cid: int):
    """The texts to and from one customer, oldest first (the page's conversation)."""
    try:
        customer = Book(db(), clock()).by_id(cid)
    except CustomerError as exc:
        return jsonify(error=str(exc)), 404
    return jsonify(customer=cid, messages=Replies(db(), clock()).conversation(customer.number))


@bp.route("/recurring", methods=["GET"])
@token_required
@scope_required("customers")
def recurring():
    """The recurring sends and their last runs (made on the page by an admin)."""
    sends = RecurringSends(db(), clock())
    return jsonify(recurring=[{"id": r.id, "name": r.name, "every": r.every, "day": r.day, "at": r.at,
                               "tag": r.tag, "text": r.template, "kind": r.kind, "enabled": r.enabled}
                              for r in sends.all()],
                   runs=[{"recurring_id": run["recurring_id"], "name": run["name"], "day": run["day"], "at": run["at"],
                          "outcome": run["outcome"], "list_id": run["send_list_id"], "messages": run["messages"],
                          "credits": run["credits"], "reason": str(unstored(run["reason"]))}
                         for run in sends.runs(50)])
