"""The box-wide pause: every modem stops taking new messages (the one in hand finishes) until resumed.

Staff pause from the counter panel, the page or ``smsgenie pause``. The
switch is kept in the database, so a box paused at the counter stays paused
across a restart or a power cut: staff who paused it for a reason do not
find it sending after the lights flicker.
"""

from __future__ import annotations

import json

from appliance import kv
from appliance.clock import Clock
from appliance.db import Database
from appliance.text import say

KEY = "sending_paused"
#: Who paused, when it was not a user: as a person reads it (the page and the command line translate it).
PLACES = {"the counter panel": say("the counter panel"), "the command line": say("the command line")}


def paused_by_words(by: str):
    """Who paused the box (:meth:`SendingPause.current`'s ``by``) in words: a place's, or the user's name."""
    return PLACES.get(by, by)


class SendingPause:
    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock

    def pause(self, who: str) -> None:
        """Pause sending for the whole box; ``who`` is said in status ("the counter panel", a user name)."""
        with self.db.atomic() as conn:
            kv.put(conn, KEY, json.dumps({"by": who, "at": self.clock.time()}, ensure_ascii=False))

    def resume(self) -> bool:
        """Send again; False if sending was not paused."""
        with self.db.atomic() as conn:
            return kv.delete(conn, KEY) == 1

    def current(self) -> dict | None:
        """{"by": who, "at": epoch} while sending is paused for the whole box, else None."""
        value = kv.get(self.db.conn, KEY)
        return None if value is None else json.loads(value)
