"""Credits: the box's device id, top-up codes, the balance and the ledger."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, datetime

import click

from appliance import boxkey
from appliance import topup as topups
from appliance.device import format_device_id
from appliance.ledger import kind_words
from appliance.states import state_words
from appliance.text import say
from smsgenie.cli import common
from smsgenie.cli.common import Globals, echo, friendly_errors, pass_globals, said, vendor_public_key


@click.command("device-id")
@pass_globals
@friendly_errors
def device_id(g: Globals) -> None:
    """Print this box's device id (tell it to the vendor to buy credit)."""
    click.echo(format_device_id(common.this_device_id(g.config.data_dir)))


@click.command()
@click.argument("code", nargs=-1, required=True)
@pass_globals
@friendly_errors
def topup(g: Globals, code: tuple[str, ...]) -> None:
    """Redeem a top-up CODE from the vendor (dashes and spaces are fine)."""
    public_key, key_id = vendor_public_key(g.config, say("top-up codes are checked with it"))
    q = g.open_queue()
    verified = topups.verify(" ".join(code), public_key, key_id, common.this_device_id(g.config.data_dir),
                             date.fromtimestamp(q.clock.time()))
    balance = topups.redeem(q, verified, boxkey.load(g.box_dir))
    echo(say("Added {credits} credits (code {serial}). Balance: {balance} credits.", credits=verified.credits,
             serial=verified.serial_text, balance=balance))
    echo(say("Receipt for your vendor (read or send it back to them; it vouches for this box's message record):"))
    click.echo(topups.receipt_of(q, verified))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_globals
@friendly_errors
def balance(g: Globals, as_json: bool) -> None:
    """Show the credit balance (1 credit = 1 SMS part)."""
    q = g.open_queue()
    value = q.ledger.balance()
    shortfall = q.waiting_for_credit()
    if as_json:
        click.echo(json.dumps({"balance": value, "paused": str(shortfall) if shortfall else None}))
        return
    echo(say("Balance: {balance} credits.", balance=value))
    if shortfall:
        echo(say("Sending is paused, {why}.", why=shortfall.text))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.option("--limit", default=100, show_default=True, help="How many of the newest entries.")
@pass_globals
@friendly_errors
def ledger(g: Globals, as_json: bool, limit: int) -> None:
    """Show the credit history with the running balance."""
    entries = g.open_queue().ledger.history(limit)
    if as_json:
        click.echo(json.dumps([asdict(e) for e in entries], ensure_ascii=False))
        return
    if not entries:
        echo(say("No credit movements yet."))
    for e in entries:
        about = said(e.note or "")
        if e.message_id:
            about = said(say("message {id} ({state})", id=e.message_id, state=state_words(e.message_state))) + (
                f": {about}" if about else "")
            if e.message_state == "uncertain" and e.kind == "debit":
                about += said(say(" - stays charged, it most likely went out"))
        kind = said(kind_words(e.kind))
        echo(f"{datetime.fromtimestamp(e.at):%Y-%m-%d %H:%M}  {kind:<10} {e.credits:>+8}  ",
             say("balance {balance}", balance=f"{e.balance:>8}"), f"  {about}")


@click.command("box-key")
@pass_globals
@friendly_errors
def box_key(g: Globals) -> None:
    """Print this box's public signing key (for the vendor: it checks the record's exports and receipts)."""
    key = boxkey.load(g.box_dir)
    click.echo(key.public_line)
    echo(say("(key {key}, box {box})", key=key.key_id, box=format_device_id(common.this_device_id(g.box_dir))))


COMMANDS = (device_id, box_key, topup, balance, ledger)
