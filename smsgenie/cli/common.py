"""What every command shares: the global options, opening the box, one-line errors."""

from __future__ import annotations

import functools
import logging
import os
import sys
from pathlib import Path

import click

from appliance import config as configmod
from appliance.clock import SystemClock
from appliance.config import Config
from appliance.db import DB_NAME, Database, existing_box
from appliance.device import this_device_id as _this_device_id
from appliance.errors import SmsGenieError
from appliance.sendqueue import SendQueue
from appliance.settings import read_settings
from appliance.text import Text, say
from hw.errors import HardwareError

#: A data dir may hold its own config (the demo writes one): used when no --config is given.
OWN_CONFIG = "config.toml"


class Globals:
    """What the global options say, resolved lazily so ``--help`` needs no config.

    Only ``run`` and ``init`` make a box; every other command opens an existing
    one and refuses a data dir that holds none (a mistyped ``--data-dir``
    must not quietly start a new, empty box).
    """

    def __init__(self, config_path: str | None, data_dir: str | None, verbose: int = 0):
        self.config_path = config_path
        self.data_dir = data_dir
        self.verbose = verbose
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            path, explicit = self.config_path, self.config_path is not None
            if path is None and self.data_dir and (Path(self.data_dir) / OWN_CONFIG).is_file():
                path, explicit = str(Path(self.data_dir) / OWN_CONFIG), True
            self._config = configmod.load(path, explicit=explicit).with_data_dir(self.data_dir)
        return self._config

    @property
    def box_dir(self) -> Path:
        """The data dir of an existing box (raises a one-line error if there is none)."""
        return existing_box(self.config.data_dir)

    def open_db(self) -> Database:
        return Database(self.box_dir / DB_NAME)

    def open_queue(self) -> SendQueue:
        return SendQueue(self.open_db(), SystemClock())

    def shop(self) -> dict:
        """The shop's settings (signature, region, quiet hours...)."""
        return read_settings(self.box_dir)

    def e164(self, number: str) -> str:
        """A number as typed (``138 0013 8000``) as the box keeps it, by the shop's default region; a number
        that is not one is a one-line error."""
        from appliance import phones  # noqa: PLC0415 - phonenumbers only for the commands that take a number

        try:
            return phones.normalise(number, self.shop()["default_region"]).e164
        except phones.NumberProblem as exc:
            raise click.ClickException(said(exc)) from None


pass_globals = click.make_pass_decorator(Globals)


def this_device_id(data_dir: str) -> bytes:
    """The box's id; a function of its own so tests can stand in another box."""
    return _this_device_id(data_dir)


def vendor_public_key(config: Config, purpose: str):
    """The config's vendor key and its id, or a message saying which line is missing and what for."""
    from appliance.vendor import parse_public_key  # noqa: PLC0415 - cryptography only when needed

    if not config.vendor.public_key:
        raise refusal(say("no vendor key in {config}: add the [vendor] public_key line your vendor gave you "
                          "({purpose}), then try again", config=config.source, purpose=purpose))
    return parse_public_key(config.vendor.public_key)


def reader_language() -> str:
    """The language the person at the terminal reads (LC_ALL, else LC_MESSAGES, else LANG, as gettext)."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name)
        if value:
            return value
    return ""


def said(message) -> str:
    """A message from the domain (appliance.text.Text, or an error raised with one) in the reader's language:
    Chinese under LANG=zh_CN.UTF-8 (web/i18n.py's catalogue, read only then), else English."""
    language = reader_language()
    if not language.lower().startswith("zh"):
        return str(message)
    from web.i18n import translator  # noqa: PLC0415 - the catalogue only for a Chinese reader

    return translator(language)(message)


def echo(*parts) -> None:
    """Print one line for a person: each part a Text made with ``say()`` (in the reader's language, see
    :func:`said`) or a plain string (a name, a number: as it is)."""
    click.echo("".join(said(p) for p in parts))


def refusal(text) -> click.ClickException:
    """A command's own refusal - ``raise refusal(say("..."))`` - said in the reader's language."""
    return click.ClickException(said(text))


def usage(text) -> click.UsageError:
    """A wrong command line (exit status 2), said in the reader's language."""
    return click.UsageError(said(text))


def friendly_errors(fn):
    """Turn our own errors into one clean 'Error: ...' line and exit status 1, in the reader's language."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (SmsGenieError, HardwareError) as exc:
            raise click.ClickException(said(exc)) from None
    return wrapper


def setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


#: Counted things a person reads: (one, many). English has plurals; the catalogue gives Chinese one word for both.
NOUNS = {
    "message": (say("{n} message"), say("{n} messages")),
    "part": (say("{n} SMS part"), say("{n} SMS parts")),
    "row": (say("{n} row"), say("{n} rows")),
    "word": (say("{n} word"), say("{n} words")),
    "customer": (say("{n} customer"), say("{n} customers")),
    "code": (say("{n} code"), say("{n} codes")),
}


def counted(n: int, noun: str) -> Text:
    """``n`` of a :data:`NOUNS` thing, grouped by thousands: counted(1200, "row") is "1,200 rows" (1,200 行)."""
    one, many = NOUNS[noun]
    return say((one if n == 1 else many).template, n=f"{n:,}")
