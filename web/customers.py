"""The customer book's pages: the list, one customer, import, export, consent, asking, a group send.

Addresses carry a customer's row id, never their number; numbers are masked
as everywhere else (an admin may ask for them whole with ?full=1).
"""

from __future__ import annotations

import io
import secrets

from flask import Blueprint, Response, redirect, render_template, request, url_for

from appliance import phones
from appliance.asking import Asking, without_consent
from appliance.book import Book, split_tags
from appliance.bookfile import BookImport, export
from appliance.consent import SOURCES, Consent
from appliance.erasure import Erasure
from appliance.errors import AlreadyQueued, CustomerError, IntakeError, SendListError, SmsGenieError
from appliance.files import write_new
from appliance.intake import Intake
from appliance.messages import KINDS, MARKETING
from appliance.optout import OptOuts
from appliance.saved import SavedTemplates
from appliance.sendlist import open_table
from appliance.settings import read_settings
from web.i18n import gettext, translate
from web.saved import saved_text
from web.send import upload_path
from web.state import admins_only, clock, config, current_user, db, login_required

bp = Blueprint("customers", __name__)
PAGE = 50


def _by() -> str:
    return f"user:{current_user().id}"


@bp.route("/customers")
@login_required
def index():
    return _list_page(request.args.get("q", ""), request.args.get("tag") or None, request.args.get("consent"),
                      max(1, request.args.get("page", 1, type=int)))


