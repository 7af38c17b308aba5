"""Sends that come back: birthday greetings, and a group's list monthly or weekly.

A recurring send is a template, a group (a tag, or every customer) and a
time: ``birthday`` runs every day at its hour for the customers born that
day (29 February's in a year without one on the 28th), ``monthly`` on a day
of the month (the 31st runs on a short month's last day), ``weekly`` on a
weekday (0 = Monday). Times are the box's local time.

Each run is priced first, the same way an uploaded list is (the consent
gate, the forbidden words, the signature and footer, the cost): when the
credit is short, or no customer can get it (nobody born today, the gate
refuses everyone), it is skipped with the reason, which the page and the
counter panel show as an alert; else it is queued as a list like any other
(quiet hours and caps apply as they do to every list). A run's row is
written before its list is queued, one per send and local day, and the list
carries the key of the send and the day (exactly once, appliance/intake.py):
a restart never sends a run twice.
"""

from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass
from datetime import date, datetime

from appliance.book import BIRTHDAY, Book
from appliance.clock import Clock
from appliance.db import Database
from appliance.errors import SmsGenieError
from appliance.messages import KINDS
from appliance.sendlist import Table
from appliance.template import Template
from appliance.text import message_of, say, stored

log = logging.getLogger(__name__)

EVERY = ("birthday", "monthly", "weekly")
#: Skipped runs younger than this are alerts on the page and the panel.
ALERT_HOURS = 24


@dataclass(frozen=True)
class Recurring:
    id: int
    name: str
    every: str
    day: int | None
    at_minute: int
    tag: str | None
    template: str
    kind: str
    enabled: bool
    created_by: str = ""

    @property
    def at(self) -> str:
        return f"{self.at_minute // 60:02d}:{self.at_minute % 60:02d}"

    def due_on(self, day: date) -> bool:
        if self.every == "birthday":
            return True
        if self.every == "weekly":
            return day.weekday() == self.day
        last = calendar.monthrange(day.year, day.month)[1]
        return day.day == min(self.day or 1, last)


def born_on(day: date) -> tuple[str, ...]:
    """The birthdays (MM-DD) greeted on ``day``: 29 February's on the 28th when the year has no 29th."""
    days = (f"{day.month:02d}-{day.day:02d}",)
    if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
        days += ("02-29",)
    return days


def parse_at(text: str) -> int:
    try:
        hour, minute = (int(p) for p in str(text).strip().split(":"))
        if 0 <= hour < 24 and 0 <= minute < 60:
            return hour * 60 + minute
    except ValueError:
        pass
    raise SmsGenieError(say("{text!r} is not a time of day: write it like 09:30", text=text))


