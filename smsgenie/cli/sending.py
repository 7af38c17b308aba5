"""Sending: queue a list, see the box's state, pause and resume, requeue the uncertain."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime

import click

from appliance.carriers import NumberCarriers
from appliance.intake import Intake
from appliance.lock import DataDirLock
from appliance.messages import STATES, TRANSACTIONAL
from appliance.pause import SendingPause, paused_by_words
from appliance.phones import carrier_words
from appliance.preview import DUPLICATE, INVALID, NOT_MOBILE, OPTED_OUT, REFUSED_KEPT, Preview
from appliance.privacy import mask_number
from appliance.sendlist import count_rows
from appliance.simhealth import SimHolds
from appliance.states import state_words
from appliance.status import status as build_status
from appliance.text import say
from smsgenie.cli.common import Globals, counted, echo, friendly_errors, pass_globals, refusal, said, usage

AT_FORMATS = ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"]


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--text", help="The message, the same for everyone (braces are literal).")
@click.option("--template", help="The message with {column} merge fields from the list, e.g. '{姓名}您好...'.")
@click.option("--at", "start_at", type=click.DateTime(formats=AT_FORMATS),
              help="Start at this time (box local time), e.g. '2026-12-01 09:00'.")
@click.option("--transactional", is_flag=True,
              help="Messages a customer expects (e.g. 'your order is ready'): they ignore quiet hours.")
@click.option("--dry-run", is_flag=True, help="Check and price the list; queue nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the preview as one JSON object.")
@pass_globals
@friendly_errors
def send(g: Globals, file: str, text: str | None, template: str | None, start_at: datetime | None,
         transactional: bool, dry_run: bool, as_json: bool) -> None:
    """Check FILE (CSV or XLSX) row by row, price it, and queue a message for every good row."""
    if (text is None) == (template is None):
        raise usage(say("give --text (the same text for everyone) or --template (with {fields} fields)",
                        fields="{column}"))
    q = g.open_queue()
    intake = Intake(q.db, q.clock, g.config)
    at = intake.check_start(start_at.timestamp()) if start_at else None
    kind = TRANSACTIONAL if transactional else "marketing"
    message = template if template is not None else text
    with RowProgress(file, enabled=not as_json) as progress:
        if dry_run:
            queued, preview = None, intake.check_file(file, message, literal=template is None, kind=kind,
                                                      progress=progress.update).preview
        else:
            queued, preview = intake.queue_file(file, message, literal=template is None, kind=kind, start_at=at,
                                                by="cli", progress=progress.update)
    n_queued = queued.count if queued else 0
    if as_json:
        click.echo(json.dumps({**preview.as_dict(), "dry_run": dry_run, "queued": n_queued,
                               "send_list_id": queued.list_id if queued else None, "kind": kind,
                               "start_at": at}, ensure_ascii=False))
    else:
        print_preview(preview, queued=n_queued, dry_run=dry_run)
        if at:
            echo(say("The list starts at {at}.", at=f"{datetime.fromtimestamp(at):%Y-%m-%d %H:%M}"))
        quiet = g.shop()["quiet_hours"]
        if not transactional and quiet:
            echo(say("Marketing list: it waits during the quiet hours ({quiet}); "
                     "--transactional for messages a customer expects.", quiet=quiet))
        if queued and not DataDirLock.held(g.box_dir):
            echo(say("Note: the smsgenie daemon is not running; the messages go out when it starts."))
    if not preview.accepted:
        raise refusal(say("no row of {name} can be sent (see the reasons above)", name=preview.list_name))


class RowProgress:
    """Rows read so far, as a bar on a terminal (nothing when the output is piped or ``enabled`` is False).

    A CSV's lines are counted first (fast: bytes, not rows) so the bar knows its end; for XLSX it counts up."""

    def __init__(self, path: str, *, enabled: bool = True, stream=None):
        self.stream = stream or sys.stderr
        self.on = enabled and self.stream.isatty()
        self.total = count_rows(path) if self.on else None
        self._shown_at = 0.0
        self._started = time.monotonic()
        self._width = 0

    def update(self, rows: int, refused: int = 0) -> None:
        now = time.monotonic()
        if not self.on or now - self._shown_at < 0.2:
            return
        self._shown_at = now
        rate = rows / max(now - self._started, 1e-6)
        if self.total:
            done = min(1.0, rows / self.total)
            bar = "#" * int(done * 30)
            left = (self.total - rows) / rate if rate else 0
            line = said(say("Reading [{bar}] {rows}/{total} rows, {refused} refused, about {left} s left",
                            bar=f"{bar:<30}", rows=f"{rows:,}", total=f"{self.total:,}", refused=f"{refused:,}",
                            left=f"{left:.0f}"))
        else:
            line = said(say("Reading: {rows} rows, {refused} refused ({rate}/s)", rows=f"{rows:,}",
                            refused=f"{refused:,}", rate=f"{rate:,.0f}"))
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)

    def __enter__(self) -> "RowProgress":
        return self

    def __exit__(self, *exc) -> None:
        if self.on and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()


