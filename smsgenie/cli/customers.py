"""The customer book: import, export, list, show, tag, consent, ask, erase; and recurring sends."""

from __future__ import annotations

import json
import sys
from datetime import datetime

import click

from appliance.asking import Asking
from appliance.book import Book
from appliance.bookfile import BookImport, export, export_xlsx
from appliance.consent import GIVEN_BY_HAND, SOURCES, Consent
from appliance.erasure import Erasure
from appliance.intake import Intake
from appliance.privacy import mask_number
from appliance.recurring import EVERY, RecurringSends
from appliance.saved import SavedTemplates
from appliance.text import say
from appliance.words import words
from smsgenie.cli.common import Globals, counted, echo, friendly_errors, pass_globals, said, usage


@click.group()
def customers() -> None:
    """The shop's customers: the book, their consent, and sends that come back."""


def _shown(number: str, full: bool) -> str:
    return number if full else mask_number(number)


@customers.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--attest", default="", metavar="TEXT",
              help="The shop's attestation that the new customers agreed to marketing texts, e.g. '2026年会员登记表"
                   " signed by each customer, filed at the counter'. Without it their consent stays unknown.")
@click.option("--dry-run", is_flag=True, help="Show what would change, change nothing.")
@click.option("--json", "as_json", is_flag=True)
@pass_globals
@friendly_errors
def import_(g: Globals, file: str, attest: str, dry_run: bool, as_json: bool) -> None:
    """Add or update customers from FILE (CSV or XLSX, the same columns a send list has)."""
    q = g.open_queue()
    importer = BookImport(q.db, q.clock, region=g.shop()["default_region"])
    result = (importer.preview(file, attestation=attest) if dry_run
              else importer.apply(file, by="cli", attestation=attest))
    answer = {**result.as_dict(), "dry_run": dry_run}
    if as_json:
        click.echo(json.dumps(answer, ensure_ascii=False))
        return
    counts = {k: answer[k] for k in ("new", "updated", "unchanged", "refused", "consent_attested")}
    echo(say("Would import {name}: {new} new, {updated} updated, {unchanged} unchanged, {refused} refused; consent "
             "attested for {consent_attested}.", name=result.name, **counts) if dry_run else
         say("Imported {name}: {new} new, {updated} updated, {unchanged} unchanged, {refused} refused; consent "
             "attested for {consent_attested}.", name=result.name, **counts))
    echo(say("  columns: "), ", ".join(f"{c} -> {said(words(r))}" for c, r in result.columns.items()))
    for r in result.refused_rows[:50]:
        echo(say("  row {row}: {value}: {reason}", row=r["row"], value=r["value"] or said(say("(empty)")),
                 reason=r["reason"]))


@customers.command("export")
@click.argument("file", type=click.Path(dir_okay=False), required=False)
@click.option("--tag", help="Only the customers with this tag.")
@pass_globals
@friendly_errors
def export_(g: Globals, file: str | None, tag: str | None) -> None:
    """Write the book as CSV (to FILE, or the screen), or as XLSX when FILE ends in .xlsx."""
    q = g.open_queue()
    book = Book(q.db, q.clock)
    if file and file.lower().endswith(".xlsx"):
        n = export_xlsx(book, file, tag=tag)
    elif file:
        with open(file, "w", encoding="utf-8-sig", newline="") as f:
            n = export(book, f, tag=tag)
    else:
        n = export(book, sys.stdout, tag=tag)
        return
    echo(say("Wrote {customers} to {file}.", customers=counted(n, "customer"), file=file))


