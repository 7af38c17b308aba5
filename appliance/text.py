"""Words for a person, in the reader's language: the domain writes English, the page and the CLI translate.

The domain has no idea who reads it (a clerk at a Chinese page, a technician
at the command line, a test). So a message a person may read is made with
:func:`say`: a :class:`Text` is a plain ``str`` (English, what logs and tests
see) that also keeps its template and values, so the page (web/i18n.py
``translate``) and the command line (under ``LANG=zh_CN.UTF-8``) look the
template up in the translation catalogue and fill the values in the
reader's language. Templates use ``str.format`` fields (``{day}``); a value
may itself be a Text, translated in turn.

``scripts/i18n`` extracts every ``say("...")`` into the catalogue, and a test
fails when one has no Chinese (tests/test_web.py).
"""

from __future__ import annotations

import json


class Text(str):
    """English text that remembers how it was made (see the module's docstring)."""

    template: str
    values: dict

    def __new__(cls, template: str, **values) -> "Text":
        obj = super().__new__(cls, template.format(**values) if values else template)
        obj.template = template
        obj.values = values
        return obj

    def __getnewargs_ex__(self):  # pickled into a worker process and back (appliance/jobs.py) whole
        return (self.template,), self.values


def say(template: str, **values) -> Text:
    """A message for a person: ``template`` (English, ``{field}`` for each value), filled with ``values``."""
    return Text(template, **values)


def message_of(exc: BaseException) -> str:
    """An exception's message, as the Text it was raised with when it was one (else its str)."""
    if exc.args and isinstance(exc.args[0], Text):
        return exc.args[0]
    return str(exc)


def to_json(value):
    """A Text as JSON that keeps it a Text (``{"say": template, "values": {...}}``; for what the daemon
    writes to the database for the page to read: a modem's state, why sending waits); others as they are."""
    if isinstance(value, Text):
        return {"say": value.template, "values": {k: to_json(v) for k, v in value.values.items()}}
    return value


def from_json(value):
    """:func:`to_json` undone."""
    if isinstance(value, dict) and "say" in value:
        return Text(value["say"], **{k: from_json(v) for k, v in value.get("values", {}).items()})
    return value


def stored(value) -> str | None:
    """A text for a column a person reads later (a message's ``error``): a Text as its JSON (see
    :func:`to_json`), so the page can still say it in the reader's language; anything else as it is."""
    if isinstance(value, Text):
        return json.dumps(to_json(value), ensure_ascii=False)
    return value


def unstored(value):
    """:func:`stored` undone: the Text back (English as a str), or the plain text as it was."""
    if isinstance(value, str) and value.startswith('{"say":'):
        try:
            return from_json(json.loads(value))
        except (ValueError, TypeError):
            return value
    return value
