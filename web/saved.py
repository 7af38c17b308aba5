"""Saved templates on the page: the shop's ready texts, picked on the send pages."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from appliance.errors import TemplateError
from appliance.saved import SavedTemplates
from web.i18n import translate
from web.state import clock, current_user, db, login_required

bp = Blueprint("saved", __name__)


def saved_text(tid: str | None) -> str:
    """The text of the saved template ``tid`` (a send page's ?template=), or ""."""
    if not tid or not tid.isdigit():
        return ""
    found = SavedTemplates(db(), clock()).get(int(tid))
    return found.text if found else ""


@bp.route("/templates", methods=["GET", "POST"])
@login_required
def page():
    store = SavedTemplates(db(), clock())
    error = None
    if request.method == "POST":
        try:
            if request.form.get("action") == "delete":
                store.delete(int(request.form.get("id", "0")))
            else:
                store.save(request.form.get("name", ""), request.form.get("text", ""), by=f"user:{current_user().id}")
            return redirect(url_for("saved.page"))
        except (TemplateError, ValueError) as exc:
            error = translate(exc)
    return render_template("saved.html", templates=store.all(), error=error), (400 if error else 200)
