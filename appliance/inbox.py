"""The inbox: texts customers sent to the box, long ones joined from their parts.

Every inbound SMS is stored part by part as it arrives (``inbound`` table),
including those that could not be decoded, which keep their raw PDU and a
reason. Here the parts of one long text (same sender, same concatenation
reference and part count) are put back together.
"""

from __future__ import annotations

from appliance.clock import Clock
from appliance.db import Database


class Inbox:
    """The ``inbound`` table: the worker stores what the modem received, the page and CLI read it."""

    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock

    def store(self, sender: str, sent_at: str | None, text: str | None, pdu: str, *,
              concat: tuple[int, int, int] | None = None, problem: str | None = None) -> int | None:
        """Keep an inbound SMS (or one part of it); its id, or None if this PDU was stored before."""
        ref, part, parts = concat if concat else (None, None, None)
        with self.db.atomic() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO inbound (received_at, sender, sent_at, text, concat_ref, part, parts,"
                " problem, pdu) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.clock.time(), sender, sent_at, text, ref, part, parts, problem, pdu))
            return cur.lastrowid if cur.rowcount == 1 else None

    def latest_parts(self, limit: int = 100) -> list[dict]:
        """The stored rows as they came, newest first (one per part of a long text)."""
        rows = self.db.execute("SELECT * FROM inbound ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [dict(r) for r in rows]

    def _parts(self, sender: str, ref: int, parts: int) -> list:
        return self.db.execute("SELECT * FROM inbound WHERE sender = ? AND concat_ref = ? AND parts = ?"
                               " ORDER BY part, id", (sender, ref, parts)).fetchall()

    def complete_text(self, sender: str, ref: int, parts: int) -> str | None:
        """The whole text once every part is in, else None."""
        rows = {r["part"]: r for r in self._parts(sender, ref, parts)}
        if len(rows) < parts:
            return None
        return "".join(rows[i]["text"] if rows[i]["text"] is not None else "\ufffd" for i in range(1, parts + 1))

    def messages(self, limit: int = 50) -> list[dict]:
        """Newest first; each a whole text, or the parts received so far."""
        out: list[dict] = []
        seen: set[tuple] = set()
        for r in self.db.execute("SELECT * FROM inbound ORDER BY id DESC"):
            if len(out) >= limit:
                break
            if r["concat_ref"] is None:
                out.append({"sender": r["sender"], "sent_at": r["sent_at"], "received_at": r["received_at"],
                            "text": r["text"], "problem": r["problem"], "parts": None, "parts_received": 1,
                            "complete": True})
                continue
            key = (r["sender"], r["concat_ref"], r["parts"])
            if key in seen:
                continue
            seen.add(key)
            rows = {p["part"]: p for p in self._parts(*key)}
            complete = len(rows) == r["parts"]
            text = "".join((rows[i]["text"] or "\ufffd") if i in rows else "[…]" for i in range(1, r["parts"] + 1))
            problems = "; ".join(p["problem"] for p in rows.values() if p["problem"])
            out.append({"sender": r["sender"], "sent_at": min(p["sent_at"] or "" for p in rows.values()) or None,
                        "received_at": max(p["received_at"] for p in rows.values()), "text": text,
                        "problem": problems or None, "parts": r["parts"], "parts_received": len(rows),
                        "complete": complete})
        return out
