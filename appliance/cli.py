"""The ``smsgenie`` command: a thin click layer over the appliance.

Every command takes the global ``--config`` and ``--data-dir``; errors from
the appliance or the hardware become one-line messages (exit status 1), not
tracebacks. The contract of each command is in docs/cli.md.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import sys
from pathlib import Path

import click

from appliance import config as configmod
from appliance.clock import SystemClock
from appliance.config import Config
from appliance.db import Database
from appliance.errors import SmsGenieError
from appliance.lock import DataDirLock
from appliance.plan import plan_message
from appliance.privacy import mask_number
from appliance.sendlist import read_csv
from appliance.sendqueue import STATES, SendQueue
from appliance.status import status as build_status
from hw.errors import HardwareError


class Settings:
    """What the global options say, resolved lazily so ``--help`` needs no config."""

    def __init__(self, config_path: str | None, data_dir: str | None):
        self.config_path = config_path
        self.data_dir = data_dir
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            cfg = configmod.load(self.config_path, explicit=self.config_path is not None)
            self._config = cfg.with_data_dir(self.data_dir)
        return self._config

    def open_queue(self) -> SendQueue:
        return SendQueue(Database.in_data_dir(self.config.data_dir), SystemClock())


pass_settings = click.make_pass_decorator(Settings)


def friendly_errors(fn):
    """Turn our own errors into a clean 'Error: ...' line and exit status 1."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (SmsGenieError, HardwareError) as exc:
            raise click.ClickException(str(exc)) from None
    return wrapper


def setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", envvar="SMSGENIE_CONFIG", metavar="FILE",
              help=f"Config file (TOML). Default: $SMSGENIE_CONFIG, else {configmod.DEFAULT_CONFIG}.")
@click.option("--data-dir", envvar="SMSGENIE_DATA_DIR", metavar="DIR",
              help=f"Data directory; overrides the config's. Default: $SMSGENIE_DATA_DIR, "
                   f"else the config's data_dir ({configmod.DEFAULT_DATA_DIR}).")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for AT traffic).")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, data_dir: str | None, verbose: int) -> None:
    """SMS Genie (短信精灵): the shop's SMS send appliance."""
    ctx.obj = Settings(config_path, data_dir)
    ctx.meta["verbose"] = verbose


@cli.command()
@pass_settings
@click.pass_context
@friendly_errors
def run(ctx: click.Context, settings: Settings) -> None:
    """Run the daemon: send the queue through the modem until stopped (SIGTERM)."""
    from appliance.daemon import Daemon

    setup_logging(ctx.meta["verbose"])
    daemon = Daemon(settings.config)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: daemon.stop())
    daemon.run()


@cli.command()
@click.option("--until-idle", is_flag=True, help="Exit once every demo message has its final outcome.")
@click.option("--latency", default=0.25, show_default=True, type=float,
              help="Seconds the simulated network takes per SMS.")
@click.pass_context
@friendly_errors
def demo(ctx: click.Context, until_idle: bool, latency: float) -> None:
    """Run the whole box on simulated hardware and send a demo list."""
    from appliance.demo import DEFAULT_DIR, run_demo

    settings: Settings = ctx.obj
    explicit = ctx.parent.get_parameter_source("data_dir") == click.core.ParameterSource.COMMANDLINE
    data_dir = Path(settings.data_dir if explicit else DEFAULT_DIR).resolve()
    setup_logging(ctx.meta["verbose"]) if ctx.meta["verbose"] else None
    code = run_demo(data_dir, until_idle=until_idle, latency=latency, echo=click.echo)
    ctx.exit(code)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--text", required=True, help="The message text, the same for every number.")
