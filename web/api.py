"""The REST API for a shop's POS or booking system (docs/api.md).

Each call carries ``Authorization: Bearer <token>``; tokens are made by an
admin on the page, shown once, and kept only as hashes. Messages go
through the same checks as a list from the page (appliance/intake.py): a
valid mobile number, not twice in one call, not opted out, no forbidden
word, the signature; credits are charged when each is sent, and every one
sent is in the record.
"""

from __future__ import annotations

import functools

from flask import Blueprint, g, jsonify, request

from appliance.errors import KeyReused, MessageNotFound, NoVendorKeywords, ServiceCodeMissing, SignatureMissing
from appliance.intake import Intake, fingerprint
from appliance.messages import MARKETING, TRANSACTIONAL
from appliance.sendlists import SendLists
from appliance.status import status
from web.state import accounts, clock, config, db, queue

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_BATCH = 1000
#: The longest Idempotency-Key kept (a UUID is 36).
MAX_KEY = 200


def token_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.startswith("Bearer ") else ""
        client = accounts().api_client(token) if token else None
        if client is None:
            return jsonify(error="a valid API token is needed: 'Authorization: Bearer <token>'"), 401
        g.api_client = client
        return view(*args, **kwargs)
    return wrapped


def _message_json(m) -> dict:
    return {"id": m.id, "to": m.recipient, "state": m.state, "parts": m.segments, "error": m.error,
            "created_at": m.created_at, "sent_at": m.sent_at, "finished_at": m.finished_at}


def scope_required(scope: str):
    def decorate(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if scope not in g.api_client.scopes:
                return jsonify(error=f"this token may not {scope}: an admin makes a token with '{scope}' "
                                     f"on the page (Admin, API tokens)"), 403
            return view(*args, **kwargs)
        return wrapped
    return decorate


def body_of() -> dict:
    """The request's JSON object (anything else, or JSON nested deeper than any request needs: an empty one)."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        body = None
    return body if isinstance(body, dict) else {}


@bp.route("/messages", methods=["POST"])
@token_required
@scope_required("send")
def create_messages():
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nested deeper than any message needs
        body = None
    if not isinstance(body, dict):
        return jsonify(error="send a JSON object: {\"to\": ..., \"text\": ...} or {\"messages\": [...]}"), 400
    items = body.get("messages", [body]) if "messages" in body else [body]
    if not isinstance(items, list) or not items or len(items) > MAX_BATCH:
        return jsonify(error=f"'messages' must be a list of 1 to {MAX_BATCH} messages"), 400
    transactional = body.get("transactional", False)
    if not isinstance(transactional, bool):
        return jsonify(error="'transactional' must be true or false (JSON booleans, not a string or a number)"), 400
    kind = TRANSACTIONAL if transactional else MARKETING
    shaped, results = [], {}
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("to"), str) or not isinstance(item.get("text"), str):
            results[i] = {"index": i, "error": "each message needs 'to' and 'text' strings"}
        else:
            shaped.append((i, item["to"], item["text"]))
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > MAX_KEY:
        return jsonify(error=f"an Idempotency-Key is at most {MAX_KEY} characters"), 400
    try:
        answer = Intake(db(), clock(), config()).queue_messages(
            [(to, text) for _, to, text in shaped], name=f"API: {g.api_client.name}", kind=kind,
            key=f"api:{g.api_client.id}:{key}" if key else None, asked=fingerprint(body), by=g.api_client.owner)
    except KeyReused as exc:
        return jsonify(error=f"Idempotency-Key: {exc}"), 422
    except ServiceCodeMissing as exc:
        return jsonify(error=str(exc)), 503
    except (NoVendorKeywords, SignatureMissing) as exc:
        return jsonify(error=str(exc)), 409
    for (i, _, _), result in zip(shaped, answer.results):
        results[i] = {**result, "index": i}
    awaiting = answer.list_id is not None and SendLists(db(), clock()).get(answer.list_id)["state"] == "awaiting"
    response = jsonify(messages=[results[i] for i in range(len(items))], queued=answer.queued,
                       balance=queue().ledger.balance(), awaiting_approval=awaiting)
    if answer.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response, 202 if answer.queued else 422


@bp.route("/messages/<id:message_id>")
@token_required
def get_message(message_id: int):
    """A message this token may read: one it sent ("read-own"), or any ("read-all"); else it is not there."""
    try:
        message = queue().get(message_id)
        scopes = g.api_client.scopes
        if "read-all" not in scopes and not ("read-own" in scopes and message.send_list_id is not None
                                             and SendLists(db(), clock()).get(message.send_list_id)["created_by"]
                                             == g.api_client.owner):
            raise MessageNotFound(message_id)
        return jsonify(_message_json(message))
    except MessageNotFound:
        return jsonify(error=f"no message {message_id}"), 404


@bp.route("/status")
@token_required
def api_status():
    data = status(config(), queue())
    return jsonify({k: data[k] for k in ("queue", "progress", "sent_total", "balance", "paused", "modems", "daemon")})
