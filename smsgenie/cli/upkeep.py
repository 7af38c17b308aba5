"""The box's upkeep: run it, make a new one, its clock check, updates, backups."""

from __future__ import annotations

import logging
import signal
from datetime import datetime
from importlib.metadata import version as package_version
from pathlib import Path

import click

from appliance import backup as backups
from appliance import certs, installer, timecheck
from appliance.clock import SystemClock
from appliance.db import Database
from appliance.device import format_device_id
from appliance.errors import SmsGenieError
from appliance.sdnotify import Notifier
from appliance.text import say
from hw.errors import HardwareError
from smsgenie.box import RunningBox
from smsgenie.cli import common
from smsgenie.cli.common import (
    Globals,
    echo,
    friendly_errors,
    pass_globals,
    refusal,
    said,
    setup_logging,
    usage,
    vendor_public_key,
)

log = logging.getLogger("smsgenie")
UPDATES_CHECKED = say("update bundles are checked with it")


@click.command()
@pass_globals
@friendly_errors
def run(g: Globals) -> None:
    """Run the box: send the queue through the modems and serve the page, until stopped (SIGTERM)."""
    setup_logging(g.verbose)
    box = RunningBox(g.config, notifier=Notifier.from_environ())
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: box.stop())
    if box.setup_pin:  # the PIN itself never goes to the log (the journal outlives the set-up)
        log.warning("first run: open %s and set up the admin with the set-up PIN on the counter panel "
                     "(or run 'smsgenie setup-pin' on the box)", box.url)
    try:
        box.run()
    except (SmsGenieError, HardwareError):
        raise  # one line, from friendly_errors
    except Exception as exc:  # a bug: the log above has its traceback; the exit status makes systemd restart us
        raise refusal(say("the box stopped on an unexpected fault ({fault}); the log above says where",
                          fault=f"{type(exc).__name__}: {exc}")) from None


@click.command()
@pass_globals
@friendly_errors
def init(g: Globals) -> None:
    """Make a new, empty box in the data dir (the first 'smsgenie run' does this too)."""
    data_dir = g.config.data_dir
    Database.in_data_dir(data_dir).close()
    echo(say("A new box is ready in {dir}.", dir=data_dir))


@click.group("clock")
def clock_group() -> None:
    """The box's clock check: sending waits while the clock is behind what the box recorded."""


@clock_group.command("reset")
@pass_globals
@friendly_errors
def clock_reset(g: Globals) -> None:
    """Trust the clock as it is now (after a clock that ran ahead left a mark in the future)."""
    db = g.open_db()
    try:
        before = timecheck.reset(db, SystemClock())
    finally:
        db.close()
    now = f"{datetime.now():%Y-%m-%d %H:%M}"
    if before is None:
        echo(say("The clock mark is now {now}.", now=now))
    else:
        echo(say("The clock mark was {before}; now {now}. Sending no longer waits for the clock.",
                 before=f"{datetime.fromtimestamp(before):%Y-%m-%d %H:%M}", now=now))


@click.group("update")
def update_group() -> None:
    """Install a vendor-signed update bundle (from a USB stick, or uploaded on the web page)."""


@update_group.command("verify")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_globals
@friendly_errors
def update_verify(g: Globals, file: str) -> None:
    """Check FILE's signature and contents; install nothing."""
    b = installer.verify_file(file, vendor_public_key(g.config, UPDATES_CHECKED)[0])
    echo(say("Good bundle: SMS Genie {version}, made {created}, {n} wheel(s), signed by your vendor.",
             version=b.version, created=b.created, n=len(b.files)))
    if b.notes:
        echo(say("Notes: {notes}", notes=b.notes))


@update_group.command("install")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--from-upload", is_flag=True,
              help="Install the bundle uploaded on the web page (what smsgenie-update.service runs).")
@click.option("--prefix", default=installer.DEFAULT_PREFIX, show_default=True, help="Where the releases live.")
@click.option("--restart/--no-restart", default=False,
              help="Restart smsgenie.service after (reboot, when the root file system is read-only).")
