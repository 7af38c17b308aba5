"""Reading send lists: what shops upload, as it really comes.

CSV exported by Excel in GBK, UTF-8 with or without a BOM, UTF-16 "Unicode
text"; XLSX (read by calamine, or streamed by openpyxl when it is big); a header row whose phone
column is called 手机 / 手机号 / 电话 / phone / mobile / number, or no
header at all. Every other column becomes a merge field for templates.

Rows are streamed: a 100,000-row file is never held in memory whole. Each
row comes with the row number the shop sees in Excel, so a refused row can
be found and fixed.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator

import charset_normalizer

from appliance.errors import SendListError
from appliance.text import say

#: The most an .xlsx may unpack to (its XML): a million rows of a few columns come to about this.
XLSX_MAX_EXPANDED = 400 * 2**20
#: The most an .xlsx may unpack to and still be read by calamine, which holds the sheet (about 40 MB of
#: memory per 25 MB of XML: 200,000 rows of a few columns); bigger ones are streamed by openpyxl.
CALAMINE_MAX = 64 * 2**20
PHONE_HEADERS = ("手机", "手机号", "手机号码", "电话", "电话号码", "联系电话", "号码", "phone", "mobile",
                 "number", "phone number", "mobile number", "tel", "cell")
SAMPLE_BYTES = 64 * 1024
#: Candidates for a CSV that is not UTF-8; charset-normalizer picks among them.
ENCODINGS = ["gb18030", "big5", "utf_16", "cp1252"]
_GB = {"gb2312", "gbk", "cp936", "hz", "gb18030"}

XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0"


@dataclass
class Table:
    """A send list opened for reading: its columns, and its rows one at a time."""

    name: str
    columns: list[str]
    phone_column: int
    encoding: str | None
    rows: Iterator[tuple[int, list[str]]] = field(repr=False)
    """(row number in the file, 1-based, cells as text)."""
    _close: list = field(default_factory=list, repr=False)

    @property
    def merge_fields(self) -> list[str]:
        return [c for i, c in enumerate(self.columns) if i != self.phone_column and c]

    def close(self) -> None:
        for f in self._close:
            f.close()

    def __enter__(self) -> "Table":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def header_key(text: str) -> str:
    """How a column name is compared: full-width folded, case and spaces ignored."""
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def open_table(path: str | os.PathLike, *, name: str | None = None) -> Table:
    """Open a CSV or XLSX send list; raises SendListError with what to do if it cannot be read."""
    path = Path(path)
    name = name or path.name
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise SendListError(say("cannot read {name}: {exc}", name=name, exc=exc.strerror or exc)) from None
    head = f.read(8)
    f.seek(0)
    if head.startswith(XLSX_MAGIC):
        f.close()
        return _open_xlsx(path, name)
    if head.startswith(XLS_MAGIC):
        f.close()
        raise SendListError(say("{name} is an old Excel .xls file: open it in Excel or WPS and save it as .xlsx "
                                "or CSV, then upload that", name=name))
    return _open_csv(f, name)


def count_rows(path: str | os.PathLike) -> int | None:
    """Rows a CSV list has, counted fast (line ends, not rows) so progress can say what is left; None for
    an Excel file or what cannot be read (its rows are counted as they are read)."""
    try:
        with open(path, "rb") as f:
            if f.read(4).startswith((XLSX_MAGIC, XLS_MAGIC)):
                return None
            f.seek(0)
            return max(0, sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b"")) - 1) or None
    except OSError:
        return None


# --- CSV ------------------------------------------------------------------------------------


def detect_encoding(sample: bytes, name: str = "the file") -> str:
    """The text encoding of a CSV from its first bytes: BOM, then UTF-8, then charset-normalizer."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    cut = sample.rfind(b"\n")
    whole = sample[:cut + 1] if 0 <= cut and len(sample) == SAMPLE_BYTES else sample
    text = whole.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    if not bad:
        return "utf-8"
    wide = sum(1 for ch in text if ord(ch) > 0x7F) - bad
    if wide > bad:  # mostly good UTF-8 with a few broken rows: those rows get refused, not the file
        return "utf-8"
    # Lists are mostly digits with a few names, which charset-normalizer finds "chaotic"
    # at its default threshold; among these few candidates a looser one is safe.
    best = charset_normalizer.from_bytes(whole, cp_isolation=ENCODINGS, threshold=0.5).best()
    if best is not None:
        encoding = best.encoding.lower()
        return "gb18030" if encoding in _GB else encoding
    try:  # what a Chinese shop's Excel writes when it is not UTF-8
        whole.decode("gb18030")
        return "gb18030"
    except UnicodeDecodeError:
        raise SendListError(say("cannot tell the text encoding of {name}: save it from Excel or WPS as 'CSV "
                                "UTF-8' and upload again", name=name)) from None


