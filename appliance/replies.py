"""Replies: a customer's conversation with the shop, and keyword auto-replies.

The conversation is the texts sent to a number and the texts it sent,
in time order. Staff reply from the page; a reply is a transactional text
(the customer wrote first), charged and recorded like any other.

Auto-replies (setting ``auto_replies``: a keyword to its answer, e.g. 营业时间
-> 每天8:00-22:00营业): a text that is just the keyword (case, width and
spacing aside) gets the answer. The collector notes what is owed while it
reads the modem; the daemon queues it between sends.
"""

from __future__ import annotations

from appliance.clock import Clock
from appliance.db import Database
from appliance.forbidden import normalise
from appliance.messages import TRANSACTIONAL
from appliance.text import say

#: At most this many auto-replies to one number a day: two boxes (or a robot) cannot talk for ever.
DAILY_PER_NUMBER = 3


class Replies:
    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock

    def conversation(self, number: str, limit: int = 200) -> list[dict]:
        """Texts to and from ``number``, oldest first: {"at", "direction" ("in"/"out"), "text", "state", "id"}."""
        out = [{"at": r["created_at"], "direction": "out", "text": r["text"], "state": r["state"], "id": r["id"]}
               for r in self.db.execute("SELECT id, created_at, text, state FROM message WHERE recipient = ?"
                                        " ORDER BY id DESC LIMIT ?", (number, limit))]
        out += [{"at": r["received_at"], "direction": "in", "text": r["text"], "state": None, "id": r["id"]}
                for r in self.db.execute("SELECT id, received_at, text FROM inbound WHERE sender = ?"
                                         " ORDER BY id DESC LIMIT ?", (number, limit))]
        return sorted(out, key=lambda m: (m["at"], m["direction"] == "in"))[-limit:]

    def senders(self, limit: int = 100) -> list[dict]:
        """Who wrote to the box, the latest first: their number, name (if in the book), texts, the last one."""
        rows = self.db.execute(
            "SELECT i.sender, COUNT(*) AS texts, MAX(i.id) AS last_id, MAX(i.received_at) AS last_at,"
            " c.name, c.rowid AS customer_id FROM inbound i LEFT JOIN customer c ON c.number = i.sender"
            " GROUP BY i.sender ORDER BY MAX(i.id) DESC LIMIT ?", (limit,)).fetchall()
        out = []
        for r in rows:
            last = self.db.execute("SELECT text FROM inbound WHERE id = ?", (r["last_id"],)).fetchone()
            out.append({**dict(r), "last_text": last["text"] if last else None})
        return out

    def reply(self, intake, number: str, text: str, *, by: str):
        """Staff answer a customer: a transactional text, queued, charged and recorded as any other."""
        return intake.queue_messages([(number, text)], name=say("reply"), kind=TRANSACTIONAL, by=by)

    # --- auto-replies ------------------------------------------------------------------------

    def owe(self, number: str, text: str | None, inbound_id: int | None, answers: dict) -> str | None:
        """If ``text`` is one of the keywords of ``answers``, note the reply owed; the keyword, or None."""
        if not text or not answers:
            return None
        said = normalise(text)
        keyword = next((k for k in answers if normalise(k) == said), None)
        if keyword is None:
            return None
        now = self.clock.time()
        with self.db.atomic() as conn:
            today = conn.execute("SELECT COUNT(*) FROM auto_reply WHERE number = ? AND at > ?",
                                 (number, now - 86400)).fetchone()[0]
            if today >= DAILY_PER_NUMBER:
                return None
            conn.execute("INSERT INTO auto_reply (number, inbound_id, keyword, at) VALUES (?, ?, ?, ?)",
                         (number, inbound_id, keyword, now))
        return keyword

    def send_owed(self, intake) -> int:
        """Queue the auto-replies owed (the daemon, between sends); how many."""
        rows = self.db.execute("SELECT id, number, keyword FROM auto_reply WHERE message_id IS NULL").fetchall()
        if not rows:
            return 0
        answers = intake.settings()["auto_replies"]
        sent = 0
        for r in rows:
            answer = answers.get(r["keyword"])
            result = (intake.queue_messages([(r["number"], answer)], name=say("auto-reply"), kind=TRANSACTIONAL,
                                            by="auto-reply").results[0] if answer else {})
            with self.db.atomic() as conn:  # settled either way: never queued twice
                conn.execute("UPDATE auto_reply SET message_id = ? WHERE id = ?", (result.get("id", 0), r["id"]))
            sent += "id" in result
        return sent
