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
from appliance.db import Database, ensure_data_dir
from appliance.errors import SettingsError, SmsGenieError
from appliance.lock import DataDirLock
from appliance.pause import SendingPause
from appliance.privacy import mask_number
from appliance.sdnotify import Notifier
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

    def box_settings(self) -> dict:
        from appliance.settings import ShopSettings as BoxSettings

        box = BoxSettings(ensure_data_dir(self.config.data_dir))
        try:
            return box.all()
        finally:
            box.close()


pass_settings = click.make_pass_decorator(Settings)


def vendor_public_key(config: Config, purpose: str):
    """The config's vendor key and its id, or a message saying which line is missing and what for."""
    from appliance.vendor import parse_public_key

    if not config.vendor.public_key:
        raise click.ClickException(f"no vendor key in {config.source}: add the [vendor] public_key line your "
                                   f"vendor gave you ({purpose}), then try again")
    return parse_public_key(config.vendor.public_key)


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
    config = settings.config
    web = None
    if config.web.listen:
        from web.serve import WebServer  # the page is optional: a box may run without it

        web = WebServer(config)
    daemon = Daemon(config, setup_pin=lambda: web.setup_pin if web is not None else None,
                    notifier=Notifier.from_environ())
    if web is not None:
        web.attach(daemon).start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: daemon.stop())
    try:
        daemon.run()
    finally:
        if web is not None:
            web.close()


