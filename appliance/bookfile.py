"""The customer book to and from files: an import shows what it would change before it changes anything.

An import reads the same files a send list does (CSV in GBK or UTF-8, XLSX;
appliance/sendlist.py finds the phone column the same way) and names the
rest by their headers: 姓名/name, 生日/birthday, 标签/分组/tags; every other
column becomes a field of the shop's own (会员等级, 积分 ...). Each row is
new, updated, unchanged or refused with its row number and reason; the
preview counts them and keeps the first refusals, and applying writes the
same decisions in batches (a 100,000-row file in bounded memory).

Consent is not in a file's columns: a file cannot prove it. An import may
carry the shop's attestation ("these customers signed our paper form..."),
recorded as each new customer's evidence with who attested and the file's
SHA-256; without one, imported customers' consent stays unknown (or
refused, for those who refused before).

An export writes the book as CSV (UTF-8 with a BOM, which Excel opens) or
XLSX, with the spreadsheet formula guard of the record's export.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Callable, Iterator

from appliance import phones
from appliance.audit import safe_cell
from appliance.book import BIRTHDAY, NAME, NUMBER, Book, parse_birthday, split_tags
from appliance.clock import Clock
from appliance.consent import GIVEN
from appliance.db import Database
from appliance.errors import CustomerError
from appliance.sendlist import header_key, open_table
from appliance.text import message_of, say

NAME_HEADERS = ("姓名", "名字", "客户", "客户姓名", "称呼", "name", "customer")
BIRTHDAY_HEADERS = ("生日", "出生日期", "birthday", "birth date", "dob")
TAG_HEADERS = ("标签", "分组", "组", "tags", "tag", "group", "groups")
NEW, UPDATED, UNCHANGED, REFUSED = "new", "updated", "unchanged", "refused"
REFUSED_KEPT = 200
BATCH = 2000


@dataclass
class ImportPreview:
    name: str
    columns: dict
    """What each of the file's columns became: "number", "name", "birthday", "tags" or "field"."""
    counts: Counter = field(default_factory=Counter)
    refused_rows: list[dict] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)
    attested: int = 0

    def as_dict(self) -> dict:
        return {"list": self.name, "columns": self.columns, "new": self.counts[NEW],
                "updated": self.counts[UPDATED], "unchanged": self.counts[UNCHANGED],
                "refused": self.counts[REFUSED], "refused_rows": self.refused_rows, "samples": self.samples,
                "consent_attested": self.attested}


def _roles(columns: list[str], phone: int) -> dict[int, str]:
    roles = {phone: "number"}
    for role, names in (("name", NAME_HEADERS), ("birthday", BIRTHDAY_HEADERS), ("tags", TAG_HEADERS)):
        wanted = {header_key(h) for h in names}
        found = next((i for i, c in enumerate(columns) if i not in roles and header_key(c) in wanted), None)
        if found is not None:
            roles[found] = role
    for i in range(len(columns)):
        roles.setdefault(i, "field")
    return roles