def print_preview(preview: Preview, *, queued: int, dry_run: bool) -> None:
    n = preview.accepted
    parts = preview.credits_needed
    done = counted(queued if not dry_run else n, "message")
    echo(say("Would queue {messages} from {name} ({parts} in all; numbers from column '{column}').", messages=done,
             name=preview.list_name, parts=counted(parts, "part"), column=preview.phone_column) if dry_run else
         say("Queued {messages} from {name} ({parts} in all; numbers from column '{column}').", messages=done,
             name=preview.list_name, parts=counted(parts, "part"), column=preview.phone_column))
    if n:
        encodings = ", ".join(f"{count} {'GSM-7' if enc == 'gsm7' else 'UCS-2'}"
                              for enc, count in sorted(preview.by_encoding.items()))
        carriers = ", ".join(said(say("{carrier} {n} ({credits} credits)", carrier=carrier_words(c), n=m,
                                      credits=preview.credits_by_carrier[c]))
                             for c, m in preview.messages_by_carrier.most_common())
        echo(say("  encoding: {encodings}; by carrier: {carriers}", encodings=encodings, carriers=carriers))
        echo(say("  credits needed {parts}, balance {balance}", parts=parts, balance=preview.balance),
             "" if preview.enough_credit else say(" - not enough: sending will pause until a top-up"))
        first = preview.samples[0]
        echo(say("  first message ({to}, {parts}): {text}", to=first["to"], parts=counted(first["parts"], "part"),
                 text=first["text"]))
    if preview.forced_ucs2_by:
        extra = preview.ucs2_extra_credits
        echo(say("Note: the character {char} makes these texts UCS-2 (Chinese-capable), which fits fewer "
                 "characters per SMS; it costs {credits}: replace it to save them.",
                 char=repr(preview.forced_ucs2_by), credits=say("{n} extra credit", n=extra) if extra == 1 else
                 say("{n} extra credits", n=extra)) if extra else
             say("Note: the character {char} makes these texts UCS-2 (Chinese-capable), which fits fewer "
                 "characters per SMS; here it costs nothing extra, but a longer text would pay for it.",
                 char=repr(preview.forced_ucs2_by)))
    if preview.identical_text_warning:
        echo(say("Warning: {warning}.", warning=preview.identical_text_warning))
    if preview.refused:
        _print_refused(preview)


def _print_refused(preview: Preview) -> None:
    reasons = ", ".join(f"{said(reason)} {count}" for reason, count in preview.refused_by_reason.most_common())
    echo(say("{rows} refused ({reasons}):", rows=counted(preview.refused, "row"), reasons=reasons))
    for r in preview.refused_rows[:50]:
        shown = mask_number(r.value) if r.reason in (DUPLICATE, OPTED_OUT) else r.value
        said_by_reason = r.value and r.reason in (INVALID, NOT_MOBILE, DUPLICATE)
        echo(say("  row {row}: {value}: {reason}", row=r.row, value=shown or said(say("(empty)")), reason=r.reason),
             f" - {said(r.detail)}" if r.detail and not said_by_reason else "")
    if preview.refused > 50:
        echo(say("  ... and {n} more (--json lists the first {kept})", n=preview.refused - 50, kept=REFUSED_KEPT))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_globals
