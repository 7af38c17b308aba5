"""The customer book: the shop's customers, one per mobile number, with tags, a birthday and its own fields.

A customer is a number in E.164 (phonenumbers), a name, tags (groups such
as 会员 or VIP), a birthday (with or without the year) and the fields the
shop names itself (会员等级, 积分 ...), which templates use as merge fields
like the columns of a send list. Each row says who made it and who last
changed it. Its consent state and evidence are appliance/consent.py's.

A group send reads the book as a send list (:meth:`Book.table`): the same
preview, checks and prices as an uploaded file, streamed from SQLite.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import date
from typing import Iterator

from appliance.clock import Clock
from appliance.consent import Consent, Event
from appliance.db import Database
from appliance.errors import CustomerError, CustomerNotFound
from appliance.sendlist import Table
from appliance.text import say

#: The column a group send's table has the number in, and the fields every customer has.
NUMBER, NAME, BIRTHDAY = "手机号", "姓名", "生日"
TAG_RE = re.compile(r"^[^\s,，;；]{1,20}$")
_BIRTHDAY = re.compile(r"^\s*(?:(\d{4})\s*[-/.年]\s*)?(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*$")
MAX_FIELDS = 20


def parse_birthday(text: str) -> str:
    """A birthday as shops write it (1990-03-05, 1990/3/5, 3月5日, 03-05) as "YYYY-MM-DD" or "MM-DD"."""
    text = (text or "").strip()
    if not text:
        return ""
    m = _BIRTHDAY.match(text)
    if m is None:
        raise CustomerError(say("{text!r} is not a birthday: write it like 1990-03-05 or 3月5日", text=text))
    year, month, day = (int(g) if g else None for g in m.groups())
    try:
        date(year or 2000, month, day)  # 2000: a leap year, so 2月29日 is a birthday
    except ValueError:
        raise CustomerError(say("{text!r} is not a date", text=text)) from None
    return f"{year:04d}-{month:02d}-{day:02d}" if year else f"{month:02d}-{day:02d}"


def check_tag(tag: str) -> str:
    tag = (tag or "").strip()
    if not TAG_RE.match(tag):
        raise CustomerError(say("a tag is 1 to 20 characters without spaces or commas, e.g. 会员"))
    return tag


def split_tags(text: str) -> list[str]:
    """Tags as a cell holds them: "会员, VIP；老客" -> ["会员", "VIP", "老客"]."""
    return [check_tag(t) for t in re.split(r"[\s,，;；、]+", text or "") if t.strip()]


@dataclass
class Customer:
    id: int
    """The row's id: what the page's addresses carry, so a number never appears in a URL or a log."""
    number: str
    name: str = ""
    birthday: str = ""
    fields: dict = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    consent: str = "unknown"
    evidence: Event | None = None
    created_at: float = 0.0
    created_by: str = ""
    updated_at: float = 0.0
    updated_by: str = ""


class Book:
    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock

    def _customer(self, row: sqlite3.Row, with_evidence: bool = False) -> Customer:
        tags = [r[0] for r in self.db.execute("SELECT tag FROM customer_tag WHERE number = ? ORDER BY tag",
                                              (row["number"],))]
        evidence = Consent(self.db, self.clock).evidence(row["number"]) if with_evidence else None
        return Customer(row["id"], row["number"], row["name"], row["birthday"], json.loads(row["fields"]), tags,
                        row["consent"], evidence, row["created_at"], row["created_by"], row["updated_at"],
                        row["updated_by"])

    def get(self, number: str) -> Customer:
        row = self.db.execute("SELECT rowid AS id, * FROM customer WHERE number = ?", (number,)).fetchone()
        if row is None:
            raise CustomerNotFound(say("no customer with the number {number} in the book", number=number))
        return self._customer(row, with_evidence=True)

    def by_id(self, cid: int) -> Customer:
        row = self.db.execute("SELECT rowid AS id, * FROM customer WHERE rowid = ?", (cid,)).fetchone()
        if row is None:
            raise CustomerNotFound(say("no such customer in the book (erased?)"))
        return self._customer(row, with_evidence=True)

    def save(self, number: str, *, by: str, name: str | None = None, birthday: str | None = None,
             fields: dict | None = None, tags: list[str] | None = None) -> Customer:
        """Add the customer or change what is given (None: left as it is); one transaction."""
        with self.db.atomic() as conn:
            self.write(conn, number, by=by, name=name, birthday=birthday, fields=fields, tags=tags)
        return self.get(number)

    def write(self, conn: sqlite3.Connection, number: str, *, by: str, name: str | None = None,
              birthday: str | None = None, fields: dict | None = None, tags: list[str] | None = None) -> None:
        """:meth:`save` in the caller's transaction (an import writes many in one)."""
        now = self.clock.time()
        if birthday is not None:
            birthday = parse_birthday(birthday)
        if fields is not None:
            fields = {str(k).strip(): str(v).strip() for k, v in fields.items() if str(k).strip()}
            if len(fields) > MAX_FIELDS:
                raise CustomerError(say("a customer has at most {n} fields of the shop's own", n=MAX_FIELDS))
        conn.execute("INSERT INTO customer (number, created_at, created_by, updated_at, updated_by)"
                     " VALUES (?, ?, ?, ?, ?) ON CONFLICT (number) DO NOTHING", (number, now, by, now, by))
        conn.execute(
            "UPDATE customer SET name = COALESCE(?, name), birthday = COALESCE(?, birthday),"
            " fields = COALESCE(?, fields), updated_at = ?, updated_by = ? WHERE number = ?",
            (None if name is None else name.strip(), birthday,
             None if fields is None else json.dumps(fields, ensure_ascii=False), now, by, number))
        if tags is not None:
            conn.execute("DELETE FROM customer_tag WHERE number = ?", (number,))
            conn.executemany("INSERT OR IGNORE INTO customer_tag (number, tag) VALUES (?, ?)",
                             [(number, check_tag(t)) for t in tags])

    def tag(self, numbers: list[str], tag: str, *, by: str, remove: bool = False) -> int:
        """Add (or remove) one tag on many customers at once; how many changed."""
        tag = check_tag(tag)
        now = self.clock.time()
        changed = 0
        with self.db.atomic() as conn:
            for number in numbers:
                if remove:
                    n = conn.execute("DELETE FROM customer_tag WHERE number = ? AND tag = ?", (number, tag)).rowcount
                else:
                    if conn.execute("SELECT 1 FROM customer WHERE number = ?", (number,)).fetchone() is None:
                        raise CustomerNotFound(say("no customer with the number {number} in the book",
                                                   number=number))
                    n = conn.execute("INSERT OR IGNORE INTO customer_tag (number, tag) VALUES (?, ?)",
                                     (number, tag)).rowcount
                if n:
                    changed += 1
                    conn.execute("UPDATE customer SET updated_at = ?, updated_by = ? WHERE number = ?",
                                 (now, by, number))
        return changed

    def tags(self) -> list[tuple[str, int]]:
        """Every tag and how many customers carry it."""
        return [(r[0], r[1]) for r in self.db.execute(
            "SELECT tag, COUNT(*) FROM customer_tag GROUP BY tag ORDER BY tag")]

    def field_names(self) -> list[str]:
        """The shop's own fields, as the customers have them (the merge fields a group send offers)."""
        names: dict[str, None] = {}
        for (fields,) in self.db.execute("SELECT DISTINCT fields FROM customer WHERE fields != '{}' LIMIT 1000"):
            names.update(dict.fromkeys(json.loads(fields)))
        return list(names)

    def _where(self, query: str, tag: str | None, consent: str | None) -> tuple[str, list]:
        where, args = [], []
        if query.strip():
            where.append("(c.number LIKE ? OR c.name LIKE ?)")
            args += [f"%{query.strip()}%"] * 2
        if tag:
            where.append("c.number IN (SELECT number FROM customer_tag WHERE tag = ?)")
            args.append(tag)
        if consent:
            where.append("c.consent = ?")
            args.append(consent)
        return (" WHERE " + " AND ".join(where)) if where else "", args

    def search(self, query: str = "", *, tag: str | None = None, consent: str | None = None, limit: int = 50,
               offset: int = 0) -> tuple[list[Customer], int]:
        """One page of customers whose number or name contains ``query`` (and carry ``tag``), and the total."""
        where, args = self._where(query, tag, consent)
        total = self.db.execute(f"SELECT COUNT(*) FROM customer c{where}", args).fetchone()[0]
        rows = self.db.execute(f"SELECT c.rowid AS id, * FROM customer c{where} ORDER BY c.updated_at DESC, c.number"
                               " LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()
        return [self._customer(r) for r in rows], total

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM customer").fetchone()[0]

    def rows(self, *, tag: str | None = None, numbers: list[str] | None = None) -> Iterator[sqlite3.Row]:
        """Every customer (of ``tag``), streamed in number order, with its tags joined by commas."""
        where, args = self._where("", tag, None)
        sql = (f"SELECT c.*, (SELECT group_concat(tag, ',') FROM customer_tag t WHERE t.number = c.number) AS tags"
               f" FROM customer c{where} ORDER BY c.number")
        conn = sqlite3.connect(f"file:{self.db.path}?mode=ro", uri=True)  # its own reader: never holds the writer
        conn.row_factory = sqlite3.Row
        try:
            yield from conn.execute(sql, args)
        finally:
            conn.close()

    def table(self, *, tag: str | None = None, name: str = "") -> Table:
        """The book (or one tag's customers) as a send list: the number, name, birthday and the shop's
        fields as columns (merge fields {姓名}, {积分}...), rows streamed."""
        extra = self.field_names()
        columns = [NUMBER, NAME, BIRTHDAY, *extra]

        def rows():
            for n, r in enumerate(self.rows(tag=tag), 1):
                fields = json.loads(r["fields"])
                yield n, [r["number"], r["name"], r["birthday"], *(fields.get(f, "") for f in extra)]

        return Table(name=name or (say("group {tag}", tag=tag) if tag else say("all customers")),
                     columns=columns, phone_column=0, encoding=None, rows=rows())
