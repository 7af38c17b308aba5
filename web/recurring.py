"""Recurring sends on the page: birthday greetings and a group's monthly or weekly list, and their runs."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from appliance.book import Book
from appliance.errors import SmsGenieError
from appliance.messages import KINDS
from appliance.recurring import EVERY, RecurringSends
from web.i18n import translate
from web.state import admin_required, clock, current_user, db

bp = Blueprint("recurring", __name__)


@bp.route("/customers/recurring", methods=["GET", "POST"])
@admin_required
def page():
    sends = RecurringSends(db(), clock())
    error = None
    if request.method == "POST":
        form = request.form
        try:
            action = form.get("action", "add")
            if action == "add":
                day = form.get("day", "").strip()
                sends.add(form.get("name", ""), form.get("every", ""), form.get("text", ""), at=form.get("at", ""),
                          by=f"user:{current_user().id}", day=int(day) if day.isdigit() else None,
                          tag=form.get("tag") or None, kind=form.get("kind", "marketing"))
            elif action in ("on", "off"):
                sends.set_enabled(int(form.get("id", "0")), action == "on")
            elif action == "delete":
                sends.delete(int(form.get("id", "0")))
            return redirect(url_for("recurring.page"))
        except (SmsGenieError, ValueError) as exc:
            error = translate(exc)
    return render_template("recurring.html", sends=sends.all(), runs=sends.runs(30), alerts=sends.alerts(),
                           tags=Book(db(), clock()).tags(), every=EVERY, kinds=KINDS, error=error), \
        (400 if error else 200)