def _open_csv(f: IO[bytes], name: str) -> Table:
    sample = f.read(SAMPLE_BYTES)
    if not sample.strip():
        f.close()
        raise SendListError(say("{name} is empty: it needs one row per customer", name=name))
    if b"\x00" in sample and not sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        f.close()
        raise SendListError(say("{name} is not a text (CSV) or Excel (.xlsx) file", name=name))
    encoding = detect_encoding(sample, name)
    f.seek(0)
    text = io.TextIOWrapper(f, encoding=encoding, errors="replace", newline="")
    try:
        dialect = csv.Sniffer().sniff(sample.decode(encoding, errors="replace")[:8192], delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(text, delimiter=delimiter)
    rows = ((reader.line_num, [cell.strip() for cell in row]) for row in _guard(reader, name))
    return _with_header(rows, name, encoding, [text])


def _guard(reader, name: str):
    try:
        yield from reader
    except csv.Error as exc:
        raise SendListError(say("{name} is not a well-formed CSV near line {num}: {exc}",
                                name=name,
                                num=reader.line_num,
                                exc=exc)) from None


# --- XLSX -------------------------------------------------------------------------------------


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value).strip()


def _check_expansion(path: Path, name: str) -> int:
    """Refuse an .xlsx that would unpack to far more than any list (a zip bomb), or whose XML declares
    entities (a "billion laughs": a spreadsheet never needs a DTD): first by the sizes its index claims,
    before unpacking a byte, then reading it through once in small pieces, since those claims may lie.
    Returns the bytes it unpacks to (0: not a zip at all; the reader says what is wrong with it)."""
    try:
        with zipfile.ZipFile(path) as z:
            declared = sum(info.file_size for info in z.infolist())
            if declared > XLSX_MAX_EXPANDED:
                raise SendListError(say("{name} would expand to {mb:,.0f} MB when opened, more than any send list "
                                        "({most:,.0f} MB at most): it is damaged or not a list; save the list "
                                        "again, or as CSV", name=name, mb=declared / 2**20,
                                        most=XLSX_MAX_EXPANDED / 2**20))
            return _unpacked_size(z, name)
    except SendListError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError, zlib.error):
        return 0


def _unpacked_size(z: zipfile.ZipFile, name: str) -> int:
    refuse = SendListError(f"{name} is not a readable Excel file: it unpacks to more than "
                           f"{XLSX_MAX_EXPANDED / 2**20:,.0f} MB, or declares XML entities, which no list needs; "
                           f"it is damaged or not a list: save the list again as .xlsx, or as CSV")
    expanded = 0
    for info in z.infolist():
        tail = b""
        with z.open(info) as member:
            while chunk := member.read(1 << 20):
                expanded += len(chunk)
                if expanded > XLSX_MAX_EXPANDED or b"<!ENTITY" in tail + chunk or b"<!DOCTYPE" in tail + chunk:
                    raise refuse
                tail = chunk[-16:]
    return expanded


