"""Compliance: opt-outs, forbidden words, the inbox, the message record, the shop's settings."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import click

from appliance import shop
from appliance.audit import day_span
from appliance.consent import source_words
from appliance.errors import SettingsError
from appliance.inbox import Inbox
from appliance.keywords import KeywordStore, verify_list
from appliance.optout import OptOuts
from appliance.privacy import mask_number
from appliance.settings import read_settings, save_caps, save_setting
from appliance.text import say
from smsgenie.cli.common import Globals, counted, echo, friendly_errors, pass_globals, refusal, said, vendor_public_key

# --- opt-outs ---------------------------------------------------------------------------------------


@click.group()
def optout() -> None:
    """Customers who asked not to get texts (replied TD/退订, or told the shop)."""


@optout.command("add")
@click.argument("number")
@click.option("--reason", required=True, help="Why, e.g. 'asked at the counter on 3 Dec'.")
@pass_globals
@friendly_errors
def optout_add(g: Globals, number: str, reason: str) -> None:
    """Stop texting NUMBER."""
    q = g.open_queue()
    e164 = g.e164(number)
    added = OptOuts(q.db, q.clock).add(e164, "manual", reason)
    echo(say("{number} added to the opt-out list.", number=mask_number(e164)) if added else
         say("{number} was already on the opt-out list.", number=mask_number(e164)))


@optout.command("remove")
@click.argument("number")
@click.option("--reason", required=True, help="Why the customer may be texted again.")
@pass_globals
@friendly_errors
def optout_remove(g: Globals, number: str, reason: str) -> None:
    """Allow texting NUMBER again."""
    q = g.open_queue()
    e164 = g.e164(number)
    removed = OptOuts(q.db, q.clock).remove(e164, reason)
    echo(say("{number} removed from the opt-out list.", number=mask_number(e164)) if removed else
         say("{number} was not on the opt-out list.", number=mask_number(e164)))


@optout.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.option("--full", is_flag=True, help="Show whole numbers (they are masked by default).")
@pass_globals
@friendly_errors
def optout_list(g: Globals, as_json: bool, full: bool) -> None:
    """The opt-out list, oldest first."""
    q = g.open_queue()
    shown = [{**asdict(e), "number": e.number if full else mask_number(e.number)} for e in OptOuts(q.db, q.clock).all()]
    if as_json:
        click.echo(json.dumps(shown, ensure_ascii=False))
        return
    if not shown:
        echo(say("Nobody has opted out."))
    for e in shown:
        echo(f"{datetime.fromtimestamp(e['added_at']):%Y-%m-%d %H:%M}  {e['number']:<16} ",
             f"{said(source_words(e['source'])):<7} {said(e['reason'])}")


# --- forbidden words ---------------------------------------------------------------------------------


@click.group()
def keywords() -> None:
    """Forbidden words: the vendor's signed list and the shop's own."""


@keywords.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_globals
@friendly_errors
def keywords_import(g: Globals, file: str) -> None:
    """Replace the vendor's list with a signed list FILE from the vendor."""
    public_key = vendor_public_key(g.config, say("the vendor's keyword list is checked with it"))[0]
    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise refusal(say("cannot read {file}: {why}", file=file, why=str(exc))) from None
    signed = verify_list(text, public_key)
    q = g.open_queue()
    if KeywordStore(q.db, q.clock).replace_vendor(signed):
        echo(say("Imported the vendor's list version {version} of {issued}: {words}.", version=signed.version,
                 issued=signed.issued, words=counted(len(signed.words), "word")))
    else:
        echo(say("The box has the vendor's list version {version} already: nothing changed.",
                 version=signed.version))


@keywords.command("add")
@click.argument("words", nargs=-1, required=True)
@click.option("--note", default="", help="Why the shop blocks these.")
@pass_globals
@friendly_errors
def keywords_add(g: Globals, words: tuple[str, ...], note: str) -> None:
    """Add the shop's own forbidden WORDS."""
    q = g.open_queue()
    n = KeywordStore(q.db, q.clock).add_local(list(words), note)
    echo(say("Added {words} to the shop's list.", words=counted(n, "word")))


