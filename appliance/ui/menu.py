"""Where the four buttons take you: a small state machine, no I/O.

At home, Up and Down leaf through the home pages (the box at a glance, the
list being sent, the page's address); OK opens the menu. In "Modem info" on a
box with several modems, Up and Down leaf through the modems. In the menu Up and
Down move, OK chooses, Back goes back; holding Back goes home from
anywhere. Choices that cost something or interrupt sending (a test SMS,
restarting the modem) ask first. What a choice *does* is the panel's
business: :meth:`Navigator.button` returns the action's name.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.ui import screens
from appliance.ui.draw import BODY_ROWS
from appliance.ui.screens import Screen, Snapshot

HOME_PAGES = ("home", "list", "address")
#: Menu items: (label, what OK does). Labels are keys of appliance.ui.text.
VIEWS = {"Web address": screens.address, "Certificate": screens.certificate, "Device ID": screens.device,
         "Box key": screens.box_key, "About": screens.about,
         "Set-up PIN": screens.setup_pin, "Modem info": screens.modem_info}
ACTIONS = {"Pause sending": "pause", "Resume sending": "resume", "Screen off": "screen_off"}
CONFIRMED = {"Send a test SMS": "test_sms", "Restart modem": "restart_modem"}
#: Seconds a result message stays before the menu comes back.
MESSAGE_SECONDS = 3.0


#: The menu entry that opens the lists awaiting approval (shown only while there are some).
APPROVE = "Approve lists ({n})"


def menu_items(s: Snapshot) -> list[str]:
    items = ["Resume sending" if s.paused_by else "Pause sending"]
    items += [APPROVE] if s.awaiting else []
    items += ["Web address"]
    items += ["Certificate"] if s.certificate else []
    items += ["Device ID"]
    if s.setup_pin:
        items.append("Set-up PIN")
    return items + ["Send a test SMS", "Modem info", "Box key", "About", "Restart modem", "Screen off"]


@dataclass
class _Message:
    title: str
    lines: tuple[str, ...]
    until: float


class Navigator:
    """The panel's place in its screens. Call :meth:`button` for each event, :meth:`screen` to draw."""

    def __init__(self):
        self.mode = "home"        # home, menu, view, confirm, message, approve, decline
        self.page = 0             # home page index
        self.index = 0            # menu item index
        self.item = ""            # the view or confirmation open
        self.approving = 0        # which list awaiting approval is shown
        self.modem = 0            # which modem "Modem info" shows
        self.message: _Message | None = None

    def button(self, name: str, kind: str, s: Snapshot, now: float) -> str | None:
        """Handle one button event; returns an action for the panel to do, or None."""
        if name == "back" and kind == "long":
            self.mode, self.page = "home", 0
            return None
        items = menu_items(s)
        if self.mode == "home":
            if name in ("up", "down"):
                self.page = (self.page + (1 if name == "down" else -1)) % len(HOME_PAGES)
            elif name == "ok" and kind == "press":
                self.mode, self.index = "menu", 0
            elif name == "back" and kind == "press":
                self.page = 0
            return None
        if self.mode == "menu":
            if name in ("up", "down"):
                self.index = (self.index + (1 if name == "down" else -1)) % len(items)
            elif name == "back" and kind == "press":
                self.mode = "home"
            elif name == "ok" and kind == "press":
                self.index = min(self.index, len(items) - 1)
                item = items[self.index]
                if item == APPROVE:
                    self.mode, self.approving = "approve", 0
                elif item in VIEWS:
                    self.mode, self.item, self.modem = "view", item, 0
                elif item in CONFIRMED:
                    self.mode, self.item = "confirm", item
                else:
                    return ACTIONS[item]
            return None
        if self.mode in ("approve", "decline"):
            return self._approval(name, kind, s)
        if self.mode == "confirm":
            if kind != "press":
                return None
            item, self.mode = self.item, "menu"
            if name == "ok" and (item != "Send a test SMS" or s.test_number):
                return CONFIRMED[item]
            return None
        if self.mode == "view" and self.item == "Modem info" and name in ("up", "down") and s.modems:
            self.modem = (self.modem + (1 if name == "down" else -1)) % len(s.modems)  # a box with several
        elif kind == "press" and name in ("ok", "back"):  # a view or a message: either key goes back
            self.mode, self.message = "menu", None
        return None

    def _approval(self, name: str, kind: str, s: Snapshot) -> str | None:
        """A list awaiting approval: OK approves; Back asks "decline?" (OK: yes, Back: no); up and down
        go through the lists. Returns "approve:<id>" or "decline:<id>"."""
        if not s.awaiting:
            self.mode = "menu"
            return None
        self.approving = min(self.approving, len(s.awaiting) - 1)
        chosen = s.awaiting[self.approving]
        if name in ("up", "down") and self.mode == "approve":
            self.approving = (self.approving + (1 if name == "down" else -1)) % len(s.awaiting)
        elif kind != "press":
            return None
        elif self.mode == "approve" and name == "ok":
            self.mode = "menu"
            return f"approve:{chosen.id}"
        elif self.mode == "approve" and name == "back":
            self.mode = "decline"
        elif self.mode == "decline" and name == "ok":
            self.mode = "menu"
            return f"decline:{chosen.id}"
        elif self.mode == "decline" and name == "back":
            self.mode = "approve"
        return None

    def show_message(self, title: str, lines: tuple[str, ...], now: float) -> None:
        """Show an action's result for a few seconds, then the menu."""
        self.mode, self.message = "message", _Message(title, lines, now + MESSAGE_SECONDS)

    def screen(self, s: Snapshot, lang: str, now: float) -> Screen:
        if self.mode == "message" and self.message is not None and now >= self.message.until:
            self.mode, self.message = "menu", None
        if self.mode == "home":
            return {"home": screens.home, "list": screens.current_list,
                    "address": screens.address}[HOME_PAGES[self.page]](s, lang)
        if self.mode == "menu":
            items = menu_items(s)
            self.index = min(self.index, len(items) - 1)
            return screens.menu(s, lang, items, self.index, BODY_ROWS)
        if self.mode == "view":
            if self.item == "Modem info":
                return screens.modem_info(s, lang, self.modem)
            return VIEWS[self.item](s, lang)
        if self.mode in ("approve", "decline") and not s.awaiting:
            self.mode = "menu"
            return self.screen(s, lang, now)
        if self.mode == "approve":
            return screens.approval(s, lang, min(self.approving, len(s.awaiting) - 1))
        if self.mode == "decline":
            return screens.confirm(s, lang, "Decline list")
        if self.mode == "confirm":
            if self.item == "Send a test SMS":
                return screens.test_sms_confirm(s, lang)
            return screens.confirm(s, lang, self.item)
        return screens.message(s, lang, self.message.title, *self.message.lines)
