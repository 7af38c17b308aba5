"""Simplified Chinese and English (Flask-Babel).

The language comes from the switch on the page (kept in the session), else
from the browser's Accept-Language. The translations are kept as .po text
in the package and compiled to .mo in the data dir at start (the package
directory is read-only on the box). The Chinese catalog is under ``zh``:
Babel looks for zh_CN as zh_Hans_CN, then zh.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, request, session
from flask_babel import Babel, format_datetime, format_decimal, gettext, lazy_gettext, ngettext

LANGUAGES = {"zh_CN": "中文", "en": "English"}
SOURCE = Path(__file__).parent / "translations"

__all__ = ["LANGUAGES", "format_datetime", "format_decimal", "gettext", "init_app", "lazy_gettext", "ngettext"]


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


def init_app(app: Flask, data_dir: Path) -> None:
    directory = compile_translations(data_dir / "cache" / "translations")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(directory)
    Babel(app, locale_selector=select_locale)
    app.jinja_env.globals.update(_=gettext, ngettext=ngettext, LANGUAGES=LANGUAGES,
                                 current_language=select_locale, format_datetime=format_datetime,
                                 format_decimal=format_decimal)