@cli.command()
@click.option("--until-idle", is_flag=True, help="Exit once every demo message has its final outcome.")
@click.option("--latency", default=0.25, show_default=True, type=float,
              help="Seconds the simulated network takes per SMS.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="Port of the shop's page on 127.0.0.1 (0: any free one).")
@click.option("--open/--no-open", "open_browser", default=None,
              help="Open the page in this desktop's browser (default: yes, unless --until-idle).")
@click.pass_context
@friendly_errors
def demo(ctx: click.Context, until_idle: bool, latency: float, port: int, open_browser: bool | None) -> None:
    """Run the whole box on simulated hardware and send a demo list."""
    from appliance.demo import DEFAULT_DIR, run_demo

    settings: Settings = ctx.obj
    explicit = ctx.parent.get_parameter_source("data_dir") == click.core.ParameterSource.COMMANDLINE
    data_dir = Path(settings.data_dir if explicit else DEFAULT_DIR).resolve()
    setup_logging(ctx.meta["verbose"]) if ctx.meta["verbose"] else None
    if open_browser is None:
        open_browser = not until_idle
    code = run_demo(data_dir, until_idle=until_idle, latency=latency, echo=click.echo, port=port,
                    open_browser=open_browser)
    ctx.exit(code)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--text", help="The message, the same for everyone (braces are literal).")
@click.option("--template", help="The message with {column} merge fields from the list, e.g. '{姓名}您好...'.")
@click.option("--at", "start_at", type=click.DateTime(formats=["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"]),
              help="Start at this time (box local time), e.g. '2026-12-01 09:00'.")
@click.option("--transactional", is_flag=True,
              help="Messages a customer expects (e.g. 'your order is ready'): they ignore quiet hours.")
@click.option("--dry-run", is_flag=True, help="Check and price the list; queue nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the preview as one JSON object.")
@pass_settings
@friendly_errors
def send(settings: Settings, file: str, text: str | None, template: str | None, start_at, transactional: bool,
         dry_run: bool, as_json: bool) -> None:
    """Check FILE (CSV or XLSX) row by row, price it, and queue a message for every good row."""
    from appliance.keywords import KeywordStore
    from appliance.optout import OptOuts
    from appliance.preview import prepare
    from appliance.sendlist import open_table
    from appliance.template import Template

    if (text is None) == (template is None):
        raise click.UsageError("give --text (the same text for everyone) or --template (with {column} fields)")
    config = settings.config
    box = settings.box_settings()
    tpl = Template(template if template is not None else text.replace("{", "{{").replace("}", "}}"),
                   box["signature"])
    q = settings.open_queue()
    with open_table(file) as table:
        preview = prepare(table, tpl, region=box["default_region"], screen=KeywordStore(q.db, q.clock).screen(),
                          opted_out=OptOuts(q.db, q.clock).numbers(), balance=q.ledger.balance())
    ids: list[int] = []
    list_id = None
    if preview.accepted and not dry_run:
        list_id = q.create_list(preview.list_name, config.service_code, tpl.text,
                                kind="transactional" if transactional else "marketing",
                                start_at=start_at.timestamp() if start_at else None)
        ids = q.enqueue_many(list_id, ((a.recipient, a.plan) for a in preview.accepted), config.service_code)
    if as_json:
        click.echo(json.dumps({**preview.as_dict(), "dry_run": dry_run, "queued": len(ids),
                               "send_list_id": list_id, "kind": "transactional" if transactional else "marketing",
                               "start_at": start_at.timestamp() if start_at else None}, ensure_ascii=False))
    else:
        _print_preview(preview, queued=len(ids), dry_run=dry_run)
        if start_at:
            click.echo(f"The list starts at {start_at:%Y-%m-%d %H:%M}.")
        if not transactional and box["quiet_hours"]:
            click.echo(f"Marketing list: it waits during the quiet hours ({box['quiet_hours']}); "
                       f"--transactional for messages a customer expects.")
        if ids and not DataDirLock.held(config.data_dir):
            click.echo("Note: the smsgenie daemon is not running; the messages go out when it starts.")
    if not preview.accepted:
        raise click.ClickException(f"no row of {preview.list_name} can be sent (see the reasons above)")


def _print_preview(preview, *, queued: int, dry_run: bool) -> None:
    n = len(preview.accepted)
    parts = preview.credits_needed
    encodings = ", ".join(f"{count} {'GSM-7' if enc == 'gsm7' else 'UCS-2'}"
                          for enc, count in sorted(preview.by_encoding.items()))
    verb = "Would queue" if dry_run else "Queued"
    click.echo(f"{verb} {queued if not dry_run else n} message{'s' if n != 1 else ''} from {preview.list_name} "
               f"({parts} SMS part{'s' if parts != 1 else ''} in all; numbers from column "
               f"'{preview.phone_column}').")
    if n:
        click.echo(f"  encoding: {encodings}; by carrier: " + ", ".join(
            f"{c} {m} ({preview.credits_by_carrier[c]} credits)" for c, m in preview.messages_by_carrier.most_common()))
        click.echo(f"  credits needed {parts}, balance {preview.balance}"
                   + ("" if preview.enough_credit else " - not enough: sending will pause until a top-up"))
        first = preview.samples[0]
        click.echo(f"  first message ({first['to']}, {first['parts']} part{'s' if first['parts'] != 1 else ''}): "
                   f"{first['text']}")
    if preview.forced_ucs2_by:
        extra = preview.ucs2_extra_credits
        cost = (f"it costs {extra} extra credit{'s' if extra != 1 else ''}: replace it to save them" if extra
                else "here it costs nothing extra, but a longer text would pay for it")
        click.echo(f"Note: the character {preview.forced_ucs2_by!r} makes these texts UCS-2 (Chinese-capable), "
                   f"which fits fewer characters per SMS; {cost}.")
    if preview.identical_text_warning:
        click.echo(f"Warning: {preview.identical_text_warning}.")
    if preview.refused:
        reasons = ", ".join(f"{reason} {count}" for reason, count in preview.refused_by_reason.most_common())
        click.echo(f"{len(preview.refused)} row{'s' if len(preview.refused) != 1 else ''} refused ({reasons}):")
        for r in preview.refused[:50]:
            shown = mask_number(r.value) if r.reason in ("duplicate", "opted out") else r.value
            said_by_reason = r.value and r.reason in ("invalid", "not a mobile number", "duplicate")
            click.echo(f"  row {r.row}: {shown or '(empty)'}: {r.reason}"
                       + (f" - {r.detail}" if r.detail and not said_by_reason else ""))
        if len(preview.refused) > 50:
            click.echo(f"  ... and {len(preview.refused) - 50} more (--json lists them all)")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_settings
@friendly_errors
def status(settings: Settings, as_json: bool) -> None:
    """Show the queue (messages by state) and the modem's state."""
    from datetime import datetime

    data = build_status(settings.config, settings.open_queue())
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    q, m = data["queue"], data["modem"]
    click.echo("Queue:  " + "  ".join(f"{s} {q[s]}" for s in STATES))
    click.echo(f"Credit: {data['balance']}" + (f" - sending paused, {data['paused']}" if data["paused"] else ""))
    if data["sending_paused"]:
        held = data["sending_paused"]
        click.echo(f"Sending is paused for the whole box by {held['by']} since "
                   f"{datetime.fromtimestamp(held['at']).strftime('%Y-%m-%d %H:%M')}: 'smsgenie resume' sends again.")
    for m in data["modems"]:
        signal_text = "unknown" if m["signal"] == 99 else f"{m['signal']}/31 ({m['signal_dbm']} dBm)"
        name = m["label"] or "Modem"
        click.echo(f"{name}:  {m['state']} - {m['detail']}")
        click.echo(f"        operator {m['operator'] or '-'}, signal {signal_text}, {m['access'] or '-'}, "
                   f"port {m['port']}")
        if m["sent"]:
            s = m["sent"]
            click.echo(f"        sent: {s['minute']} last minute, {s['hour']} last hour, {s['day']} today "
                       f"({s['distinct_recipients_day']} people)")
        if m["paused"]:
            when = datetime.fromtimestamp(m["resumes_at"]).strftime("%H:%M") if m["resumes_at"] else "later"
            click.echo(f"        waiting: {m['paused']}, until {when}")
    if q["uncertain"]:
        click.echo(f"{q['uncertain']} message(s) are uncertain (the box stopped mid-send); check them, "
                   f"then 'smsgenie requeue --uncertain'.")


@cli.command()
@pass_settings
@friendly_errors
def pause(settings: Settings) -> None:
    """Stop sending for the whole box (the message in hand finishes); it stays paused across restarts."""
    q = settings.open_queue()
    SendingPause(q.db, q.clock).pause("the command line")
    click.echo("Sending paused. 'smsgenie resume' sends again.")


@cli.command()
@pass_settings
@friendly_errors
def resume(settings: Settings) -> None:
    """Send again after 'smsgenie pause' (or a pause from the counter panel or the web page)."""
    q = settings.open_queue()
    if SendingPause(q.db, q.clock).resume():
        click.echo("Sending resumed.")
    else:
        click.echo("Sending was not paused.")


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

    public_key, key_id = vendor_public_key(settings.config, "top-up codes are checked with it")
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


@vendor.command("sign-keywords")
@click.option("--key", "key_path", required=True, metavar="FILE", help="vendor.key")
@click.argument("words_file", type=click.Path(dir_okay=False))
@click.argument("out", type=click.Path(dir_okay=False))
@friendly_errors
def sign_keywords(key_path: str, words_file: str, out: str) -> None:
    """Sign WORDS_FILE (one word per line) into OUT, for boxes to import."""
    from datetime import date
    from pathlib import Path

    from appliance.keywords import read_words, sign_list
    from appliance.vendor import load_private_key

    words = read_words(Path(words_file).read_text(encoding="utf-8-sig"))
    if not words:
        raise click.ClickException(f"{words_file} has no words (one per line)")
    try:
        with open(out, "x", encoding="utf-8") as f:
            f.write(sign_list(load_private_key(key_path), words, date.today()))
    except FileExistsError:
        raise click.ClickException(f"{out} already exists: choose a new file name") from None
    click.echo(f"Signed {len(words)} words into {out}.")


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


@vendor.command("bundle")
@click.option("--key", "key_path", required=True, metavar="FILE", help="vendor.key")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The bundle file to write.")
@click.option("--notes", default="", help="What changed, shown on the box before it installs.")
@click.argument("wheels", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@friendly_errors
def bundle(key_path: str, out: str, notes: str, wheels: tuple[str, ...]) -> None:
    """Sign an update bundle: the smsgenie wheel and every wheel it needs on the box.

    scripts/make-update-bundle gathers the aarch64 wheels and calls this."""
    from appliance import update
    from appliance.vendor import load_private_key

    if Path(out).exists():
        raise click.ClickException(f"{out} already exists: choose a new file name")
    update.make(load_private_key(key_path), [Path(w) for w in wheels], Path(out), notes=notes)
    click.echo(f"Signed {len(wheels)} wheel(s) into {out}.")


@cli.group("clock")
def clock_group() -> None:
    """The box's clock check: sending waits while the clock is behind what the box recorded."""


@clock_group.command("reset")
@pass_settings
@friendly_errors
def clock_reset(settings: Settings) -> None:
    """Trust the clock as it is now (after a clock that ran ahead left a mark in the future)."""
    from datetime import datetime

    from appliance import timecheck

    db = Database.in_data_dir(settings.config.data_dir)
    try:
        before = timecheck.reset(db, SystemClock())
    finally:
        db.close()
    now = datetime.now().strftime("%Y-%m-%d %H:%M")
    if before is None:
        click.echo(f"The clock mark is now {now}.")
    else:
        click.echo(f"The clock mark was {datetime.fromtimestamp(before).strftime('%Y-%m-%d %H:%M')}; now {now}. "
                   f"Sending no longer waits for the clock.")


# --- updates, backups -------------------------------------------------------------------------------

DEFAULT_PREFIX = "/opt/smsgenie"
UPDATES_CHECKED = "update bundles are checked with it"
OVERLAY_LOWER = "/media/root-ro"  # where overlayroot shows the real (read-only) root file system


@cli.group()
def update() -> None:
    """Install a vendor-signed update bundle (from a USB stick, or uploaded on the web page)."""


@update.command("verify")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_settings
@friendly_errors
def update_verify(settings: Settings, file: str) -> None:
    """Check FILE's signature and contents; install nothing."""
    import tempfile

    from appliance import update as updatemod

    with tempfile.TemporaryDirectory(prefix="smsgenie-update-") as tmp:
        b = updatemod.verify(file, vendor_public_key(settings.config, UPDATES_CHECKED)[0], Path(tmp) / "b")
    click.echo(f"Good bundle: SMS Genie {b.version}, made {b.created}, {len(b.files)} wheel(s), signed by "
               f"your vendor.")
    if b.notes:
        click.echo(f"Notes: {b.notes}")


@update.command("install")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--from-upload", is_flag=True,
              help="Install the bundle uploaded on the web page (what smsgenie-update.service runs).")
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="Where the releases live.")
@click.option("--restart/--no-restart", default=False,
              help="Restart smsgenie.service after (reboot, when the root file system is read-only).")
