"""How fast the box sends, how long what waits will take, and what it sent today: one answer for all.

The page's dashboard, the counter panel and ``smsgenie status`` show these
figures, so they come from this one function and agree. Two units, named
in every field: *messages* (what a customer receives) and *parts* (SMS
parts: what credits, caps and the modem count; a long text is several).

- The pace is the parts the network accepted over the last five minutes,
  or since sending began if that is more recent (never less than 30 s, so
  the first part does not promise a thousand a minute).
- Time left is the parts still waiting (queued or being sent) at that pace.
- "Sent today" counts messages whose every part the network accepted since
  local midnight, and the parts it accepted since then.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from appliance.db import Database
from appliance.text import unstored

#: Seconds of sending the pace is measured over.
RATE_WINDOW = 300.0
#: The shortest stretch a pace is measured over.
MIN_ELAPSED = 30.0


@dataclass(frozen=True)
class Progress:
    parts_per_minute: float
    messages_per_minute: float
    waiting_messages: int
    waiting_parts: int
    minutes_left: float | None
    """The waiting parts at the current pace; None when nothing waits or nothing was sent lately."""
    sent_today_messages: int
    sent_today_parts: int
    failed_today: int
    active_list: dict | None
    """The oldest list still sending: id, name, done (messages with an outcome), total, parts_left,
    minutes_left; None when no list is sending."""

    def as_dict(self) -> dict:
        return asdict(self)


def local_midnight(now: float) -> float:
    return datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def progress(db: Database, now: float) -> Progress:
    """The figures at ``now`` (the caller's clock), read from the database alone."""
    conn = db.conn
    parts, messages, first = conn.execute(
        "SELECT COUNT(*), COUNT(DISTINCT message_id), MIN(at) FROM send_log WHERE at > ?",
        (now - RATE_WINDOW,)).fetchone()
    minutes = max(MIN_ELAPSED, now - first) / 60 if first is not None else None
    parts_rate = parts / minutes if minutes else 0.0
    messages_rate = messages / minutes if minutes else 0.0
    waiting_messages, waiting_parts = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(segments), 0) FROM message WHERE state IN ('queued', 'sending')").fetchone()
    midnight = local_midnight(now)
    sent_messages = conn.execute("SELECT COUNT(*) FROM message WHERE sent_at >= ?", (midnight,)).fetchone()[0]
    sent_parts = conn.execute("SELECT COUNT(*) FROM send_log WHERE at >= ?", (midnight,)).fetchone()[0]
    failed = conn.execute("SELECT COUNT(*) FROM message WHERE state = 'failed' AND finished_at >= ?",
                          (midnight,)).fetchone()[0]

    def left(parts_waiting: int) -> float | None:
        return round(parts_waiting / parts_rate, 1) if parts_rate and parts_waiting else None

    return Progress(parts_per_minute=round(parts_rate, 1), messages_per_minute=round(messages_rate, 1),
                    waiting_messages=waiting_messages, waiting_parts=waiting_parts,
                    minutes_left=left(waiting_parts), sent_today_messages=sent_messages,
                    sent_today_parts=sent_parts, failed_today=failed, active_list=_active_list(db, left))


def _active_list(db: Database, left) -> dict | None:
    row = db.execute(
        "SELECT l.id, l.name, COUNT(*) AS total, SUM(m.state IN ('queued', 'sending')) AS left_,"
        " SUM(CASE WHEN m.state IN ('queued', 'sending') THEN m.segments ELSE 0 END) AS parts_left"
        " FROM send_list l JOIN message m ON m.send_list_id = l.id WHERE l.state = 'active'"
        " AND l.id >= (SELECT COALESCE(MIN(send_list_id), 0) FROM message WHERE state IN ('queued', 'sending'))"
        " GROUP BY l.id HAVING left_ > 0 ORDER BY l.id LIMIT 1").fetchone()
    if row is None:
        return None
    return {"id": row["id"], "name": row["name"], "done": row["total"] - row["left_"], "total": row["total"],
            "parts_left": row["parts_left"], "minutes_left": left(row["parts_left"])}


def failures_by_reason(db: Database, since: float, limit: int = 5) -> list[dict]:
    """Messages failed since ``since``, grouped by reason, most recent reason first."""
    rows = db.execute("SELECT error, COUNT(*) AS n, MAX(finished_at) AS at FROM message WHERE state = 'failed'"
                      " AND finished_at > ? GROUP BY error ORDER BY at DESC LIMIT ?", (since, limit)).fetchall()
    return [{"error": unstored(r["error"]), "count": r["n"]} for r in rows]