def _open_xlsx(path: Path, name: str) -> Table:
    """Small and middling workbooks (most lists) are read by calamine, a Rust reader, in a fraction of
    openpyxl's time; it holds the sheet in memory, so a workbook unpacking past :data:`CALAMINE_MAX`
    is streamed by openpyxl instead, slower, in bounded memory."""
    expanded = _check_expansion(path, name)
    if 0 < expanded <= CALAMINE_MAX:
        return _open_xlsx_calamine(path, name)
    return _open_xlsx_openpyxl(path, name)


def _open_xlsx_calamine(path: Path, name: str) -> Table:
    from python_calamine import CalamineError, CalamineWorkbook  # noqa: PLC0415 - only when an Excel file comes

    try:
        book = CalamineWorkbook.from_path(str(path))
        sheet = book.get_sheet_by_index(0)
    except (CalamineError, OSError, ValueError, IndexError) as exc:
        raise SendListError(say("{name} is not a readable Excel file ({exc_class_name}): open it in Excel or WPS "
                                "and save it again as .xlsx",
                                name=name,
                                exc_class_name=exc.__class__.__name__)) from None
    skipped = [""] * (sheet.start[1] if sheet.start else 0)  # columns before the first used one, as openpyxl

    def rows():
        for number, values in enumerate(sheet.iter_rows(), start=1):
            yield number, skipped + [_cell_text(v) for v in values]

    return _with_header(rows(), name, None, [book])


def _open_xlsx_openpyxl(path: Path, name: str) -> Table:
    import openpyxl  # noqa: PLC0415 - only when an Excel file comes
    from openpyxl.utils.exceptions import InvalidFileException  # noqa: PLC0415

    f = open(path, "rb")  # a file object: openpyxl would judge a path by its extension, uploads have none
    try:
        book = openpyxl.load_workbook(f, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        f.close()
        raise SendListError(say("{name} is not a readable Excel file ({exc_class_name}): open it in Excel or WPS "
                                "and save it again as .xlsx",
                                name=name,
                                exc_class_name=exc.__class__.__name__)) from None
    sheet = book.worksheets[0]

    def rows():
        try:
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                yield number, [_cell_text(v) for v in values]
        except (zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise SendListError(say("{name} is damaged ({exc_class_name}) and cannot be read to the end: save it "
                                    "again as .xlsx",
                                    name=name,
                                    exc_class_name=exc.__class__.__name__)) from None

    return _with_header(rows(), name, None, [book, f])


# --- the header -------------------------------------------------------------------------------------


def _looks_like_phone(cell: str) -> bool:
    digits = [c for c in cell if c.isdigit()]
    return len(digits) >= 7 and len(digits) >= 0.7 * len(cell.replace(" ", "").replace("-", ""))


def _with_header(rows: Iterator[tuple[int, list[str]]], name: str, encoding: str | None, close: list) -> Table:
    for number, cells in rows:
        if any(cells):
            first = (number, cells)
            break
    else:
        for c in close:
            c.close()
        raise SendListError(say("{name} is empty: it needs one row per customer", name=name))
    _, cells = first
    keys = [header_key(c) for c in cells]
    wanted = [header_key(h) for h in PHONE_HEADERS]
    phone = next((i for w in wanted for i, k in enumerate(keys) if k == w), None)
    if phone is not None:
        columns = [c or f"column {i + 1}" for i, c in enumerate(cells)]
        body = rows
    elif any(_looks_like_phone(c) for c in cells):  # no header row: the first row is a customer
        phone = next(i for i, c in enumerate(cells) if _looks_like_phone(c))
        columns = ["phone" if i == phone else f"column {i + 1}" for i in range(len(cells))]
        body = _chain(first, rows)
    else:
        phone = 0
        columns = [c or f"column {i + 1}" for i, c in enumerate(cells)]
        body = rows
    return Table(name, columns, phone, encoding, body, close)


def _chain(first, rest):
    yield first
    yield from rest