@pass_globals
@friendly_errors
def update_install(g: Globals, file: str | None, from_upload: bool, prefix: str, restart: bool) -> None:
    """Verify FILE, install it as a new release and make it current. The data dir is kept as it is."""
    config = g.config
    if from_upload:
        key = vendor_public_key(config, UPDATES_CHECKED)[0] if config.vendor.public_key else None
        installed = installer.install_upload(config.data_dir, key, prefix)
        if installed is None:
            echo(say("No uploaded bundle waiting."))
            return
    elif file:
        installed = installer.install_file(file, vendor_public_key(config, UPDATES_CHECKED)[0], prefix)
    else:
        raise usage(say("name the bundle FILE, or --from-upload"))
    echo(installed.message)
    if restart:
        installer.restart_into(installed)


def _passphrase(passphrase_file, *, new: bool) -> str:
    if passphrase_file is not None:
        return passphrase_file.readline().rstrip("\n")
    if new:
        return click.prompt(said(say("Backup passphrase (at least 8 characters; keep it with the stick's label: "
                                     "without it the backup cannot be opened)")), hide_input=True,
                            confirmation_prompt=True)
    return click.prompt(said(say("Backup passphrase")), hide_input=True)


@click.command()
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--passphrase-file", type=click.File("r", encoding="utf-8"), help="Read the passphrase from a file.")
@pass_globals
@friendly_errors
def backup(g: Globals, dest: str, passphrase_file) -> None:
    """Back up the message record, ledger, accounts and settings to DEST (a mounted USB stick), encrypted.

    The daemon may keep sending meanwhile."""
    info = backups.make(g.box_dir, dest, _passphrase(passphrase_file, new=True),
                        device_id=format_device_id(common.this_device_id(g.config.data_dir)),
                        version=package_version("smsgenie"))
    echo(say("Backed up {messages} messages (record head {head}) to {path}; read back and checked. Unmount the "
             "stick before pulling it out: sudo umount {dest}", messages=info.messages, head=info.audit_head[:16],
             path=info.path, dest=dest))


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.option("--force", is_flag=True, help="Restore even though the data dir holds messages or credit "
                                            "(they are moved aside, not deleted).")
@click.option("--passphrase-file", type=click.File("r", encoding="utf-8"), help="Read the passphrase from a file.")
@pass_globals
@friendly_errors
def restore(g: Globals, file: str, force: bool, passphrase_file) -> None:
    """Restore a backup made by 'smsgenie backup' (stop the daemon first: sudo systemctl stop smsgenie)."""
    info, aside = backups.restore(file, g.config.data_dir, _passphrase(passphrase_file, new=False), force=force)
    echo(say("Restored {messages} messages from the backup made {created} on box {device}.",
             messages=info.messages, created=info.created, device=info.device_id))
    if aside is not None:
        echo(say("What the data dir held before is in {aside}.", aside=str(aside)))
    here = format_device_id(common.this_device_id(g.config.data_dir))
    if info.device_id != here:
        echo(say("This box is {here}, not {device}: the credit balance came with the backup; top-up codes made for "
                 "{device} do not work here. Do not use the old card again.", here=here, device=info.device_id))
    echo(say("Start the daemon again: sudo systemctl start smsgenie"))


@click.command()
@pass_globals
@friendly_errors
def certificate(g: Globals) -> None:
    """Show the box's CA (what a shop's computers trust for the HTTPS page) and its fingerprint."""
    if not g.config.web.https:
        raise refusal(say("the page is not HTTPS ([web] tls = \"off\" or no [web] listen in {config}): there is "
                          "no certificate to trust", config=g.config.source))
    found = certs.fingerprint(g.box_dir)
    if found is None:
        raise refusal(say("the box has made no certificate yet: 'smsgenie run' makes it at its first start"))
    echo(say("CA certificate: {path} (also at http://<box>/smsgenie-ca.crt when [web] redirect_from is set)",
             path=str(Path(g.config.data_dir) / certs.TLS_DIR / "ca.crt")))
    click.echo("SHA-256: " + " ".join(found[i:i + 4] for i in range(0, len(found), 4)))


COMMANDS = (run, init, certificate, clock_group, update_group, backup, restore)