@keywords.command("remove")
@click.argument("word")
@pass_globals
@friendly_errors
def keywords_remove(g: Globals, word: str) -> None:
    """Remove one of the shop's own words (the vendor's list cannot be edited here)."""
    q = g.open_queue()
    if not KeywordStore(q.db, q.clock).remove_local(word):
        raise refusal(say("{word} is not on the shop's list (the vendor's list changes only by import)",
                          word=repr(word)))
    echo(say("Removed {word}.", word=repr(word)))


@keywords.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_globals
@friendly_errors
def keywords_list(g: Globals, as_json: bool) -> None:
    """Every forbidden word, the vendor's first."""
    q = g.open_queue()
    entries = KeywordStore(q.db, q.clock).all()
    if as_json:
        click.echo(json.dumps([asdict(k) for k in entries], ensure_ascii=False))
        return
    vendor_n = sum(1 for k in entries if k.source == "vendor")
    current = KeywordStore(q.db, q.clock).vendor_list()
    if current is None:
        echo(say("No list from the vendor yet: marketing lists are refused until one is imported "
                 "(smsgenie keywords import FILE)."))
    elif current.issued:
        echo(say("The vendor's list: version {version}, issued {issued}.", version=current.version,
                 issued=current.issued))
    else:
        echo(say("The vendor's list: version {version}.", version=current.version))
    echo(say("{vendor} from the vendor, {own} the shop's own.", vendor=vendor_n, own=len(entries) - vendor_n))
    for k in entries:
        source = said(say("vendor") if k.source == "vendor" else say("shop"))
        echo(f"  {source:<6} {k.word}", f"  ({k.note})" if k.note else "")


# --- the inbox and the record -----------------------------------------------------------------------


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=50, show_default=True)
@click.option("--full", is_flag=True, help="Show whole numbers (masked by default).")
@pass_globals
@friendly_errors
def inbox(g: Globals, as_json: bool, limit: int, full: bool) -> None:
    """Texts customers sent to the box, newest first, long ones joined."""
    q = g.open_queue()
    items = Inbox(q.db, q.clock).messages(limit)
    for item in items:
        if not full and item["sender"].lstrip("+").isdigit():
            item["sender"] = mask_number(item["sender"])
    if as_json:
        click.echo(json.dumps(items, ensure_ascii=False))
        return
    if not items:
        echo(say("No texts received yet."))
    for m in items:
        text = m["text"] if m["text"] is not None else said(say("[could not be read: {problem}]",
                                                                 problem=m["problem"]))
        extra = said(say("  [{received} of {parts} parts]", received=m["parts_received"], parts=m["parts"])) \
            if m["parts"] and not m["complete"] else ""
        echo(f"{m['sent_at'] or '-':<26} {m['sender']:<16} {text}{extra}")


@click.group()
def audit() -> None:
    """The message record kept for lawful queries (at least 180 days)."""


@audit.command("verify")
@pass_globals
@friendly_errors
def audit_verify(g: Globals) -> None:
    """Check that no row of the record was edited, deleted or inserted."""
    verdict = g.open_queue().audit.verify()
    if not verdict.ok:
        raise refusal(say("the record has been tampered with: {problem}", problem=verdict.problem))
    echo(say("The record is intact: {rows}, head {head}.", rows=counted(verdict.rows, "row"), head=verdict.head[:16]))


@audit.command("export")
@click.option("--from", "start", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="First day.")
@click.option("--to", "end", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="Last day.")
@click.option("--number", help="Only this recipient.")
@click.option("--out", "out_path", required=True, metavar="FILE",
              help="A new .zip file (mode 0600): the rows as CSV and JSON lines, a manifest, the box's signature.")
@pass_globals
@friendly_errors
def audit_export(g: Globals, start: datetime, end: datetime, number: str | None, out_path: str) -> None:
    """Export the record between two days (inclusive), signed by the box, for a lawful query."""
    from appliance.export import Range, export_box  # noqa: PLC0415 - cryptography only when needed

    span = Range(f"{start:%Y-%m-%d}", f"{end:%Y-%m-%d}", *day_span(start.date(), end.date()),
                 g.e164(number) if number else None)
    try:
        fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise refusal(say("{file} already exists: choose a new file name", file=out_path)) from None
    except OSError as exc:
        raise refusal(say("cannot write {file}: {why}", file=out_path, why=exc.strerror)) from None
    with os.fdopen(fd, "wb") as f:
        manifest = export_box(f, g.open_queue(), g.box_dir, span)
    echo(say("Wrote {rows} to {file}, signed by this box (key {key}). Check it anywhere with: smsgenie audit "
             "verify-export {file}", rows=counted(manifest["rows"], "row"), file=out_path, key=manifest["box_key_id"]))