@friendly_errors
def status(g: Globals, as_json: bool) -> None:
    """Show the queue (messages by state), the sending pace and the modems' state."""
    data = build_status(g.config, g.open_queue())
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    q = data["queue"]
    echo(say("Queue:  "), "  ".join(f"{said(state_words(s))} {q[s]}" for s in STATES))
    _print_progress(data["progress"])
    echo(say("Credit: {balance}", balance=data["balance"]),
         say(" - sending paused, {why}", why=data["paused"]) if data["paused"] else "")
    if data["sending_paused"]:
        held = data["sending_paused"]
        echo(say("Sending is paused for the whole box by {by} since {at}: 'smsgenie resume' sends again.",
                 by=paused_by_words(held["by"]), at=f"{datetime.fromtimestamp(held['at']):%Y-%m-%d %H:%M}"))
    for m in data["modems"]:
        _print_modem(m)
    gpio = data["daemon"]["gpio"] or said(say("no pins in use"))
    echo(say("GPIO:   {library} (the buttons' and the modem power pin's library; [panel] pin_factory)",
             library=gpio) if data["daemon"]["running"] else
         say("GPIO:   {library} when the daemon last ran (the buttons' and the modem power pin's library; "
             "[panel] pin_factory)", library=gpio))
    if q["uncertain"]:
        echo(say("{n} message(s) are uncertain (the box stopped mid-send); check them, "
                 "then 'smsgenie requeue --uncertain'.", n=q["uncertain"]))


def _print_progress(p: dict) -> None:
    left = said(say(", about {n} min left", n=f"{p['minutes_left']:.0f}")) if p["minutes_left"] else ""
    echo(say("Pace:   {messages} messages ({parts} SMS parts) a minute; {waiting} waiting ({waiting_parts} parts)"
             "{left}", messages=p["messages_per_minute"], parts=p["parts_per_minute"],
             waiting=counted(p["waiting_messages"], "message"), waiting_parts=p["waiting_parts"], left=left))
    echo(say("Today:  {messages} sent ({parts} SMS parts), {failed} failed",
             messages=counted(p["sent_today_messages"], "message"), parts=p["sent_today_parts"],
             failed=p["failed_today"]))
    lst = p["active_list"]
    if lst:
        eta = said(say(", about {n} min left", n=f"{lst['minutes_left']:.0f}")) if lst["minutes_left"] else ""
        echo(say("List:   {name}: {done} of {total} done{left}", name=lst["name"], done=lst["done"],
                 total=lst["total"], left=eta))


def _print_modem(m: dict) -> None:
    signal = said(say("unknown")) if m["signal"] == 99 else f"{m['signal']}/31 ({m['signal_dbm']} dBm)"
    echo(m["label"] or said(say("Modem")), ":  ", state_words(m["state"]), " - ", m["detail"])
    echo(say("        operator {operator}, signal {signal}, {access}, port {port}", operator=m["operator"] or "-",
             signal=signal, access=m["access"] or "-", port=m["port"]))
    if m["sent"]:
        s = m["sent"]
        echo(say("        SMS parts sent: {minute} last minute, {hour} last hour, {day} today ({people} people)",
                 minute=s["minute"], hour=s["hour"], day=s["day"], people=s["distinct_recipients_day"]))
    if m["paused"]:
        when = datetime.fromtimestamp(m["resumes_at"]).strftime("%H:%M") if m["resumes_at"] else said(say("later"))
        echo(say("        waiting: {why}, until {when}", why=m["paused"], when=when))


@click.command()
@pass_globals
@friendly_errors
def pause(g: Globals) -> None:
    """Stop sending for the whole box (the message in hand finishes); it stays paused across restarts."""
    q = g.open_queue()
    SendingPause(q.db, q.clock).pause("the command line")
    echo(say("Sending paused. 'smsgenie resume' sends again."))


@click.command()
@pass_globals
@friendly_errors
def resume(g: Globals) -> None:
    """Send again after 'smsgenie pause' (or a pause from the counter panel or the web page)."""
    q = g.open_queue()
    echo(say("Sending resumed.") if SendingPause(q.db, q.clock).resume() else say("Sending was not paused."))