@pass_settings
@friendly_errors
def update_install(settings: Settings, file: str | None, from_upload: bool, prefix: str, restart: bool) -> None:
    """Verify FILE, install it as a new release and make it current. The data dir is kept as it is."""
    import subprocess
    import tempfile

    from appliance import update as updatemod

    config = settings.config
    if from_upload:
        waiting = updatemod.pending(config.data_dir)
        if waiting is None:
            click.echo("No uploaded bundle waiting.")
            return
        file = str(waiting)
    if not file:
        raise click.UsageError("name the bundle FILE, or --from-upload")

    def finish(ok: bool, message: str, **extra) -> None:
        if from_upload:
            updatemod.write_result(config.data_dir, {"ok": ok, "message": message, **extra})
            Path(file).unlink(missing_ok=True)  # installed or refused: never tried again in a loop
        if not ok:
            raise click.ClickException(message)
        click.echo(message)

    try:
        key = vendor_public_key(config, UPDATES_CHECKED)[0]
        if prefix == DEFAULT_PREFIX and os.path.ismount(OVERLAY_LOWER):
            version = _install_under_overlay(file, key)
            finish(True, f"SMS Genie {version} installed on the read-only root; the box restarts to run it.",
                   version=version)
            if restart:
                subprocess.run(["systemctl", "reboot"], check=False)
            return
        with tempfile.TemporaryDirectory(prefix="smsgenie-update-") as tmp:
            bundle = updatemod.verify(file, key, Path(tmp) / "bundle")
            before, now = updatemod.install(bundle, prefix)
    except click.ClickException as exc:
        return finish(False, exc.message)
    except SmsGenieError as exc:
        return finish(False, str(exc))
    finish(True, f"SMS Genie {now} installed (was {before or 'none'}); the data dir is unchanged.",
           version=now, before=before)
    if restart:
        done = subprocess.run(["systemctl", "restart", "smsgenie.service"], capture_output=True, text=True)
        if done.returncode != 0:
            raise click.ClickException(f"installed, but smsgenie.service did not restart: {done.stderr.strip()}")


