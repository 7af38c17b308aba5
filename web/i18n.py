"""Simplified Chinese and English (Flask-Babel).

The language comes from the switch on the page (kept in the session), else
from the browser's Accept-Language. The translations are kept as .po text
in the package and compiled to .mo in the data dir at start (the package
directory is read-only on the box). The Chinese catalog is under ``zh``:
Babel looks for zh_CN as zh_Hans_CN, then zh.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, request, session
from flask_babel import Babel, format_datetime, format_decimal, gettext, lazy_gettext, ngettext

from appliance.ledger import kind_words
from appliance.phones import carrier_words
from appliance.states import state_words
from appliance.text import Text, message_of, unstored
from appliance.words import words

LANGUAGES = {"zh_CN": "中文", "en": "English"}
SOURCE = Path(__file__).parent / "translations"

__all__ = ["LANGUAGES", "format_datetime", "format_decimal", "gettext", "init_app", "lazy_gettext", "ngettext",
           "translate", "translator"]


def select_locale() -> str:
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"], default="zh-CN")
    return "en" if best == "en" else "zh_CN"


def compile_translations(target: Path) -> Path:
    """Compile every .po under the package into ``target`` when it is newer than the .mo there."""
    for po in SOURCE.glob("*/LC_MESSAGES/messages.po"):
        mo = target / po.relative_to(SOURCE).with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        mo.parent.mkdir(parents=True, exist_ok=True)
        with po.open("rb") as f:
            catalog = read_po(f)
        tmp = mo.with_suffix(".tmp")
        with tmp.open("wb") as f:
            write_mo(f, catalog)
        tmp.replace(mo)
    return target


def _fill(message: Text, lookup: Callable[[str], str]) -> str:
    values = {k: _fill(v, lookup) if isinstance(v, Text) else v for k, v in message.values.items()}
    try:
        return lookup(message.template).format(**values)
    except (KeyError, IndexError, ValueError):  # a translation that lost a field: the English, whole
        return str(message)


def translate(message) -> str:
    """A message from the domain (appliance.text.Text, or an exception raised with one) in the page's
    language; anything else as it is."""
    if isinstance(message, BaseException):
        message = message_of(message)
    if not isinstance(message, Text):
        return "" if message is None else str(message)
    return _fill(message, gettext)


def state_label(code: str | None) -> str:
    """A message's, list's or modem's state (a code in the database and the API) in the page's language
    (appliance/states.py: the same words as the command line's)."""
    return translate(state_words(code))


def carrier_label(name: str | None) -> str:
    """A carrier as the domain names it (appliance/phones.py) in the page's language."""
    return translate(carrier_words(name))


def ledger_kind_label(kind: str) -> str:
    """A credit entry's kind (top-up, charged ...) in the page's language."""
    return translate(kind_words(kind))


def word(value) -> str:
    """A code of the domain (a consent's state or source, a run's outcome, a column's role: appliance/words.py)
    in the page's language; anything else as it is."""
    return translate(words(value)) if isinstance(value, str) else translate(value)


@functools.lru_cache(maxsize=4)
def _catalog(language: str):
    path = SOURCE / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as f:
        return read_po(f)


def translator(language: str) -> Callable[[object], str]:
    """:func:`translate` outside a request (the command line): ``language`` "zh"/"zh_CN" or anything else
    for English. Reads the catalogue's .po text directly: nothing to compile, nothing written."""
    if not language.lower().startswith("zh"):
        return lambda message: str(message_of(message) if isinstance(message, BaseException) else message)
    catalog = _catalog("zh")

    def lookup(template: str) -> str:
        entry = catalog.get(template)
        return entry.string if entry is not None and entry.string and not entry.fuzzy else template

    def say_it(message) -> str:
        if isinstance(message, BaseException):
            message = message_of(message)
        return _fill(message, lookup) if isinstance(message, Text) else str(message)
    return say_it


def init_app(app: Flask, data_dir: Path) -> None:
    directory = compile_translations(data_dir / "cache" / "translations")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(directory)
    Babel(app, locale_selector=select_locale)
    app.jinja_env.filters["tr"] = translate
    app.jinja_env.filters["unstored"] = lambda value: translate(unstored(value))
    app.jinja_env.filters["word"] = word
    app.jinja_env.filters["state"] = state_label
    app.jinja_env.filters["carrier"] = carrier_label
    app.jinja_env.filters["ledger_kind"] = ledger_kind_label
    app.jinja_env.globals.update(_=gettext, ngettext=ngettext, LANGUAGES=LANGUAGES,
                                 current_language=select_locale, format_datetime=format_datetime,
                                 format_decimal=format_decimal)