def _list_page(query: str = "", tag: str | None = None, consent: str | None = None, page: int = 1,
               error: str | None = None):
    """The customers' list (filtered, one page), with an error from a form on it if there is one."""
    book = Book(db(), clock())
    found, total = book.search(query, tag=tag, consent=consent if consent in ("unknown", "given", "refused") else None,
                               limit=PAGE, offset=(page - 1) * PAGE)
    return render_template("customers.html", customers=found, total=total, page=page, pages=-(-total // PAGE),
                           q=query, tag=tag or "", consent=consent or "", tags=book.tags(),
                           error=error), (400 if error else 200)


@bp.route("/customers/tag", methods=["POST"])
@login_required
def bulk_tag():
    book = Book(db(), clock())
    try:
        numbers = [book.by_id(int(i)).number for i in request.form.getlist("ids") if i.isdigit()]
        if not numbers:
            raise CustomerError(gettext("Tick the customers to tag first."))
        book.tag(numbers, request.form.get("tag", ""), by=_by(), remove=request.form.get("action") == "remove")
    except CustomerError as exc:
        return _list_page(error=translate(exc))
    return redirect(request.referrer or url_for("customers.index"))


@bp.route("/customers/<int:cid>", methods=["GET", "POST"])
@login_required
def show(cid: int):
    book = Book(db(), clock())
    try:
        customer = book.by_id(cid)
    except CustomerError:
        return render_template("error.html", title=gettext("Not found"),
                               message=gettext("No such customer (erased?).")), 404
    error = None
    if request.method == "POST":
        try:
            done = _act(book, customer, request.form.get("action", ""))
            if done is not None:
                return done
            return redirect(url_for("customers.show", cid=cid))
        except (SmsGenieError, ValueError) as exc:
            error = translate(exc)
            customer = book.by_id(cid)
    return render_template("customer.html", c=customer, history=Consent(db(), clock()).history(customer.number, 50),
                           sources=SOURCES, error=error), (400 if error else 200)


def _fields(text: str) -> dict:
    """The shop's own fields as the form writes them: one "name: value" (or "name=value") per line."""
    out = {}
    for line in text.splitlines():
        name, sep, value = line.replace("：", ":").replace("=", ":", 1).partition(":")
        if line.strip() and not sep:
            raise CustomerError(gettext("Write each field as name: value, one per line."))
        if name.strip():
            out[name.strip()] = value.strip()
    return out


def _act(book: Book, customer, action: str):
    """One action on a customer's page; a response to give instead of going back to the page, or None."""
    form, by, number = request.form, _by(), customer.number
    if action == "save":
        book.save(number, by=by, name=form.get("name", ""), birthday=form.get("birthday", ""),
                  tags=split_tags(form.get("tags", "")), fields=_fields(form.get("fields", "")))
    elif action == "consent":
        Consent(db(), clock()).give(number, "paper", form.get("reference", ""), by=by)
    elif action in ("ask", "counter"):
        asked = Asking(db(), clock()).ask(_intake(), [number], origin="counter" if action == "counter" else "asked",
                                          by=by)
        if not asked:
            raise CustomerError(gettext("Not asked: the customer consented already, refused, or has a question open."))
    elif action == "optout":
        OptOuts(db(), clock()).add(number, "manual", form.get("reason", "") or gettext("entered by the shop"), by=by)
    elif action == "erase":
        if not current_user().is_admin:
            return admins_only()
        Erasure(db(), clock()).erase(number, by=by)
        return redirect(url_for("customers.index"))
    else:
        raise CustomerError(gettext("Unknown action."))
    return None


@bp.route("/customers/new", methods=["POST"])
@login_required
def new():
    try:
        number = phones.normalise(request.form.get("number", ""), read_settings(config().data_dir)["default_region"])
        c = Book(db(), clock()).save(number.e164, by=_by(), name=request.form.get("name", ""))
    except (phones.NumberProblem, CustomerError) as exc:
        return _list_page(error=translate(exc))
    return redirect(url_for("customers.show", cid=c.id))


def _intake() -> Intake:
    return Intake(db(), clock(), config())




@bp.route("/customers/import", methods=["GET", "POST"])
@login_required
def import_file():
    if request.method == "GET":
        return render_template("customers_import.html", p=None, error=None)
    attestation = request.form.get("attestation", "").strip()
    if attestation and not current_user().is_admin:
        return admins_only()
    try:
        token = request.form.get("token") or ""
        if not token:
            upload = request.files.get("file")
            if upload is None or not upload.filename:
                raise SendListError(gettext("Choose the customer file (CSV or Excel .xlsx)."))
            token = secrets.token_urlsafe(16)
            write_new(upload_path(token, "book-"), upload.save)
        path = upload_path(token, "book-")
        if not path.exists():
            raise SendListError(gettext("The upload has expired; upload the list again."))
        importer = BookImport(db(), clock(), region=read_settings(config().data_dir)["default_region"])
        if request.form.get("apply") != "1":
            p = importer.preview(path, name=request.form.get("name") or None, attestation=attestation)
            return render_template("customers_import.html", p=p, token=token, attestation=attestation, error=None)
        p = importer.apply(path, by=_by(), attestation=attestation)
        path.unlink()
        return render_template("customers_import.html", p=p, done=True, error=None)
    except SmsGenieError as exc:
        return render_template("customers_import.html", p=None, error=translate(exc)), 400


@bp.route("/customers/export.csv")
@login_required
def export_csv():
    if not current_user().is_admin:  # the whole book, numbers in full: the admin's
        return admins_only()
    out = io.StringIO()
    export(Book(db(), clock()), out, tag=request.args.get("tag") or None)
    return Response("\ufeff" + out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=customers.csv"})


@bp.route("/customers/send", methods=["GET", "POST"])
@login_required
def group_send():
    """Send to a tag (or everyone) from the book, without a file: the same preview, cost and checks."""
    book = Book(db(), clock())
    form = request.form if request.method == "POST" else request.args
    tag, text, kind = form.get("tag") or None, form.get("text", ""), form.get("kind", MARKETING)

    def page(p=None, error: str | None = None, text: str = text):
        return render_template("customers_send.html", p=p, tags=book.tags(), tag=tag or "", text=text, kind=kind,
                               kinds=KINDS, fields=book.field_names(), saved=SavedTemplates(db(), clock()).all(),
                               key=secrets.token_urlsafe(12), error=error), (400 if error else 200)

    if request.method == "GET" or not text.strip():
        return page(text=text or saved_text(request.args.get("template")))
    intake = _intake()
    try:
        if kind not in KINDS:
            raise SendListError(gettext("Choose marketing or transactional."))
        key = request.form.get("key", "")
        if request.form.get("confirm") == "1" and key:
            queued, p = intake.queue_table(book.table(tag=tag), text, kind=kind, key=f"group:{key}", by=_by())
            if queued is None:
                raise SendListError(gettext("Nobody in the group can get this text."))
            return redirect(url_for("history.list_detail", list_id=queued.list_id))
        shop = intake.settings()
        template = intake.template(text, shop=shop, kind=kind)
        p = intake.check_table(book.table(tag=tag), template, shop=shop, kind=kind).preview
    except AlreadyQueued as exc:
        return redirect(url_for("history.list_detail", list_id=exc.list_id))
    except (SmsGenieError, ValueError) as exc:
        return page(error=translate(exc))
    return page(p)


@bp.route("/customers/ask", methods=["POST"])
@login_required
def ask_them():
    """One click from a preview: text the consent question to the numbers the gate refused for want of it."""
    try:
        intake = _intake()
        region = intake.settings()["default_region"]
        consent = Consent(db(), clock())
        if request.form.get("token"):
            path = upload_path(request.form["token"])
            if not path.exists():
                raise SendListError(gettext("The upload has expired; upload the list again."))
            with open_table(path) as table:
                numbers = without_consent(table, region, consent)
        else:
            numbers = without_consent(Book(db(), clock()).table(tag=request.form.get("tag") or None), region, consent)
        asked = Asking(db(), clock()).ask(intake, numbers, by=_by())
    except (SmsGenieError, IntakeError) as exc:
        return render_template("error.html", title=gettext("Not asked"), message=translate(exc)), 400
    return render_template("error.html", title=gettext("Asked"),
                           message=gettext("The consent question was queued to %(n)d customers; a reply Y records "
                                           "their consent.", n=asked)), 200