def _install_under_overlay(file: str, key) -> str:
    """On a read-only (overlay) root, install into the real root through overlayroot-chroot.

    The running system's /opt is a RAM layer over the card: a release made there would vanish at
    the next boot. overlayroot-chroot makes the card's root writable for one command."""
    import subprocess
    import tempfile

    from appliance import update as updatemod

    with tempfile.TemporaryDirectory(prefix="smsgenie-update-") as tmp:  # refuse a forged one here first
        version = updatemod.verify(file, key, Path(tmp) / "bundle").version
    inner = ("cat > /var/tmp/smsgenie-update.bundle && /opt/smsgenie/current/bin/smsgenie update install "
             "/var/tmp/smsgenie-update.bundle; rc=$?; rm -f /var/tmp/smsgenie-update.bundle; exit $rc")
    with open(file, "rb") as f:
        done = subprocess.run(["overlayroot-chroot", "/bin/sh", "-c", inner], stdin=f, capture_output=True,
                              text=True)
    if done.returncode != 0:
        raise click.ClickException(f"the install on the read-only root failed: {done.stderr.strip()[-300:]}")
    return version


def _passphrase(passphrase_file, *, new: bool) -> str:
    if passphrase_file is not None:
        return passphrase_file.readline().rstrip("\n")
    if new:
        return click.prompt("Backup passphrase (at least 8 characters; keep it with the stick's label: "
                            "without it the backup cannot be opened)", hide_input=True, confirmation_prompt=True)
    return click.prompt("Backup passphrase", hide_input=True)


