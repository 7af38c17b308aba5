"""The ``smsgenie`` command: a thin click layer over the appliance.

Every command takes the global ``--config`` and ``--data-dir``; errors from
the appliance or the hardware become one-line messages (exit status 1), not
tracebacks. The contract of each command is in docs/cli.md.
"""

from __future__ import annotations

import functools
import json
import logging
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


def main() -> None:
    cli(prog_name="smsgenie")
