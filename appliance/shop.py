"""Who the shop is, as the message record names it: its name and its registration or licence number.

The service agreement makes the shop answer for every message it sends, so
each row of the record (appliance/audit.py) carries the shop's identity as it
was when the row was written. Set at first-run set-up, changed by an admin.

Kept in the database (the ``kv`` table), not the settings document: the
record copies it inside the transaction that writes a row, and a backup of
the database takes it along.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from typing import NamedTuple

from appliance import kv
from appliance.db import Database
from appliance.errors import SettingsError
from appliance.text import Text, say

NAME_MAX = 40
LICENCE_MAX = 40


class Shop(NamedTuple):
    name: str = ""
    licence: str = ""
    """The unified social credit code (统一社会信用代码) or another registration or licence number."""


def read(conn: sqlite3.Connection) -> Shop:
    return Shop(kv.get(conn, "shop_name") or "", kv.get(conn, "shop_licence") or "")


def _clean(value: str, what: Text, longest: int, required: bool) -> str:
    text = " ".join(str(value).split())
    if required and not text:
        raise SettingsError(say("the shop's {what} is needed: the message record names the shop that sent each "
                                "text", what=what))
    if len(text) > longest:
        raise SettingsError(say("the shop's {what} is at most {n} characters", what=what, n=longest))
    if any(unicodedata.category(c).startswith("C") for c in text):
        raise SettingsError(say("the shop's {what} has a control character in it", what=what))
    return text


def check(name: str, licence: str) -> Shop:
    """The shop's name (required) and registration or licence number (may be empty), tidied; or
    :class:`SettingsError` saying what is wrong."""
    return Shop(_clean(name, say("name"), NAME_MAX, True),
                _clean(licence, say("registration or licence number"), LICENCE_MAX, False))


def save(db: Database, name: str, licence: str) -> Shop:
    """Set the shop's name and registration or licence number (see :func:`check`)."""
    shop = check(name, licence)
    with db.atomic() as conn:
        kv.put(conn, "shop_name", shop.name)
        kv.put(conn, "shop_licence", shop.licence)
    return shop


def signature_for(given: str, name: str) -> str:
    """The 【signature】 the set-up page stores: as given (in 【】 if the shop left them out), or the shop's
    name in 【】 when left empty. The rules want every marketing text to say who sent it."""
    text = " ".join(str(given).split()) or " ".join(str(name).split())
    if text and not (text.startswith("【") and text.endswith("】")):
        text = "【" + text.strip("【】[]") + "】"
    return text