@cli.command()
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--passphrase-file", type=click.File("r", encoding="utf-8"), help="Read the passphrase from a file.")
@pass_settings
@friendly_errors
def backup(settings: Settings, dest: str, passphrase_file) -> None:
    """Back up the message record, ledger, accounts and settings to DEST (a mounted USB stick), encrypted.

    The daemon may keep sending meanwhile."""
    from importlib.metadata import version as pkg_version

    from appliance import backup as backupmod
    from appliance.device import format_device_id

    info = backupmod.make(settings.config.data_dir, dest, _passphrase(passphrase_file, new=True),
                          device_id=format_device_id(this_device_id()), version=pkg_version("smsgenie"))
    click.echo(f"Backed up {info.messages} messages (record head {info.audit_head[:16]}) to {info.path}; "
               f"read back and checked. Unmount the stick before pulling it out: sudo umount {dest}")


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.option("--force", is_flag=True, help="Restore even though the data dir holds messages or credit "
                                            "(they are moved aside, not deleted).")
@click.option("--passphrase-file", type=click.File("r", encoding="utf-8"), help="Read the passphrase from a file.")
@pass_settings
@friendly_errors
def restore(settings: Settings, file: str, force: bool, passphrase_file) -> None:
    """Restore a backup made by 'smsgenie backup' (stop the daemon first: sudo systemctl stop smsgenie)."""
    from appliance import backup as backupmod
    from appliance.device import format_device_id

    info, aside = backupmod.restore(file, settings.config.data_dir, _passphrase(passphrase_file, new=False),
                                    force=force)
    click.echo(f"Restored {info.messages} messages from the backup made {info.created} on box {info.device_id}.")
    if aside is not None:
        click.echo(f"What the data dir held before is in {aside}.")
    here = format_device_id(this_device_id())
    if info.device_id != here:
        click.echo(f"This box is {here}, not {info.device_id}: the credit balance came with the backup; top-up "
                   f"codes made for {info.device_id} do not work here. Do not use the old card again.")
    click.echo("Start the daemon again: sudo systemctl start smsgenie")


# --- compliance: opt-outs, keywords, inbox, the record, settings ------------------------------------


def _e164(number: str, settings: Settings) -> str:
    from appliance import phones
    try:
        return phones.normalise(number, settings.box_settings()["default_region"]).e164
    except phones.NumberProblem as exc:
        raise click.ClickException(str(exc)) from None


@cli.group()
def optout() -> None:
    """Customers who asked not to get texts (replied TD/退订, or told the shop)."""


@optout.command("add")
@click.argument("number")
@click.option("--reason", required=True, help="Why, e.g. 'asked at the counter on 3 Dec'.")
@pass_settings
@friendly_errors
def optout_add(settings: Settings, number: str, reason: str) -> None:
    """Stop texting NUMBER."""
    from appliance.optout import OptOuts
    q = settings.open_queue()
    e164 = _e164(number, settings)
    added = OptOuts(q.db, q.clock).add(e164, "manual", reason)
    click.echo(f"{mask_number(e164)} {'added to' if added else 'was already on'} the opt-out list.")