@pass_settings
@friendly_errors
def send(settings: Settings, file: str, text: str) -> None:
    """Queue TEXT for every phone number in FILE (a CSV with a header row)."""
    plan = plan_message(text)
    sendlist = read_csv(file)
    config = settings.config
    q = settings.open_queue()
    ids: list[int] = []
    if sendlist.numbers:
        list_id = q.create_list(sendlist.name, config.service_code)
        ids = q.enqueue(list_id, sendlist.numbers, plan, config.service_code)
    parts = f"{plan.segments} SMS part{'s' if plan.segments > 1 else ''} each"
    click.echo(f"Queued {len(ids)} message{'s' if len(ids) != 1 else ''} from {sendlist.name} "
               f"({parts}, {'GSM-7' if plan.encoding == 'gsm7' else 'UCS-2'}; "
               f"numbers from column '{sendlist.column}').")
    if plan.forced_ucs2_by:
        click.echo(f"Note: the character {plan.forced_ucs2_by!r} makes this a UCS-2 (Chinese-capable) text, "
                   f"which fits fewer characters per SMS.")
    if sendlist.problems:
        click.echo(f"{len(sendlist.problems)} row{'s' if len(sendlist.problems) != 1 else ''} skipped:")
        for p in sendlist.problems:
            shown = mask_number(p.value) if p.reason == "duplicate" else p.value
            click.echo(f"  row {p.row}: {shown or '(empty)'}: {p.reason}")
    if not DataDirLock.held(config.data_dir):
        click.echo("Note: the smsgenie daemon is not running; the messages go out when it starts.")
    if not ids:
        raise click.ClickException(f"no usable phone numbers in {file}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_settings
@friendly_errors
def status(settings: Settings, as_json: bool) -> None:
    """Show the queue (messages by state) and the modem's state."""
    data = build_status(settings.config, settings.open_queue())
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    q, m = data["queue"], data["modem"]
    click.echo("Queue:  " + "  ".join(f"{s} {q[s]}" for s in STATES))
    click.echo(f"Credit: {data['balance']}" + (f" - sending paused, {data['paused']}" if data["paused"] else ""))
    signal_text = "unknown" if m["signal"] == 99 else f"{m['signal']}/31 ({m['signal_dbm']} dBm)"
    click.echo(f"Modem:  {m['state']} - {m['detail']}")
    click.echo(f"        operator {m['operator'] or '-'}, signal {signal_text}, {m['access'] or '-'}, port {m['port']}")
    if q["uncertain"]:
        click.echo(f"{q['uncertain']} message(s) are uncertain (the box stopped mid-send); check them, "
                   f"then 'smsgenie requeue --uncertain'.")


@cli.command()
@click.option("--uncertain", is_flag=True, help="Requeue messages left uncertain by a crash or a silent modem.")
@click.option("--id", "ids", type=int, multiple=True, help="Only this message id (repeatable).")
@pass_settings
@friendly_errors
def requeue(settings: Settings, uncertain: bool, ids: tuple[int, ...]) -> None:
    """Send uncertain messages again (only the parts not confirmed by the network)."""
    if not uncertain:
        raise click.UsageError("say what to requeue: --uncertain")
    n = settings.open_queue().requeue_uncertain(ids or None)
    click.echo(f"Requeued {n} uncertain message{'s' if n != 1 else ''}.")


# --- credits -----------------------------------------------------------------------


def this_device_id() -> bytes:
    """The box's id; a function of its own so tests can stand in another box."""
    from appliance.device import device_id
    return device_id()


@cli.command("device-id")
@friendly_errors
def device_id_cmd() -> None:
    """Print this box's device id (tell it to the vendor to buy credit)."""
    from appliance.device import format_device_id
    click.echo(format_device_id(this_device_id()))


@cli.command()
@click.argument("code", nargs=-1, required=True)
@pass_settings
@friendly_errors
def topup(settings: Settings, code: tuple[str, ...]) -> None:
    """Redeem a top-up CODE from the vendor (dashes and spaces are fine)."""
    from datetime import date

    from appliance import topup as topupmod
    from appliance.vendor import parse_public_key

    config = settings.config
    if not config.vendor.public_key:
        raise click.ClickException(f"no vendor key in {config.source}: add the [vendor] public_key line "
                                   f"your vendor gave you, then try again")
    public_key, key_id = parse_public_key(config.vendor.public_key)
    q = settings.open_queue()
    verified = topupmod.verify(" ".join(code), public_key, key_id, this_device_id(),
                               date.fromtimestamp(q.clock.time()))
    balance = topupmod.redeem(q, verified)
    click.echo(f"Added {verified.credits} credits (code {verified.serial_text}). Balance: {balance} credits.")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_settings
@friendly_errors
def balance(settings: Settings, as_json: bool) -> None:
    """Show the credit balance (1 credit = 1 SMS part)."""
    q = settings.open_queue()
    value = q.ledger.balance()
    shortfall = q.waiting_for_credit()
    if as_json:
        click.echo(json.dumps({"balance": value, "paused": str(shortfall) if shortfall else None}))
        return
    click.echo(f"Balance: {value} credits.")
    if shortfall:
        click.echo(f"Sending is paused, {shortfall}.")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.option("--limit", default=100, show_default=True, help="How many of the newest entries.")
@pass_settings
@friendly_errors
def ledger(settings: Settings, as_json: bool, limit: int) -> None:
    """Show the credit history with the running balance."""
    from dataclasses import asdict
    from datetime import datetime

    entries = settings.open_queue().ledger.history(limit)
    if as_json:
        click.echo(json.dumps([asdict(e) for e in entries], ensure_ascii=False))
        return
    if not entries:
        click.echo("No credit movements yet.")
    for e in entries:
        when = datetime.fromtimestamp(e.at).strftime("%Y-%m-%d %H:%M")
        about = e.note or ""
        if e.message_id:
            about = f"message {e.message_id} ({e.message_state})" + (f": {e.note}" if e.note else "")
            if e.message_state == "uncertain" and e.kind == "debit":
                about += " - stays charged, it most likely went out"
        click.echo(f"{when}  {e.kind:<10} {e.credits:>+8}  balance {e.balance:>8}  {about}")


@cli.group()
def vendor() -> None:
    """The vendor's tools: signing keys and top-up codes (not for the box)."""


@vendor.command()
@click.option("--out", "out_dir", required=True, metavar="DIR", help="Where to write vendor.key and vendor.pub.")
@friendly_errors
def keygen(out_dir: str) -> None:
    """Make a vendor signing key: vendor.key (keep it secret) and vendor.pub (for the boxes)."""
    from appliance.vendor import keygen as make_key

    key_path, pub_path = make_key(out_dir)
    click.echo(f"Wrote {key_path} (mode 0600: keep it secret and backed up) and {pub_path}.")
    click.echo("Put this line in each box's config:")
    click.echo(f'[vendor]\npublic_key = "{pub_path.read_text().strip()}"')


@vendor.command()
@click.option("--key", "key_path", required=True, metavar="FILE", help="vendor.key")
@click.option("--device", required=True, metavar="ID", help="The box's device id (smsgenie device-id).")
@click.option("--credits", type=click.IntRange(1, 2**32 - 1), required=True, help="Credits per code.")
@click.option("--count", type=click.IntRange(1, 100_000), default=1, show_default=True)
@click.option("--expires", type=click.DateTime(formats=["%Y-%m-%d"]), help="Last valid day, YYYY-MM-DD.")
@click.option("--csv", "csv_path", metavar="FILE", help="Write serial,device,credits,expires,code rows here.")
@friendly_errors
def mint(key_path: str, device: str, credits: int, count: int, expires, csv_path: str | None) -> None:
    """Make top-up codes for one box, one per line."""
    import csv as csvmod

    from appliance.device import format_device_id, parse_device_id
    from appliance.vendor import load_private_key
    from appliance.vendor import mint as make_codes

    key = load_private_key(key_path)
    dev = parse_device_id(device)
    codes = make_codes(key, dev, credits, count=count, expires=expires.date() if expires else None)
    if csv_path:
        try:  # codes are money: readable by this user only, and never over another file
            fd = os.open(csv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise click.ClickException(f"cannot write {csv_path}: {exc.strerror}") from None
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            writer = csvmod.writer(f)
            writer.writerow(["serial", "device", "credits", "expires", "code"])
            for serial, code in codes:
                writer.writerow([serial, format_device_id(dev), credits, expires.date() if expires else "", code])
        click.echo(f"Wrote {len(codes)} code{'s' if len(codes) != 1 else ''} to {csv_path}.")
        return
    for _serial, code in codes:
        click.echo(code)


def main() -> None:
    cli(prog_name="smsgenie")