@audit.command("verify-export")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--key", metavar="LINE", help="The box's public key (ed25519:...) as the vendor recorded it.")
@friendly_errors
def audit_verify_export(file: str, key: str | None) -> None:
    """Check a record export: the box's signature, both files, every row's link. Needs no box."""
    from appliance import export  # noqa: PLC0415

    m = export.check(file, key)
    span = m["range"]
    to = said(say(" to {number}", number=mask_number(span["number"]))) if span["number"] else ""
    shop_name = m["shop"]["name"] or said(say("no shop name"))
    echo(say("The export is intact: {rows} from {start} to {end}{to}, made {created} by box {device} ({shop}).",
             rows=counted(m["rows"], "row"), start=span["from"], end=span["to"], to=to, created=m["created"],
             device=m["device"], shop=shop_name + (f", {m['shop']['licence']}" if m["shop"]["licence"] else "")))
    if key:
        echo(say("Signed by the box key you gave ({key}).", key=m["box_key_id"]))
    else:
        echo(say("Signed by box key {key}: compare it with the key the vendor recorded for this box (or give it "
                 "with --key) - anyone can sign with a key of their own.", key=m["box_key_id"]))


@audit.command("prune")
@pass_globals
@friendly_errors
def audit_prune(g: Globals) -> None:
    """Delete rows older than the retention setting (never under 180 days); the daemon does this daily."""
    n = g.open_queue().audit.prune(g.shop()["audit_retention_days"])
    echo(say("Pruned {rows}.", rows=counted(n, "row")))


# --- the shop's settings ------------------------------------------------------------------------------


@click.group("settings")
def settings_group() -> None:
    """The shop's settings: signature, default region, record retention, quiet hours, SIM caps."""


@settings_group.command("show")
@pass_globals
@friendly_errors
def settings_show(g: Globals) -> None:
    for key, value in read_settings(g.box_dir).items():
        click.echo(f"{key} = {value!r}")


@settings_group.command("set")
@click.argument("key")
@click.argument("value")
@pass_globals
@friendly_errors
def settings_set(g: Globals, key: str, value: str) -> None:
    """Set KEY to VALUE, e.g. smsgenie settings set signature 【小王便利店】.

    A SIM's cap is sim_caps.LABEL.CAP, e.g. sim_caps.modem1.per_hour 150; an empty VALUE puts
    it back to the config file's or the carrier's default.
    """
    parts = key.split(".")
    if parts[0] == "sim_caps" and len(parts) == 3:
        label, cap = parts[1], parts[2]
        labels = [m.label for m in g.config.modems]
        if label not in labels:
            raise SettingsError(f"no modem called {label!r} in the config; the modems are: {', '.join(labels)}")
        caps = dict(read_settings(g.box_dir)["sim_caps"].get(label, {}))
        caps[cap] = value
        click.echo(f"{key} = {save_caps(g.box_dir, label, caps).get(cap, '(default)')!r}")
    else:
        click.echo(f"{key} = {save_setting(g.box_dir, key, value)!r}")


@click.command("shop")
@click.option("--name", help="The shop's name, as the message record names it.")
@click.option("--licence", help="Its unified social credit code or licence number ('' for none).")
@pass_globals
@friendly_errors
def shop_identity(g: Globals, name: str | None, licence: str | None) -> None:
    """Show, or set, who the shop is: every row of the message record names it."""
    db = g.open_db()
    current = shop.read(db.conn)
    if name is not None or licence is not None:
        current = shop.save(db, current.name if name is None else name,
                            current.licence if licence is None else licence)
    echo(say("Shop: {name}; licence: {licence}", name=current.name or said(say("(not set: smsgenie shop --name ...)")),
             licence=current.licence or said(say("(none)"))))


COMMANDS = (optout, keywords, inbox, audit, settings_group, shop_identity)