@customers.command("list")
@click.option("--search", default="", help="Part of a number or a name.")
@click.option("--tag")
@click.option("--consent", type=click.Choice(["unknown", "given", "refused"]))
@click.option("--limit", default=50, show_default=True)
@click.option("--full", is_flag=True, help="Show whole numbers (they are masked by default).")
@click.option("--json", "as_json", is_flag=True)
@pass_globals
@friendly_errors
def list_(g: Globals, search: str, tag: str | None, consent: str | None, limit: int, full: bool,
          as_json: bool) -> None:
    """Customers, most recently changed first."""
    q = g.open_queue()
    found, total = Book(q.db, q.clock).search(search, tag=tag, consent=consent, limit=limit)
    if as_json:
        click.echo(json.dumps({"total": total, "customers": [
            {"number": _shown(c.number, full), "name": c.name, "birthday": c.birthday, "tags": c.tags,
             "fields": c.fields, "consent": c.consent} for c in found]}, ensure_ascii=False))
        return
    echo(counted(total, "customer"), say(" (showing {n})", n=len(found)) if total > len(found) else "")
    for c in found:
        echo(f"  {_shown(c.number, full):<16} {c.name or '-':<8} {said(words(c.consent)):<8} {','.join(c.tags)}")


@customers.command("show")
@click.argument("number")
@click.option("--full", is_flag=True)
@pass_globals
@friendly_errors
def show(g: Globals, number: str, full: bool) -> None:
    """One customer, with their consent's evidence and its history."""
    q = g.open_queue()
    e164 = g.e164(number)
    c = Book(q.db, q.clock).get(e164)
    echo(f"{_shown(c.number, full)}  {c.name}  ", say("birthday {day}  tags {tags}", day=c.birthday or "-",
                                                      tags=", ".join(c.tags) or "-"))
    for k, v in c.fields.items():
        echo(f"  {k}: {v}")
    echo(say("  consent: {state}", state=words(c.consent)), f" - {said(c.evidence.evidence)}" if c.evidence else "")
    for e in Consent(q.db, q.clock).history(e164):
        by = said(say(" by {who}", who=e.recorded_by)) if e.recorded_by else ""
        echo(f"    {datetime.fromtimestamp(e.at):%Y-%m-%d %H:%M} {said(words(e.state)):<8} {said(e.evidence)}{by}",
             f" - {said(e.note)}" if e.note else "")


@customers.command("tag")
@click.argument("tag")
@click.argument("numbers", nargs=-1, required=True)
@click.option("--remove", is_flag=True, help="Take the tag off instead.")
@pass_globals
@friendly_errors
def tag_(g: Globals, tag: str, numbers: tuple[str, ...], remove: bool) -> None:
    """Put TAG on (or take it off) the customers NUMBERS."""
    q = g.open_queue()
    n = Book(q.db, q.clock).tag([g.e164(x) for x in numbers], tag, by="cli", remove=remove)
    echo(say("Untagged {customers} {tag}.", customers=counted(n, "customer"), tag=tag) if remove else
         say("Tagged {customers} {tag}.", customers=counted(n, "customer"), tag=tag))


@customers.command("consent")
@click.argument("number")
@click.option("--source", type=click.Choice(GIVEN_BY_HAND), default="paper", show_default=True)
@click.option("--reference", required=True, help="The evidence: the form's number, or where it is filed.")
@pass_globals
@friendly_errors
def consent_(g: Globals, number: str, source: str, reference: str) -> None:
    """Record that NUMBER agreed to marketing texts, with the evidence."""
    q = g.open_queue()
    e164 = g.e164(number)
    event = Consent(q.db, q.clock).give(e164, source, reference, by="cli")
    echo(say("Consent of {number} recorded ({source} {reference}; event #{event}).", number=mask_number(e164),
             source=SOURCES[source], reference=reference, event=event))


@customers.command("ask")
@click.argument("numbers", nargs=-1, required=True)
@click.option("--counter", is_flag=True, help="They said yes at the counter: the SMS confirms it.")
@pass_globals
@friendly_errors
def ask(g: Globals, numbers: tuple[str, ...], counter: bool) -> None:
    """Text NUMBERS the consent question (double opt-in); a reply Y records their consent."""
    q = g.open_queue()
    n = Asking(q.db, q.clock).ask(Intake(q.db, q.clock, g.config), [g.e164(x) for x in numbers],
                                  origin="counter" if counter else "asked", by="cli")
    echo(say("Queued the question to {customers} (others consented already or have one open).",
             customers=counted(n, "customer")))


