"""The box's counter panel, mirrored on the page (admin only): what the OLED shows, and its buttons.

On the simulated box (the demo) this is how a person sees the OLED and
presses its buttons: a press drives gpiozero's mock pins, so it travels the
same path as a finger on the real buttons. On a real box it shows what the
panel shows right now, and the buttons let the vendor's technician help
remotely. Without a panel (none configured, or the page served apart from
the daemon) the page says so.
"""

from __future__ import annotations

import io

from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request
from PIL import Image

from web.state import admin_required

bp = Blueprint("device", __name__, url_prefix="/device")
BUTTONS = ("up", "down", "ok", "back")
SCALE = 3
LIT = {"full": (225, 240, 255), "dim": (70, 78, 90)}
DARK = (8, 10, 14)


def box():
    """The daemon in this process (``smsgenie run``, the demo), or None."""
    return current_app.config.get("SMSGENIE_BOX")


def _panel():
    daemon = box()
    return daemon.panel if daemon is not None else None


@bp.route("/")
@admin_required
def page():
    panel = _panel()
    return render_template("device.html", panel=panel,
                           simulated=panel is not None and box().buttons is not None and box().buttons.simulated)


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
    daemon = box()
    if daemon is None or daemon.panel is None:
        abort(404)
    if name not in BUTTONS:
        abort(400)
    hold = request.form.get("hold") == "1"
    buttons = daemon.buttons
    if buttons is not None and buttons.simulated:
        buttons.press_async(name, hold=1.2 if hold else 0.0)  # through gpiozero, as a finger would
    else:
        daemon.panel.button(name, "press")
        if hold and name == "back":
            daemon.panel.button(name, "long")
    return ("", 204)
