"""The shop's saved message templates: a name and a text with merge fields, ready for the next send.

A saved template is checked when it is saved (its braces and fields,
appliance/template.py), so a send that uses it fails only for what the
list lacks, never for a typo made weeks ago. The fields it may use are the
book's (姓名, 生日 and the shop's own) or a list's columns.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.clock import Clock
from appliance.db import Database
from appliance.errors import TemplateError
from appliance.template import Template
from appliance.text import say


@dataclass(frozen=True)
class Saved:
    id: int
    name: str
    text: str
    created_at: float
    created_by: str

    @property
    def fields(self) -> list[str]:
        return Template(self.text).fields


class SavedTemplates:
    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock

    def save(self, name: str, text: str, *, by: str) -> int:
        """Add a template, or replace the text of the one with this name; its id."""
        name = " ".join(name.split())
        if not 1 <= len(name) <= 40:
            raise TemplateError(say("a saved template's name is 1 to 40 characters"))
        Template(text)  # an empty text, an unmatched brace or a bad field fails now
        with self.db.atomic() as conn:
            return conn.execute("INSERT INTO saved_template (name, text, created_at, created_by) VALUES (?, ?, ?, ?)"
                                " ON CONFLICT (name) DO UPDATE SET text = excluded.text RETURNING id",
                                (name, text, self.clock.time(), by)).fetchone()[0]

    def all(self) -> list[Saved]:
        return [Saved(**dict(r)) for r in self.db.execute("SELECT * FROM saved_template ORDER BY name")]

    def get(self, tid: int) -> Saved | None:
        row = self.db.execute("SELECT * FROM saved_template WHERE id = ?", (tid,)).fetchone()
        return Saved(**dict(row)) if row else None

    def delete(self, tid: int) -> bool:
        with self.db.atomic() as conn:
            return conn.execute("DELETE FROM saved_template WHERE id = ?", (tid,)).rowcount == 1
