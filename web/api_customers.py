"""The REST API's customer book (docs/api.md): customers, consent, opt-outs, groups, and sending to a group.

A token needs the scope ``customers`` to read or change the book, and
``send`` to send to a group; a group send meets the same checks as the
page's (the consent gate, forbidden words, the signature and footer, the
price) and may carry an ``Idempotency-Key``. A customer is addressed by the
id the book gives it, so numbers travel only in request bodies.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from appliance import phones
from appliance.book import Book, Customer
from appliance.consent import Consent
from appliance.errors import AlreadyQueued, CustomerError, IntakeError, SmsGenieError
from appliance.intake import Intake
from appliance.messages import MARKETING, TRANSACTIONAL
from appliance.optout import OptOuts
from appliance.settings import read_settings
from web.api import MAX_KEY, body_of, scope_required, token_required
from web.state import clock, config, db, queue

bp = Blueprint("api_customers", __name__, url_prefix="/api/v1")


def _json(c: Customer) -> dict:
    return {"id": c.id, "number": c.number, "name": c.name, "birthday": c.birthday, "tags": c.tags,
            "fields": c.fields, "consent": c.consent,
            "evidence": None if c.evidence is None else {"source": c.evidence.source, "reference": c.evidence.reference,
                                                         "at": c.evidence.at, "inbound_id": c.evidence.inbound_id}}


def _number(body: dict) -> str:
    if not isinstance(body.get("number"), str):
        raise CustomerError("give the customer's 'number' as a string")
    try:
        return phones.normalise(body["number"], read_settings(config().data_dir)["default_region"]).e164
    except phones.NumberProblem as exc:
        raise CustomerError(str(exc)) from None


def _who() -> str:
    return g.api_client.owner


@bp.route("/customers", methods=["GET"])
@token_required
@scope_required("customers")
def list_customers():
    limit = min(max(request.args.get("limit", 50, type=int), 1), 500)
    found, total = Book(db(), clock()).search(request.args.get("q", ""), tag=request.args.get("tag") or None,
                                              limit=limit, offset=max(request.args.get("offset", 0, type=int), 0))
    return jsonify(total=total, customers=[_json(c) for c in found])


@bp.route("/customers", methods=["POST"])
@token_required
@scope_required("customers")
def upsert_customer():
    """Add a customer or change what the body gives (name, birthday, tags, fields); the others stay."""
    body = body_of()
    try:
        number = _number(body)
        for key, kind in (("name", str), ("birthday", str), ("tags", list), ("fields", dict)):
            if key in body and not isinstance(body[key], kind):
                raise CustomerError(f"'{key}' must be a {kind.__name__}")
        c = Book(db(), clock()).save(number, by=_who(), name=body.get("name"), birthday=body.get("birthday"),
                                     tags=body.get("tags"), fields=body.get("fields"))
    except CustomerError as exc:
        return jsonify(error=str(exc)), 400
    return jsonify(customer=_json(c)), 200


@bp.route("/customers/<int:cid>", methods=["GET"])
@token_required
@scope_required("customers")
def get_customer(cid: int):
    try:
        return jsonify(customer=_json(Book(db(), clock()).by_id(cid)))
    except CustomerError as exc:
        return jsonify(error=str(exc)), 404


@bp.route("/customers/consent", methods=["POST"])
@token_required
@scope_required("customers")
def record_consent():
    """Consent with its evidence: {"number", "source": "paper" | "import-attested", "reference"}."""
    body = body_of()
    try:
        number = _number(body)
        event = Consent(db(), clock()).give(number, str(body.get("source", "paper")), str(body.get("reference", "")),
                                            by=_who())
    except CustomerError as exc:
        return jsonify(error=str(exc)), 400
    return jsonify(customer=_json(Book(db(), clock()).get(number)), event=event), 200


@bp.route("/customers/opt-out", methods=["POST"])
@token_required
@scope_required("customers")
def opt_out():
    """The customer asked not to get texts: {"number", "reason"}."""
    body = body_of()
    try:
        number = _number(body)
        if not isinstance(body.get("reason"), str) or not body["reason"].strip():
            raise CustomerError("say why in 'reason' (e.g. 'asked at the counter')")
        added = OptOuts(db(), clock()).add(number, "manual", body["reason"], by=_who())
    except CustomerError as exc:
        return jsonify(error=str(exc)), 400
    return jsonify(customer=_json(Book(db(), clock()).get(number)), changed=added), 200


@bp.route("/groups", methods=["GET"])
@token_required
@scope_required("customers")
def groups():
    return jsonify(groups=[{"tag": t, "customers": n} for t, n in Book(db(), clock()).tags()])


@bp.route("/groups/<tag>/messages", methods=["POST"])
@token_required
@scope_required("send")
def send_to_group(tag: str):
    """Send ``text`` (merge fields from the book: {姓名}, {积分}...) to a group; '*' is every customer."""
    body = body_of()
    text, transactional = body.get("text"), body.get("transactional", False)
    if not isinstance(text, str) or not text.strip() or not isinstance(transactional, bool):
        return jsonify(error="send {\"text\": \"...\", \"transactional\": false}"), 400
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > MAX_KEY:
        return jsonify(error=f"an Idempotency-Key is at most {MAX_KEY} characters"), 400
    book = Book(db(), clock())
    try:
        queued, preview = Intake(db(), clock(), config()).queue_table(
            book.table(tag=None if tag == "*" else tag), text, kind=TRANSACTIONAL if transactional else MARKETING,
            key=f"api-group:{g.api_client.id}:{key}" if key else None, by=_who())
    except AlreadyQueued as exc:
        return jsonify(list_id=exc.list_id, replayed=True), 200
    except (IntakeError, SmsGenieError) as exc:
        return jsonify(error=str(exc)), 409 if isinstance(exc, IntakeError) else 400
    return jsonify(list_id=queued.list_id if queued else None, queued=queued.count if queued else 0,
                   refused=preview.refused, refused_by_reason={str(k): v for k, v in preview.refused_by_reason.items()},
                   credits_needed=preview.credits_needed, balance=queue().ledger.balance(),
                   consent_gate=preview.gate), 202 if queued else 422