class RecurringSends:
    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock

    def add(self, name: str, every: str, template: str, *, at: str, by: str, day: int | None = None,
            tag: str | None = None, kind: str = "marketing") -> int:
        if every not in EVERY:
            raise SmsGenieError(say("a recurring send is every birthday, monthly or weekly"))
        if kind not in KINDS:
            raise SmsGenieError(say("a send is marketing or transactional"))
        if every == "monthly" and not (isinstance(day, int) and 1 <= day <= 31):
            raise SmsGenieError(say("a monthly send needs its day of the month, 1 to 31"))
        if every == "weekly" and not (isinstance(day, int) and 0 <= day <= 6):
            raise SmsGenieError(say("a weekly send needs its weekday, 0 (Monday) to 6 (Sunday)"))
        if not name.strip():
            raise SmsGenieError(say("give the recurring send a name"))
        Template(template)  # a template with a bad brace fails now, not on the day
        with self.db.atomic() as conn:
            return conn.execute(
                "INSERT INTO recurring (name, every, day, at_minute, tag, template, kind, created_at, created_by)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name.strip(), every, day if every != "birthday" else None, parse_at(at), tag or None, template,
                 kind, self.clock.time(), by)).lastrowid

    def all(self) -> list[Recurring]:
        return [Recurring(r["id"], r["name"], r["every"], r["day"], r["at_minute"], r["tag"], r["template"],
                          r["kind"], bool(r["enabled"]), r["created_by"])
                for r in self.db.execute("SELECT * FROM recurring ORDER BY id")]

    def set_enabled(self, rid: int, enabled: bool) -> None:
        with self.db.atomic() as conn:
            conn.execute("UPDATE recurring SET enabled = ? WHERE id = ?", (int(enabled), rid))

    def delete(self, rid: int) -> None:
        with self.db.atomic() as conn:
            conn.execute("DELETE FROM recurring WHERE id = ?", (rid,))

    def runs(self, limit: int = 50) -> list[dict]:
        return [dict(r) for r in self.db.execute(
            "SELECT r.*, s.name FROM recurring_run r JOIN recurring s ON s.id = r.recurring_id"
            " ORDER BY r.id DESC LIMIT ?", (limit,))]

    def alerts(self) -> list[dict]:
        """Runs skipped in the last day: the shop must see that a greeting did not go, and why."""
        since = self.clock.time() - ALERT_HOURS * 3600
        return [dict(r) for r in self.db.execute(
            "SELECT r.id, r.day, r.reason, s.name FROM recurring_run r JOIN recurring s ON s.id = r.recurring_id"
            " WHERE r.outcome = 'skipped' AND r.at >= ? ORDER BY r.id DESC", (since,))]

    # --- running ----------------------------------------------------------------------------

    def table(self, r: Recurring, day: date) -> Table:
        """Who a run goes to: the group's customers, or those born on ``day``."""
        book = Book(self.db, self.clock)
        table = book.table(tag=r.tag, name=f"{r.name} {day.isoformat()}")
        if r.every != "birthday":
            return table
        days = born_on(day)
        birthday = table.columns.index(BIRTHDAY)
        table.rows = ((n, cells) for n, cells in table.rows if cells[birthday][-5:] in days)
        return table

    def run_due(self, intake) -> list[dict]:
        """Run every enabled send due now that has not run today (the daemon calls this between sends)."""
        now = datetime.fromtimestamp(self.clock.time())
        today = now.date()
        done = []
        for r in self.all():
            if not r.enabled or not r.due_on(today) or now.hour * 60 + now.minute < r.at_minute:
                continue
            if self.db.execute("SELECT 1 FROM recurring_run WHERE recurring_id = ? AND day = ?",
                               (r.id, today.isoformat())).fetchone():
                continue
            done.append(self.run(r, today, intake))
        return done

    def run(self, r: Recurring, day: date, intake) -> dict:
        """Price the run, then queue it or skip it with the reason; its row says which."""
        with self.db.atomic() as conn:
            run_id = conn.execute("INSERT INTO recurring_run (recurring_id, day, at, outcome, reason)"
                                  " VALUES (?, ?, ?, 'skipped', ?)",
                                  (r.id, day.isoformat(), self.clock.time(), "interrupted")).lastrowid
        try:
            outcome = self._run(r, day, intake)
        except SmsGenieError as exc:
            outcome = {"outcome": "skipped", "reason": stored(message_of(exc))}
        with self.db.atomic() as conn:
            conn.execute("UPDATE recurring_run SET outcome = ?, send_list_id = ?, messages = ?, credits = ?,"
                         " reason = ? WHERE id = ?",
                         (outcome["outcome"], outcome.get("send_list_id"), outcome.get("messages", 0),
                          outcome.get("credits", 0), outcome.get("reason", ""), run_id))
        log.info("recurring send %r for %s: %s", r.name, day, outcome)
        return {"id": run_id, "name": r.name, **outcome}

    def _run(self, r: Recurring, day: date, intake) -> dict:
        shop = intake.settings()
        template = intake.template(r.template, shop=shop, kind=r.kind)
        preview = intake.check_table(self.table(r, day), template, shop=shop, kind=r.kind).preview
        if not preview.accepted:
            why = (say("nobody to send to: no customer was born today") if r.every == "birthday" and not
                   preview.refused else
                   say("nobody can get it: {n} customers refused ({reasons})", n=preview.refused,
                       reasons=", ".join(f"{k} {v}" for k, v in preview.refused_by_reason.items())))
            return {"outcome": "skipped", "reason": stored(why)}
        if not preview.enough_credit:
            return {"outcome": "skipped", "credits": preview.credits_needed, "reason": stored(say(
                "credit short: it needs {need} credits and {have} are left; top up", need=preview.credits_needed,
                have=preview.balance))}
        queued, preview = intake.queue_table(self.table(r, day), r.template, kind=r.kind,
                                             by=r.created_by, key=f"recurring:{r.id}:{day.isoformat()}")
        if queued is None:
            return {"outcome": "skipped", "reason": "nobody could get it when it was queued"}
        return {"outcome": "queued", "send_list_id": queued.list_id, "messages": queued.count,
                "credits": preview.credits_needed}
