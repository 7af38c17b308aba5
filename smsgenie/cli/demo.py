"""``smsgenie demo``: the whole box on simulated hardware (smsgenie/demo/)."""

from __future__ import annotations

from pathlib import Path

import click

from smsgenie.cli.common import Globals, echo, friendly_errors, setup_logging


@click.command()
@click.option("--until-idle", is_flag=True, help="Exit once every demo message has its final outcome.")
@click.option("--latency", default=0.25, show_default=True, type=float,
              help="Seconds the simulated network takes per SMS.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="Port of the shop's page on 127.0.0.1 (0: any free one).")
@click.option("--open/--no-open", "open_browser", default=None,
              help="Open the page in this desktop's browser (default: yes, unless --until-idle).")
@click.option("--data-dir", "own_dir", metavar="DIR",
              help="The demo's folder (also the global --data-dir); default ./smsgenie-demo.")
@click.pass_context
@friendly_errors
def demo(ctx: click.Context, until_idle: bool, latency: float, port: int, open_browser: bool | None,
         own_dir: str | None) -> None:
    """Run the whole box on simulated hardware and send a demo list."""
    from smsgenie.demo import DEFAULT_DIR, run_demo  # noqa: PLC0415 - the simulated modem only for the demo

    g: Globals = ctx.obj
    explicit = ctx.parent.get_parameter_source("data_dir") == click.core.ParameterSource.COMMANDLINE
    data_dir = Path(own_dir or (g.data_dir if explicit else DEFAULT_DIR)).resolve()
    if g.verbose:
        setup_logging(g.verbose)
    if open_browser is None:
        open_browser = not until_idle
    ctx.exit(run_demo(data_dir, until_idle=until_idle, latency=latency, echo=echo, port=port,
                      open_browser=open_browser))