@optout.command("remove")
@click.argument("number")
@click.option("--reason", required=True, help="Why the customer may be texted again.")
@pass_settings
@friendly_errors
def optout_remove(settings: Settings, number: str, reason: str) -> None:
    """Allow texting NUMBER again."""
    from appliance.optout import OptOuts
    q = settings.open_queue()
    e164 = _e164(number, settings)
    removed = OptOuts(q.db, q.clock).remove(e164, reason)
    click.echo(f"{mask_number(e164)} {'removed from' if removed else 'was not on'} the opt-out list.")


@optout.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.option("--full", is_flag=True, help="Show whole numbers (they are masked by default).")
@pass_settings
@friendly_errors
def optout_list(settings: Settings, as_json: bool, full: bool) -> None:
    """The opt-out list, oldest first."""
    from dataclasses import asdict
    from datetime import datetime

    from appliance.optout import OptOuts
    q = settings.open_queue()
    entries = OptOuts(q.db, q.clock).all()
    shown = [{**asdict(e), "number": e.number if full else mask_number(e.number)} for e in entries]
    if as_json:
        click.echo(json.dumps(shown, ensure_ascii=False))
        return
    if not shown:
        click.echo("Nobody has opted out.")
    for e in shown:
        when = datetime.fromtimestamp(e["added_at"]).strftime("%Y-%m-%d %H:%M")
        click.echo(f"{when}  {e['number']:<16} {e['source']:<7} {e['reason']}")


@cli.group()
def keywords() -> None:
    """Forbidden words: the vendor's signed list and the shop's own."""


@keywords.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_settings
@friendly_errors
def keywords_import(settings: Settings, file: str) -> None:
    """Replace the vendor's list with a signed list FILE from the vendor."""
    from pathlib import Path

    from appliance.keywords import KeywordStore, verify_list

    public_key = vendor_public_key(settings.config, "the vendor's keyword list is checked with it")[0]
    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read {file}: {exc}") from None
    words = verify_list(text, public_key)
    q = settings.open_queue()
    KeywordStore(q.db, q.clock).replace_vendor(words)
    click.echo(f"Imported the vendor's list: {len(words)} words.")


@keywords.command("add")
@click.argument("words", nargs=-1, required=True)
@click.option("--note", default="", help="Why the shop blocks these.")
@pass_settings
@friendly_errors
def keywords_add(settings: Settings, words: tuple[str, ...], note: str) -> None:
    """Add the shop's own forbidden WORDS."""
    from appliance.keywords import KeywordStore
    q = settings.open_queue()
    n = KeywordStore(q.db, q.clock).add_local(list(words), note)
    click.echo(f"Added {n} word{'s' if n != 1 else ''} to the shop's list.")


@keywords.command("remove")
@click.argument("word")
@pass_settings
@friendly_errors
def keywords_remove(settings: Settings, word: str) -> None:
    """Remove one of the shop's own words (the vendor's list cannot be edited here)."""
    from appliance.keywords import KeywordStore
    q = settings.open_queue()
    if not KeywordStore(q.db, q.clock).remove_local(word):
        raise click.ClickException(f"{word!r} is not on the shop's list (the vendor's list changes only by import)")
    click.echo(f"Removed {word!r}.")


@keywords.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_settings
@friendly_errors
def keywords_list(settings: Settings, as_json: bool) -> None:
    """Every forbidden word, the vendor's first."""
    from dataclasses import asdict

    from appliance.keywords import KeywordStore
    q = settings.open_queue()
    entries = KeywordStore(q.db, q.clock).all()
    if as_json:
        click.echo(json.dumps([asdict(k) for k in entries], ensure_ascii=False))
        return
    vendor_n = sum(1 for k in entries if k.source == "vendor")
    click.echo(f"{vendor_n} from the vendor, {len(entries) - vendor_n} the shop's own.")
    for k in entries:
        click.echo(f"  {k.source:<6} {k.word}" + (f"  ({k.note})" if k.note else ""))


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=50, show_default=True)
@click.option("--full", is_flag=True, help="Show whole numbers (masked by default).")
@pass_settings
@friendly_errors
def inbox(settings: Settings, as_json: bool, limit: int, full: bool) -> None:
    """Texts customers sent to the box, newest first, long ones joined."""
    from appliance.inbox import Inbox
    q = settings.open_queue()
    items = Inbox(q.db, q.clock).messages(limit)
    for item in items:
        if not full:
            item["sender"] = mask_number(item["sender"]) if item["sender"].lstrip("+").isdigit() else item["sender"]
    if as_json:
        click.echo(json.dumps(items, ensure_ascii=False))
        return
    if not items:
        click.echo("No texts received yet.")
    for m in items:
        text = m["text"] if m["text"] is not None else f"[could not be read: {m['problem']}]"
        extra = f"  [{m['parts_received']} of {m['parts']} parts]" if m["parts"] and not m["complete"] else ""
        click.echo(f"{m['sent_at'] or '-':<26} {m['sender']:<16} {text}{extra}")


