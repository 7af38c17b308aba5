"""The counter panel as other rooms may use it: what it shows, and its four buttons.

The page mirrors the panel on /device and the demo maps terminal keys to
its buttons; neither holds the daemon or the hardware. They get a
:class:`PanelLink` from the box that runs the panel, and nothing more.
A press on simulated buttons travels through gpiozero's mock pins, the same
path as a finger on a real button; on a real box (whose buttons software
cannot press) it goes to the panel as the button's event would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the types only: Pillow and gpiozero load with the panel, not with this module
    from PIL.Image import Image

    from appliance.ui.panel import Panel
    from appliance.ui.screens import Screen
    from hw.buttons import Buttons

BUTTONS = ("up", "down", "ok", "back")
#: Seconds a "hold" keeps a simulated button down (Back held: home).
HOLD_SECONDS = 1.2


class PanelLink:
    def __init__(self, panel: Panel, buttons: Buttons | None = None):
        self._panel = panel
        self._buttons = buttons

    @property
    def image(self) -> Image | None:
        """The 128x64 pixels last drawn (1-bit), or None before the first frame."""
        return self._panel.image

    @property
    def brightness(self) -> str:
        """full, dim or off."""
        return self._panel.brightness

    @property
    def screen(self) -> Screen | None:
        """The screen last drawn, as text (title, lines, framed for an alert)."""
        return self._panel.screen

    @property
    def simulated(self) -> bool:
        """True when the buttons are simulated (gpiozero's mock pins): a press moves a pin."""
        return self._buttons is not None and self._buttons.simulated

    def press(self, name: str, *, hold: bool = False) -> None:
        """Press a button (``hold``: keep it down long enough for a long press). Returns at once."""
        if name not in BUTTONS:
            raise ValueError(f"no button called {name!r}; the buttons are {', '.join(BUTTONS)}")
        if self.simulated:
            self._buttons.press_async(name, hold=HOLD_SECONDS if hold else 0.0)
            return
        self._panel.button(name, "press")
        if hold and name == "back":
            self._panel.button(name, "long")