@customers.command("erase")
@click.argument("number")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_globals
@friendly_errors
def erase(g: Globals, number: str, yes: bool) -> None:
    """Forget a customer: out of the book, number and name masked in messages and the inbox."""
    q = g.open_queue()
    e164 = g.e164(number)
    if not yes:
        click.confirm(said(say("Erase {number}? The lawful record keeps its rows until their retention ends",
                               number=mask_number(e164))), abort=True)
    done = Erasure(q.db, q.clock).erase(e164, by="cli")
    echo(say("Erased {number}: {messages} messages and {inbound} texts masked, {cancelled} waiting messages "
             "cancelled", number=mask_number(e164), messages=done["messages"], inbound=done["inbound"],
             cancelled=done["messages_cancelled"]),
         say("; the refusal is kept so they are never texted") if done["kept_refusal"] else "", ".")


@customers.command("recurring")
@click.option("--add", "name", help="Add a recurring send with this name.")
@click.option("--every", type=click.Choice(EVERY))
@click.option("--day", type=int, help="Monthly: day of the month (1-31); weekly: 0 (Monday) to 6.")
@click.option("--at", "at", default="10:00", show_default=True, help="Local time of day.")
@click.option("--tag", help="Only the customers with this tag.")
@click.option("--text", help="The template, e.g. '{姓名}生日快乐！本月到店享8折'.")
@click.option("--transactional", is_flag=True)
@pass_globals
@friendly_errors
def recurring(g: Globals, name: str | None, every: str | None, day: int | None, at: str, tag: str | None,
              text: str | None, transactional: bool) -> None:
    """List the recurring sends and their last runs, or add one (--add NAME --every ... --text ...)."""
    q = g.open_queue()
    sends = RecurringSends(q.db, q.clock)
    if name:
        if not every or not text:
            raise usage(say("--add needs --every and --text"))
        rid = sends.add(name, every, text, at=at, by="cli", day=day, tag=tag,
                        kind="transactional" if transactional else "marketing")
        echo(say("Recurring send #{id} {name} added.", id=rid, name=repr(name)))
        return
    for r in sends.all():
        when = {"birthday": say("every birthday"), "monthly": say("monthly on the {day}", day=r.day),
                "weekly": say("weekly on day {day}", day=r.day)}[r.every]
        echo(say("#{id} {name}: {when} at {at}, {who}", id=r.id, name=r.name, when=when, at=r.at,
                 who=r.tag or said(say("all customers"))), "" if r.enabled else say(" (off)"))
    for run in sends.runs(10):
        echo(f"  {run['day']} {run['name']}: {said(words(run['outcome']))} {run['messages'] or ''} ",
             said(run["reason"]) if run["reason"] else "")


@customers.command("templates")
@click.option("--save", "name", help="Save TEXT under this name (a name used before is replaced).")
@click.option("--text", help="The template, e.g. '{姓名}您好！本周六会员日全场9折'.")
@click.option("--delete", "delete_id", type=int, help="Delete the saved template with this id.")
@pass_globals
@friendly_errors
def templates(g: Globals, name: str | None, text: str | None, delete_id: int | None) -> None:
    """The shop's saved templates: list them, save one, or delete one."""
    q = g.open_queue()
    store = SavedTemplates(q.db, q.clock)
    if name:
        if not text:
            raise usage(say("--save needs --text"))
        echo(say("Saved template #{id} {name}.", id=store.save(name, text, by="cli"), name=repr(name)))
    elif delete_id is not None:
        echo(say("Deleted.") if store.delete(delete_id) else say("No saved template #{id}.", id=delete_id))
    else:
        for t in store.all():
            echo(f"#{t.id} {t.name}: {t.text}")


COMMANDS = (customers,)
