"""The box's counter panel, mirrored on the page (admin only): what the OLED shows, and its buttons.

On the simulated box (the demo) this is how a person sees the OLED and
presses its buttons: a press drives gpiozero's mock pins, so it travels the
same path as a finger on the real buttons. On a real box it shows what the
panel shows right now, and the buttons let the vendor's technician help
remotely. The page holds only a :class:`~appliance.ui.link.PanelLink`
(given to ``create_app`` by whoever runs the panel in this process); without
one (no panel configured, or the page served apart from the daemon) the
page says so.
"""

from __future__ import annotations

import io

from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request
from PIL import Image

from appliance.ui.link import BUTTONS, PanelLink
from web.state import admin_required

bp = Blueprint("device", __name__, url_prefix="/device")
SCALE = 3
LIT = {"full": (225, 240, 255), "dim": (70, 78, 90)}
DARK = (8, 10, 14)


def _panel() -> PanelLink | None:
    return current_app.config.get("SMSGENIE_PANEL")


@bp.route("/")
@admin_required
def page():
    panel = _panel()
    return render_template("device.html", panel=panel, simulated=panel is not None and panel.simulated)


@bp.route("/frame.png")
@admin_required
def frame():
    panel = _panel()
    if panel is None or panel.image is None:
        abort(404)
    image = panel.image
    lit = LIT.get(panel.brightness)
    rgb = Image.new("RGB", image.size, DARK)
    if lit is not None:
        rgb.paste(lit, mask=image.convert("1"))
    out = io.BytesIO()
    rgb.resize((image.width * SCALE, image.height * SCALE), Image.NEAREST).save(out, "PNG")
    return Response(out.getvalue(), mimetype="image/png", headers={"Cache-Control": "no-store"})


@bp.route("/state.json")
@admin_required
def state():
    panel = _panel()
    if panel is None or panel.screen is None:
        return jsonify(screen=None)
    s = panel.screen
    return jsonify(screen={"title": s.title, "lines": list(s.lines), "alert": s.framed},
                   brightness=panel.brightness)


@bp.route("/press/<name>", methods=["POST"])
@admin_required
def press(name: str):
    """Press a button; ``hold=1`` holds it (Back held: home)."""
    panel = _panel()
    if panel is None:
        abort(404)
    if name not in BUTTONS:
        abort(400)
    panel.press(name, hold=request.form.get("hold") == "1")
    return ("", 204)
