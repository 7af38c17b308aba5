"""The ``smsgenie`` command: a thin click layer over the appliance, grouped by concern.

- sending (:mod:`.sending`): send, status, pause, resume, requeue;
- credits (:mod:`.credits`): device-id, topup, balance, ledger;
- compliance (:mod:`.compliance`): optout, keywords, inbox, audit, settings;
- people (:mod:`.people`): setup-pin, users;
- customers (:mod:`.customers`): the customer book, consent, recurring sends;
- the box's upkeep (:mod:`.upkeep`): run, init, clock, update, backup, restore; and the demo;
- the vendor's tools (:mod:`.vendor`).

Every command takes the global ``--config`` and ``--data-dir``; errors from
the appliance or the hardware become one ``Error:`` line (exit status 1),
never a traceback. The contract of each command is in docs/cli.md.
"""

from __future__ import annotations

import click

from appliance import config as configmod
from smsgenie.cli import compliance, credits, customers, people, sending, upkeep, vendor
from smsgenie.cli.common import OWN_CONFIG, Globals
from smsgenie.cli.demo import demo

SECTIONS = (("Sending", sending.COMMANDS), ("Credits", credits.COMMANDS), ("Compliance", compliance.COMMANDS),
            ("People", people.COMMANDS), ("Customers", customers.COMMANDS),
            ("The box's upkeep", (*upkeep.COMMANDS, demo)), ("Vendor", vendor.COMMANDS))


class ByConcern(click.Group):
    """A group whose --help lists its commands under the concern each belongs to."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        width = formatter.width - 6 - max(len(name) for name in self.commands)
        for title, commands in SECTIONS:
            with formatter.section(title):
                formatter.write_dl([(c.name, c.get_short_help_str(width)) for c in commands])


@click.group(cls=ByConcern, context_settings={"help_option_names": ["-h", "--help"]})
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


for _title, _commands in SECTIONS:
    for _command in _commands:
        cli.add_command(_command)


def main() -> None:
    cli(prog_name="smsgenie")
