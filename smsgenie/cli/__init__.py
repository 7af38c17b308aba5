"""The ``smsgenie`` command: a thin click layer over the appliance, grouped by concern.

- sending (:mod:`.sending`): send, status, pause, resume, requeue;
- credits (:mod:`.credits`): device-id, topup, balance, ledger;
- compliance (:mod:`.compliance`): optout, keywords, inbox, audit, settings;
- the box's upkeep (:mod:`.upkeep`): run, init, clock, update, backup, restore; and the demo;
- the vendor's tools (:mod:`.vendor`).

Every command takes the global ``--config`` and ``--data-dir``; errors from
the appliance or the hardware become one ``Error:`` line (exit status 1),
never a traceback. The contract of each command is in docs/cli.md.
"""

from __future__ import annotations

import click

from appliance import config as configmod
from smsgenie.cli import compliance, credits, sending, upkeep, vendor
from smsgenie.cli.common import OWN_CONFIG, Globals
from smsgenie.cli.demo import demo


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", envvar="SMSGENIE_CONFIG", metavar="FILE",
              help=f"Config file (TOML). Default: $SMSGENIE_CONFIG, else the data dir's own {OWN_CONFIG} "
                   f"(the demo's), else {configmod.DEFAULT_CONFIG}.")
@click.option("--data-dir", envvar="SMSGENIE_DATA_DIR", metavar="DIR",
              help=f"Data directory; overrides the config's. Default: $SMSGENIE_DATA_DIR, "
                   f"else the config's data_dir ({configmod.DEFAULT_DATA_DIR}).")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for AT traffic).")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, data_dir: str | None, verbose: int) -> None:
    """SMS Genie (短信精灵): the shop's SMS send appliance."""
    ctx.obj = Globals(config_path, data_dir, verbose)


for _module in (sending, credits, compliance, upkeep, vendor):
    for _command in _module.COMMANDS:
        cli.add_command(_command)
cli.add_command(demo)


def main() -> None:
    cli(prog_name="smsgenie")
