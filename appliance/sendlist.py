"""Reading a send list: a CSV with a header row and a column of phone numbers.

This is the core's simple reader: the phone column is the one named phone /
mobile / number / 手机 / 手机号 / 电话 (or the first column), numbers are
tidied to E.164, and every row that cannot be used is reported with its row
number and the reason. (Excel files, GBK detection, merge fields and the
compliance screen come with the send-list issue.)
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field

from appliance.errors import SendListError

PHONE_HEADERS = ("phone", "mobile", "number", "手机", "手机号", "手机号码", "电话", "电话号码")


@dataclass
class RowProblem:
    row: int
    value: str
    reason: str


@dataclass
class SendList:
    name: str
    column: str
    numbers: list[str] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)


def normalise_number(raw: str, default_country: str = "86") -> str | None:
    """'138 0013 8000', '+86-138-0013-8000', '008613800138000' -> '+8613800138000'; None if not a number."""
    s = raw.strip().replace(" ", "").replace("-", "").replace("(", "").replace(")", "").replace("\u3000", "")
    if s.startswith("00"):
        s = "+" + s[2:]
    plus = s.startswith("+")
    digits = s[1:] if plus else s
    if not digits.isdigit() or not digits.isascii():
        return None
    if plus:
        return "+" + digits if 7 <= len(digits) <= 15 else None
    if default_country == "86" and len(digits) == 13 and digits.startswith("86"):
        return "+" + digits
    if default_country == "86" and len(digits) == 11 and digits.startswith("1"):
        return "+86" + digits
    return None


def read_csv(path: str | os.PathLike) -> SendList:
    """Read ``path``; raises SendListError if it is not a usable CSV at all."""
    try:
        raw = open(path, "rb").read()
    except OSError as exc:
        raise SendListError(f"cannot read {path}: {exc.strerror or exc}") from None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # gb18030 decodes any byte string, so this is unreachable; kept for clarity
        raise SendListError(f"{path} is not UTF-8 or GBK text")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise SendListError(f"{path} is empty: it needs a header row and one row per customer")
    header = [h.strip() for h in rows[0]]
    lowered = [h.lower() for h in header]
    col = next((i for i, h in enumerate(lowered) if h in PHONE_HEADERS), 0)
    result = SendList(name=os.path.basename(str(path)), column=header[col])
    seen: set[str] = set()
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        value = row[col].strip() if col < len(row) else ""
        number = normalise_number(value)
        if number is None:
            why = "no phone number" if not value else "not a phone number"
            result.problems.append(RowProblem(lineno, value, why))
        elif number in seen:
            result.problems.append(RowProblem(lineno, value, "duplicate"))
        else:
            seen.add(number)
            result.numbers.append(number)
    return result