@click.command()
@click.option("--uncertain", is_flag=True, help="Requeue messages left uncertain by a crash or a silent modem.")
@click.option("--id", "ids", type=int, multiple=True, help="Only this message id (repeatable).")
@pass_globals
@friendly_errors
def requeue(g: Globals, uncertain: bool, ids: tuple[int, ...]) -> None:
    """Send uncertain messages again (only the parts not confirmed by the network)."""
    if not uncertain:
        raise usage(say("say what to requeue: --uncertain"))
    n = g.open_queue().requeue_uncertain(ids or None)
    echo(say("Requeued {n} uncertain message.", n=n) if n == 1 else say("Requeued {n} uncertain messages.", n=n))


@click.group()
def sim() -> None:
    """SIMs the box held because their carrier seems to have barred them (see docs/sending-policy.md)."""


@sim.command("list")
@pass_globals
@friendly_errors
def sim_list(g: Globals) -> None:
    """Each modem's SIM, and why it is held if it is."""
    q = g.open_queue()
    holds = SimHolds(q.db, q.clock)
    for m in g.config.modems:
        held = holds.current(m.label)
        echo(f"{m.label}: ", say("held since {at}: {why}", at=f"{datetime.fromtimestamp(held['at']):%Y-%m-%d %H:%M}",
                                  why=held["why"]) if held else state_words("sending"))


@sim.command("resume")
@click.argument("label")
@pass_globals
@friendly_errors
def sim_resume(g: Globals, label: str) -> None:
    """Let the held SIM of modem LABEL send again (once the carrier says it is fine)."""
    q = g.open_queue()
    if not SimHolds(q.db, q.clock).release(label):
        raise refusal(say("the SIM of {label} is not held (smsgenie sim list)", label=label))
    echo(say("The SIM of {label} sends again (the daemon takes it up within seconds).", label=label))


@click.group()
def carrier() -> None:
    """Numbers whose carrier is not the one their prefix names (携号转网): set by the shop, or learned."""


@carrier.command("set")
@click.argument("number")
@click.argument("name", metavar="CARRIER")
@click.option("--note", default="", help="How the shop knows, e.g. 'the customer said so'.")
@pass_globals
@friendly_errors
def carrier_set(g: Globals, number: str, name: str, note: str) -> None:
    """Route NUMBER as a CARRIER number (China Mobile, China Unicom, China Telecom, China Broadnet; 移动...)."""
    q = g.open_queue()
    e164 = g.e164(number)
    carrier = NumberCarriers(q.db, q.clock).set(e164, name, note)
    echo(say("{number} is a {carrier} number now.", number=mask_number(e164), carrier=carrier_words(carrier)))


@carrier.command("clear")
@click.argument("number")
@pass_globals
@friendly_errors
def carrier_clear(g: Globals, number: str) -> None:
    """Route NUMBER by its prefix again."""
    q = g.open_queue()
    e164 = g.e164(number)
    if not NumberCarriers(q.db, q.clock).clear(e164):
        raise refusal(say("{number} has no carrier of its own (its prefix decides)", number=mask_number(e164)))
    echo(say("{number} is routed by its prefix again.", number=mask_number(e164)))


@carrier.command("list")
@click.option("--full", is_flag=True, help="Show whole numbers (masked by default).")
@pass_globals
@friendly_errors
def carrier_list(g: Globals, full: bool) -> None:
    """Every number whose carrier is not its prefix's, and who said so."""
    q = g.open_queue()
    rows = NumberCarriers(q.db, q.clock).rows()
    if not rows:
        echo(say("No number has a carrier of its own: every one goes by its prefix."))
    for r in rows:
        source = said(say("set by the shop") if r["source"] == "manual" else say("learned"))
        echo(f"{r['number'] if full else mask_number(r['number'])}  {said(carrier_words(r['carrier'])):<15} "
             f"{source:<8} {datetime.fromtimestamp(r['at']):%Y-%m-%d}  {r['note'] or ''}")



COMMANDS = (send, status, pause, resume, requeue, sim, carrier)