@cli.group()
def audit() -> None:
    """The message record kept for lawful queries (at least 180 days)."""


@audit.command("verify")
@pass_settings
@friendly_errors
def audit_verify(settings: Settings) -> None:
    """Check that no row of the record was edited, deleted or inserted."""
    q = settings.open_queue()
    verdict = q.audit.verify()
    if not verdict.ok:
        raise click.ClickException(f"the record has been tampered with: {verdict.problem}")
    click.echo(f"The record is intact: {verdict.rows} rows, head {verdict.head[:16]}.")


@audit.command("export")
@click.option("--from", "start", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="First day.")
@click.option("--to", "end", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="Last day.")
@click.option("--number", help="Only this recipient.")
@click.option("--out", "out_path", required=True, metavar="FILE", help="A new CSV file (mode 0600).")
@pass_settings
@friendly_errors
def audit_export(settings: Settings, start, end, number: str | None, out_path: str) -> None:
    """Export the record between two days (inclusive) to CSV, for a lawful query."""
    from datetime import datetime, timedelta

    from appliance.audit import write_csv

    q = settings.open_queue()
    rows = q.audit.rows(start.timestamp(), (end + timedelta(days=1)).timestamp(),
                        _e164(number, settings) if number else None)
    try:
        n = write_csv(rows, out_path, lambda at: datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S"))
    except FileExistsError:
        raise click.ClickException(f"{out_path} already exists: choose a new file name") from None
    except OSError as exc:
        raise click.ClickException(f"cannot write {out_path}: {exc.strerror}") from None
    click.echo(f"Wrote {n} row{'s' if n != 1 else ''} to {out_path}.")


@audit.command("prune")
@pass_settings
@friendly_errors
def audit_prune(settings: Settings) -> None:
    """Delete rows older than the retention setting (never under 180 days); the daemon does this daily."""
    q = settings.open_queue()
    n = q.audit.prune(settings.box_settings()["audit_retention_days"])
    click.echo(f"Pruned {n} row{'s' if n != 1 else ''}.")


@cli.group("settings")
def settings_group() -> None:
    """The shop's settings: signature, default region, record retention, quiet hours, SIM caps."""


@settings_group.command("show")
@pass_settings
@friendly_errors
def settings_show(settings: Settings) -> None:
    for key, value in settings.box_settings().items():
        click.echo(f"{key} = {value!r}")


@settings_group.command("set")
@click.argument("key")
@click.argument("value")
@pass_settings
@friendly_errors
def settings_set(settings: Settings, key: str, value: str) -> None:
    """Set KEY to VALUE, e.g. smsgenie settings set signature 【小王便利店】.

    A SIM's cap is sim_caps.LABEL.CAP, e.g. sim_caps.modem1.per_hour 150; an empty VALUE puts
    it back to the config file's or the carrier's default.
    """
    from appliance.settings import ShopSettings as BoxSettings

    box = BoxSettings(ensure_data_dir(settings.config.data_dir))
    try:
        parts = key.split(".")
        if parts[0] == "sim_caps" and len(parts) == 3:
            label, cap = parts[1], parts[2]
            if label not in {m.label for m in settings.config.modems}:
                raise SettingsError(f"no modem called {label!r} in the config; the modems are: "
                                    f"{', '.join(m.label for m in settings.config.modems)}")
            caps = dict(box.get("sim_caps").get(label, {}))
            caps[cap] = value
            box.set_caps(label, caps)
            click.echo(f"{key} = {box.get('sim_caps').get(label, {}).get(cap, '(default)')!r}")
        else:
            box.set(key, value)
            click.echo(f"{key} = {box.get(key)!r}")
    finally:
        box.close()


def main() -> None:
    cli(prog_name="smsgenie")
