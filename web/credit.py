"""Top-up: paste a code from the vendor, see the credits added or the exact reason it was refused."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, render_template, request

from appliance import boxkey, topup
from appliance.device import format_device_id, this_device_id
from appliance.errors import TopUpError, VendorKeyError
from appliance.vendor import parse_public_key
from web.i18n import gettext, translate
from web.state import admin_required, config, queue

bp = Blueprint("credit", __name__)


def this_device() -> bytes:
    """This box's id (see appliance.device.this_device_id)."""
    return this_device_id(config().data_dir)


@bp.route("/topup", methods=["GET", "POST"])
@admin_required
def page():
    q = queue()
    error = result = receipt = None
    if request.method == "POST":
        cfg = config()
        try:
            if not cfg.vendor.public_key:
                raise VendorKeyError(gettext("This box has no vendor key in its config; ask the vendor's technician."))
            key, key_id = parse_public_key(cfg.vendor.public_key)
            code = topup.verify(request.form.get("code", ""), key, key_id, this_device(),
                                date.fromtimestamp(q.clock.time()))
            balance = topup.redeem(q, code, boxkey.load(cfg.data_dir))
            result = gettext("Added %(credits)d credits. Balance: %(balance)d credits.", credits=code.credits,
                             balance=balance)
            receipt = topup.receipt_of(q, code)
        except (TopUpError, VendorKeyError) as exc:
            error = translate(exc)
    return render_template("topup.html", error=error, result=result, receipt=receipt, balance=q.ledger.balance(),
                           entries=list(reversed(q.ledger.history(100))), device=format_device_id(this_device())), \
        (400 if error else 200)
