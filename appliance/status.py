"""``smsgenie status``: the queue and the modem, read from the database alone.

``queue`` counts messages by their current state; ``progress`` is the
sending pace, the time left and today's figures (appliance/progress.py, the
same numbers the page and the counter panel show); ``sent_total`` counts every
message the network accepted whole, whatever became of it after (sent,
delivered, expired, or failed by its delivery report). ``balance`` is the
credit left; ``paused`` says why sending waits (out of credit), or is null.
``modems`` lists every modem (``modem`` is the first): its state, its SIM's
carrier, why it waits if a cap or quiet hours hold it and when it resumes,
and what it sent in the last minute, hour and today.

The daemon publishes the modem's state as it changes; whether the daemon is
running at all comes from its lock, so a crashed daemon never shows a stale
"registered".
"""

from __future__ import annotations

import re

from appliance import kv, policy
from appliance.config import Config
from appliance.lock import DataDirLock
from appliance.modemstatus import ModemStatusBoard
from appliance.pause import SendingPause
from appliance.privacy import mask_iccid
from appliance.progress import progress
from appliance.sendqueue import SendQueue
from appliance.simhealth import SimHolds
from appliance.text import Text, from_json, say


def signal_bars(signal: int) -> int:
    """+CSQ 0-31 as 0-4 signal bars, for people (99: unknown, no bars)."""
    if signal == 99 or signal < 2:
        return 0
    return 1 if signal < 10 else 2 if signal < 15 else 3 if signal < 20 else 4


#: What the modem driver (hw/modem) says of itself, in fixed words, as a person reads it (the page and the
#: command line translate these; what the driver builds from the modem's own answer stays as it came).
MODEM_WORDS = {
    "not registered, not searching": say("not registered, not searching"),
    "registered, home network": say("registered, home network"),
    "searching for a network": say("searching for a network"),
    "registration denied": say("registration denied"),
    "registration state unknown": say("registration state unknown"),
    "registered, roaming": say("registered, roaming"),
    "registered for SMS only, home network": say("registered for SMS only, home network"),
    "registered for SMS only, roaming": say("registered for SMS only, roaming"),
    "emergency calls only": say("emergency calls only"),
    "registered (CSFB not preferred), home network": say("registered (CSFB not preferred), home network"),
    "registered (CSFB not preferred), roaming": say("registered (CSFB not preferred), roaming"),
    "talking to the modem": say("talking to the modem"),
    "modem port closed": say("modem port closed"),
    "the modem does not answer AT": say("the modem does not answer AT"),
    "setting up the modem": say("setting up the modem"),
    "no SIM card: insert the shop's SIM card (contacts down) and restart":
        say("no SIM card: insert the shop's SIM card (contacts down) and restart"),
    "the SIM is busy starting up": say("the SIM is busy starting up"),
    "the SIM needs a PIN: set sim_pin in the config, or remove the PIN":
        say("the SIM needs a PIN: set sim_pin in the config, or remove the PIN"),
    "the SIM is blocked (PUK needed): unblock it in a phone first":
        say("the SIM is blocked (PUK needed): unblock it in a phone first"),
    "the modem restarted": say("the modem restarted"),
    "no SIM card: insert the shop's SIM card": say("no SIM card: insert the shop's SIM card"),
    "the smsgenie daemon stopped": say("the smsgenie daemon stopped"),
    "restarting, as asked at the counter": say("restarting, as asked at the counter"),
}
NOT_RUNNING = say("the smsgenie daemon is not running")
#: What the driver says of a port it cannot open (hw/modem/port.py), the port's name (and pyserial's own
#: words) filled in.
PORT_WORDS = (
    say("modem port {port} does not exist: check the modem is plugged in and powered, "
        "and that the udev rule created the name"),
    say("not allowed to open modem port {port}: add the service user to the 'dialout' group"),
    say("modem port {port} is in use by another program (another smsgenie, or ModemManager: "
        "stop it or blacklist the modem)"),
    say("could not open modem port {port}: {exc}"),
)
_PORT_PATTERNS = tuple((re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>.+?)", re.escape(t.template))), t.template)
                       for t in PORT_WORDS)


def modem_words(detail) -> str:
    """A modem's detail as a Text where the words are known (see :data:`MODEM_WORDS` and :data:`PORT_WORDS`)."""
    detail = from_json(detail)
    if not isinstance(detail, str) or isinstance(detail, Text):
        return detail
    if detail in MODEM_WORDS:
        return MODEM_WORDS[detail]
    for pattern, template in _PORT_PATTERNS:
        if found := pattern.fullmatch(detail):
            return Text(template, **found.groupdict())
    return detail


def _modem_view(port: str, data: dict, running: bool, usage: dict | None, held: dict | None = None) -> dict:
    state, detail = data.get("state", "unknown"), modem_words(data.get("detail", ""))
    if not running:
        state, detail = "stopped", NOT_RUNNING
    return {
        "label": data.get("label", ""),
        "state": state,
        "detail": detail,
        "operator": data.get("operator", ""),
        "signal": data.get("signal", 99),
        "signal_dbm": data.get("signal_dbm"),
        "access": data.get("access", ""),
        "port": port,
        "sim_carrier": data.get("sim_carrier", ""),
        "iccid": mask_iccid(data.get("iccid", "")),
        "model": data.get("model", ""),
        "paused": from_json(data.get("paused")) if running else None,
        "resumes_at": data.get("resumes_at") if running else None,
        "sent": usage or {},
        "held": held,
        "updated_at": data.get("updated_at"),
    }


def status(config: Config, queue: SendQueue) -> dict:
    running = DataDirLock.held(config.data_dir)
    published = ModemStatusBoard(queue.db, queue.clock).all()
    now = queue.clock.time()
    ports = [m.port for m in config.modems if m.port in published] or list(published) or [config.modem.port]
    modems = []
    for port in ports:
        data = published.get(port, {})
        label = data.get("label") or next((m.label for m in config.modems if m.port == port), "")
        modems.append(_modem_view(port, data, running, policy.usage(queue.db.conn, label, now) if label else None,
                                  SimHolds(queue.db, queue.clock).current(label) if label else None))
    shortfall = queue.waiting_for_credit()
    first = published.get(ports[0], {})
    return {
        "queue": queue.counts(),
        "progress": progress(queue.db, now).as_dict(),
        "sent_total": queue.sent_total(),
        "balance": queue.ledger.balance(),
        "paused": shortfall.text if shortfall else None,  # a Text: English in JSON, translated on the page
        "sending_paused": SendingPause(queue.db, queue.clock).current(),
        "modem": modems[0],
        "modems": modems,
        "daemon": {"running": running, "pid": first.get("pid") if running else None,
                   "gpio": kv.get(queue.db.conn, "gpio") or ""},
        "data_dir": config.data_dir,
    }