def file_digest(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class BookImport:
    """Reads a file of customers; :meth:`preview` decides, :meth:`apply` decides again and writes."""

    def __init__(self, db: Database, clock: Clock, *, region: str = "CN"):
        self.db = db
        self.clock = clock
        self.region = region
        self.book = Book(db, clock)

    def preview(self, path, *, name: str | None = None, attestation: str = "") -> ImportPreview:
        return self._run(path, name=name, attestation=attestation, by="", write=False)

    def apply(self, path, *, by: str, name: str | None = None, attestation: str = "",
              progress: Callable[[int], None] | None = None) -> ImportPreview:
        return self._run(path, name=name, attestation=attestation, by=by, write=True, progress=progress)

    def _run(self, path, *, name, attestation: str, by: str, write: bool, progress=None) -> ImportPreview:
        attestation = " ".join(attestation.split())
        reference = f"{attestation} (file sha256 {file_digest(path)[:16]})" if attestation else ""
        with open_table(path, name=name) as table:
            roles = _roles(table.columns, table.phone_column)
            out = ImportPreview(table.name, {table.columns[i] or f"column {i + 1}": r for i, r in roles.items()})
            seen: set[int] = set()
            batch: list[tuple] = []
            for row_no, cells in table.rows:
                if not any(c.strip() for c in cells):
                    continue
                decided = self._decide(row_no, cells, table.columns, roles, seen, out)
                if decided is None:
                    continue
                if write:
                    batch.append(decided)
                    if len(batch) >= BATCH:
                        self._write(batch, by, reference, out)
                        if progress is not None:
                            progress(sum(out.counts.values()))
                elif reference and decided[-1] == NEW:
                    out.attested += 1
            if write:
                self._write(batch, by, reference, out)
        return out

    def _decide(self, row_no: int, cells: list[str], columns: list[str], roles: dict, seen: set, out) -> tuple | None:
        """One row: (number, name, birthday, fields, tags, what it does), or None when refused."""
        def refuse(value: str, why: str) -> None:
            out.counts[REFUSED] += 1
            if len(out.refused_rows) < REFUSED_KEPT:
                out.refused_rows.append({"row": row_no, "value": value, "reason": why})

        values = {"name": "", "birthday": "", "tags": ""}
        fields = {}
        for i, role in roles.items():
            cell = cells[i].strip() if i < len(cells) else ""
            if role == "field":
                if cell and columns[i]:
                    fields[columns[i]] = cell
            else:
                values[role] = cell
        raw = values.pop("number", "")
        try:
            number = phones.normalise(raw, self.region).e164
        except phones.NumberProblem as problem:
            return refuse(raw, message_of(problem))
        if int(number[1:]) in seen:
            return refuse(raw, say("the number is already in the file"))
        seen.add(int(number[1:]))
        try:
            birthday = parse_birthday(values["birthday"])
            tags = split_tags(values["tags"])
        except CustomerError as exc:
            return refuse(raw, message_of(exc))
        what = self._compare(number, values["name"], birthday, fields, tags)
        out.counts[what] += 1
        if len(out.samples) < 5:
            out.samples.append({"row": row_no, "number": number, "name": values["name"], "what": what})
        return number, values["name"], birthday, fields, tags, what

    def _compare(self, number: str, name: str, birthday: str, fields: dict, tags: list[str]) -> str:
        row = self.db.execute("SELECT name, birthday, fields FROM customer WHERE number = ?", (number,)).fetchone()
        if row is None:
            return NEW
        have_tags = {r[0] for r in self.db.execute("SELECT tag FROM customer_tag WHERE number = ?", (number,))}
        same = ((not name or name == row["name"]) and (not birthday or birthday == row["birthday"])
                and all(json.loads(row["fields"]).get(k) == v for k, v in fields.items())
                and set(tags) <= have_tags)
        return UNCHANGED if same else UPDATED

    def _write(self, batch: list[tuple], by: str, reference: str, out: ImportPreview) -> None:
        """A batch of decided rows in one transaction: an update keeps what the file leaves empty. A new
        customer is one insert (and its consent event, attested); a number someone added meanwhile is
        updated instead."""
        if not batch:
            return
        now = self.clock.time()
        with self.db.atomic() as conn:
            for number, name, birthday, fields, tags, what in batch:
                if what == UNCHANGED:
                    continue
                if what == NEW and self._insert(conn, (number, name, birthday, fields, tags), by, now, reference):
                    out.attested += bool(reference)
                    continue
                old = conn.execute("SELECT fields FROM customer WHERE number = ?", (number,)).fetchone()
                merged = {**(json.loads(old[0]) if old else {}), **fields}
                have = [r[0] for r in conn.execute("SELECT tag FROM customer_tag WHERE number = ?", (number,))]
                self.book.write(conn, number, by=by, name=name or None, birthday=birthday or None, fields=merged,
                                tags=list(dict.fromkeys(have + tags)))
        batch.clear()

    @staticmethod
    def _insert(conn, row: tuple, by: str, now: float, reference: str) -> bool:
        """A new customer (with its tags, and the attested consent as its first event) in a few statements;
        False, with nothing written, if the number is in the book after all."""
        number, name, birthday, fields, tags = row
        if conn.execute("SELECT 1 FROM customer WHERE number = ?", (number,)).fetchone():
            return False
        event = None
        if reference:
            event = conn.execute(
                "INSERT INTO consent_event (number, at, state, source, reference, recorded_by)"
                " VALUES (?, ?, 'given', 'import-attested', ?, ?)", (number, now, reference, by)).lastrowid
        conn.execute(
            "INSERT INTO customer (number, name, birthday, fields, consent, consent_event, created_at, created_by,"
            " updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (number, name, birthday, json.dumps(fields, ensure_ascii=False), GIVEN if reference else "unknown",
             event, now, by, now, by))
        if tags:
            conn.executemany("INSERT OR IGNORE INTO customer_tag (number, tag) VALUES (?, ?)",
                             [(number, t) for t in tags])
        return True


def _export_rows(book: Book, tag: str | None) -> tuple[list[str], Iterator[list]]:
    """The export's header, and each customer (of ``tag``) as its cells, formula-safe, streamed."""
    fields = book.field_names()

    def rows():
        for r in book.rows(tag=tag):
            own = json.loads(r["fields"])
            yield [safe_cell(v) for v in (r["number"], r["name"], r["birthday"], r["tags"] or "", r["consent"],
                                          *(own.get(f, "") for f in fields))]

    return [NUMBER, NAME, BIRTHDAY, "标签", "同意状态", *fields], rows()


def export(book: Book, out: IO[str], *, tag: str | None = None) -> int:
    """The book (or one tag's customers) as CSV, formula-safe; how many customers."""
    writer = csv.writer(out)
    header, rows = _export_rows(book, tag)
    writer.writerow(header)
    n = 0
    for cells in rows:
        writer.writerow(cells)
        n += 1
    return n


def export_xlsx(book: Book, path: str | os.PathLike, *, tag: str | None = None) -> int:
    """The same as :func:`export`, as an .xlsx written row by row (openpyxl's write-only mode)."""
    from openpyxl import Workbook  # noqa: PLC0415 - only an XLSX export needs it

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("customers")
    header, rows = _export_rows(book, tag)
    ws.append(header)
    n = 0
    for cells in rows:
        ws.append(cells)
        n += 1
    wb.save(path)
    return n
