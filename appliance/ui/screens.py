"""What each panel screen says, from a :class:`Snapshot` of the box. Pure: no I/O, no drawing.

A :class:`Screen` is a title row (with signal bars and the network type)
and a few body lines, optionally a progress bar or a highlighted line.
:func:`alerts` decides which problems take the screen over; the panel
keeps them up until someone presses OK.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from appliance.privacy import mask_number
from appliance.status import signal_bars
from appliance.ui.text import tr

#: Modem states (appliance.status / hw.modem.driver) as the panel says them.
MODEM_WORDS = {
    "registered": "online", "roaming": "roaming", "searching": "searching", "denied": "refused",
    "starting": "starting", "disconnected": "not connected", "error": "no answer", "dead": "broken",
    "stopped": "stopped", "no-sim": "no SIM", "sim-locked": "SIM locked", "sim-error": "SIM error",
}
#: Free disk below which the panel warns (the queue and the message record live there).
DISK_LOW_FRACTION = 0.05
DISK_LOW_MB = 200


@dataclass(frozen=True)
class ModemLine:
    """One modem as the panel shows it (from appliance.status's view of it)."""

    label: str = ""
    state: str = "unknown"
    operator: str = ""
    access: str = ""
    signal: int = 99
    iccid: str = ""
    """Masked already."""
    held: bool = False
    """Its SIM is held: its carrier seems to have barred it (appliance/simhealth.py)."""


@dataclass(frozen=True)
class Snapshot:
    """Everything the screens need, read at one moment."""

    balance: int = 0
    waiting: int = 0
    sending: int = 0
    sent_today: int = 0
    failed_today: int = 0
    modems: tuple = ()
    """Every modem of the box (:class:`ModemLine`), in the config's order; the first one's network is on the
    title row."""
    paused_by: str | None = None
    """Who paused sending for the whole box, or None."""
    shortfall: str | None = None
    """Why sending waits for credit, or None."""
    active_list: dict | None = None
    """{"name", "done", "total", "eta_minutes"} of the list being sent, or None."""
    address: str | None = None
    """The page's address on the LAN without the scheme ("192.168.1.23:8080"), or None when offline."""
    device_id: str = ""
    certificate: str = ""
    """The SHA-256 fingerprint of the box's CA (upper-case hex), or "" when the page is not HTTPS."""
    setup_pin: str | None = None
    awaiting: tuple = ()
    """Lists awaiting approval (appliance/approval.py Waiting), oldest first."""
    box_key: str = ""
    """The box's public signing key, "ed25519:<base64>" (appliance/boxkey.py)."""
    box_key_id: str = ""
    disk_free_mb: float = 1e9
    disk_free_fraction: float = 1.0
    low_credit_alert: int = 0
    test_number: str = ""
    skipped_runs: tuple = ()
    """Recurring sends skipped in the last day (appliance/recurring.py): (run id, name) each."""
    gpio: str = ""
    """The GPIO library the buttons and power pin use (hw/pins.py), "" when none is in use."""
    version: str = ""

    @property
    def modem(self) -> ModemLine:
        """The first modem (a blank one when there is none)."""
        return self.modems[0] if self.modems else ModemLine()


@dataclass(frozen=True)
class Screen:
    title: str
    lines: tuple[str, ...] = ()
    bars: int | None = None
    """Signal bars 0-4 in the title row, or None for none."""
    badge: str = ""
    """Short text left of the bars (the network type, "4G")."""
    progress: float | None = None
    """0.0-1.0: a progress bar on the last row."""
    selected: int | None = None
    """The highlighted body line (menus)."""
    framed: bool = False
    """An alert: drawn with a frame and the title inverted."""


@dataclass(frozen=True)
class Alert:
    key: str
    title: str
    lines: tuple[str, ...] = field(default=())


def _title(s: Snapshot, lang: str, title: str, modem: ModemLine | None = None) -> dict:
    modem = modem or s.modem
    return {"title": title, "bars": signal_bars(modem.signal), "badge": modem.access}


def operator_name(operator: str, lang: str) -> str:
    """'CHINA MOBILE' as a Chinese clerk says it (中国移动); other names as the network sends them."""
    return tr(lang, operator.strip().upper()) if lang == "zh_CN" and operator.strip() else operator.strip()


def home(s: Snapshot, lang: str) -> Screen:
    """The box at a glance, like a phone's status bar: the operator, network type and bars on top."""
    second = tr(lang, "Sending paused") if s.paused_by else (
        f"{tr(lang, 'Waiting now {n}', n=f'{s.waiting:,}')} {tr(lang, 'Sending {n}', n=s.sending)}")
    third = f"{tr(lang, 'Today {n}', n=f'{s.sent_today:,}')} {tr(lang, 'Failed today {n}', n=f'{s.failed_today:,}')}"
    m = s.modem
    title = operator_name(m.operator, lang) if m.state in ("registered", "roaming") and m.operator else (
        tr(lang, "SMS Genie"))
    return Screen(lines=(tr(lang, "Balance {n}", n=f"{s.balance:,}"), second, third), **_title(s, lang, title))


def current_list(s: Snapshot, lang: str) -> Screen:
    lst = s.active_list
    if lst is None:
        return Screen(lines=(tr(lang, "No list sending"), tr(lang, "Menu: OK")),
                      **_title(s, lang, tr(lang, "SMS Genie")))
    done, total = lst["done"], max(lst["total"], 1)
    eta = lst.get("eta_minutes")
    lines = (tr(lang, "{done}/{total} sent", done=f"{done:,}", total=f"{lst['total']:,}"),
             tr(lang, "Sending paused") if s.paused_by else
             (tr(lang, "About {n} min left", n=max(1, round(eta))) if eta else ""),
             "")
    return Screen(lines=lines, progress=min(1.0, done / total), **_title(s, lang, lst["name"]))


def address(s: Snapshot, lang: str) -> Screen:
    if s.setup_pin:
        return Screen(lines=(tr(lang, "Open in a browser"), s.address or tr(lang, "No network address"),
                             tr(lang, "then enter PIN {pin}", pin=s.setup_pin)),
                      **_title(s, lang, tr(lang, "First-time set-up")))
    if not s.address:
        return Screen(lines=(tr(lang, "No network address"), tr(lang, "Check the LAN cable")),
                      **_title(s, lang, tr(lang, "Web address")))
    return Screen(lines=(tr(lang, "Open in a browser"), s.address), **_title(s, lang, tr(lang, "Web address")))


def device(s: Snapshot, lang: str) -> Screen:
    return Screen(lines=(s.device_id, tr(lang, "Vendor needs this"), tr(lang, "Key {id}", id=s.box_key_id)),
                  **_title(s, lang, tr(lang, "Device ID")))


def about(s: Snapshot, lang: str) -> Screen:
    """The program's version and the GPIO library in use: what the vendor's technician asks first."""
    return Screen(lines=(f"SMS Genie {s.version}", tr(lang, "GPIO: {name}", name=s.gpio or tr(lang, "none"))),
                  **_title(s, lang, tr(lang, "About")))


def approval(s: Snapshot, lang: str, index: int) -> Screen:
    """One list awaiting approval: its name, size and cost, its first message; OK sends, Back declines."""
    w = s.awaiting[index]
    return Screen(lines=(f"{index + 1}/{len(s.awaiting)} {w.name}",
                         tr(lang, "{n} msgs {parts} cr", n=w.messages, parts=w.parts),
                         " ".join(w.first_text.split())),
                  **_title(s, lang, tr(lang, "OK: send Back: no")))


def box_key(s: Snapshot, lang: str) -> Screen:
    """The whole public key (44 characters after "ed25519:") in three rows, to copy for the vendor."""
    key = s.box_key.removeprefix("ed25519:")
    return Screen(lines=tuple(key[i:i + 15] for i in range(0, 45, 15)), **_title(s, lang, tr(lang, "Box key")))


def certificate(s: Snapshot, lang: str) -> Screen:
    """The first 48 hex digits of the CA's fingerprint, in fours: what a shop compares before trusting it."""
    if not s.certificate:
        return Screen(lines=(tr(lang, "HTTPS is off"),), **_title(s, lang, tr(lang, "Certificate")))
    rows = [" ".join(s.certificate[i + j:i + j + 4] for j in range(0, 16, 4)) for i in range(0, 48, 16)]
    return Screen(lines=tuple(rows), **_title(s, lang, tr(lang, "Certificate")))


def setup_pin(s: Snapshot, lang: str) -> Screen:
    if not s.setup_pin:
        return Screen(lines=(tr(lang, "Already set up"),), **_title(s, lang, tr(lang, "Set-up PIN")))
    return Screen(lines=(s.setup_pin, tr(lang, "Only for first set-up"), s.address or ""),
                  **_title(s, lang, tr(lang, "Set-up PIN")))


def modem_info(s: Snapshot, lang: str, index: int = 0) -> Screen:
    """One modem's state, network and SIM; on a box with several, Up and Down leaf through them and the
    title names the one shown ("modem2 2/3")."""
    index = min(max(index, 0), max(len(s.modems) - 1, 0))
    m = s.modems[index] if s.modems else ModemLine()
    signal = tr(lang, "Signal {n}/31", n=m.signal) if m.signal != 99 else tr(lang, "No signal")
    title = tr(lang, "Modem info") if len(s.modems) < 2 else f"{m.label or index + 1} {index + 1}/{len(s.modems)}"
    return Screen(lines=(f"{tr(lang, MODEM_WORDS.get(m.state, 'unknown'))} {operator_name(m.operator, lang)}"
                         .strip(),
                         f"{signal} {m.access}".strip(),
                         tr(lang, "SIM {iccid}", iccid=f"{m.iccid[:4]}…{m.iccid[-4:]}") if m.iccid
                         else tr(lang, "No SIM data")),
                  **_title(s, lang, title, m))


def test_sms_confirm(s: Snapshot, lang: str) -> Screen:
    if not s.test_number:
        return Screen(lines=(tr(lang, "No test number"), tr(lang, "Set it on the web page")),
                      **_title(s, lang, tr(lang, "Send a test SMS")))
    return Screen(lines=(tr(lang, "to {number}", number=mask_number(s.test_number)), tr(lang, "Costs 1 credit"),
                         tr(lang, "OK: send  Back: no")),
                  **_title(s, lang, tr(lang, "Send a test SMS")))


def confirm(s: Snapshot, lang: str, what: str) -> Screen:
    return Screen(lines=(tr(lang, "Sure? OK: yes"), tr(lang, "Back: no")), **_title(s, lang, tr(lang, what)))


def message(s: Snapshot, lang: str, title: str, *lines: str) -> Screen:
    return Screen(lines=tuple(tr(lang, line) for line in lines), **_title(s, lang, tr(lang, title)))


def menu(s: Snapshot, lang: str, items: list[str], selected: int, rows: int) -> Screen:
    """The menu, scrolled so the selected item is on screen (``rows`` body rows fit)."""
    top = min(max(0, selected - rows + 1), max(0, len(items) - rows))
    shown = tuple(tr(lang, item, n=len(s.awaiting)) for item in items[top:top + rows])
    return Screen(lines=shown, selected=selected - top, **_title(s, lang, tr(lang, "Menu")))


def alert_screen(alert: Alert, lang: str) -> Screen:
    return Screen(title=alert.title, lines=(*alert.lines, tr(lang, "OK: got it")), framed=True)


def alerts(s: Snapshot, lang: str) -> list[Alert]:
    """The problems a clerk must see now, most urgent first; ``key`` says which (for acknowledging)."""
    out = []

    def add(key: str, title: str, *lines: str) -> None:
        out.append(Alert(key, tr(lang, title), lines))

    if s.shortfall and (s.waiting or s.sending):
        add("credit-out", "Out of credit", tr(lang, "Sending has stopped"), tr(lang, "Top up on the page"))
    elif s.low_credit_alert and s.balance <= s.low_credit_alert:
        add("credit-low", "Credit low", tr(lang, "{n} credits left", n=s.balance), tr(lang, "Top up on the page"))
    for m in s.modems:
        # one modem: as ever; several: each alert names its modem, and is acknowledged on its own
        which = (f":{m.label}", (m.label,)) if len(s.modems) > 1 else ("", ())
        if m.state == "no-sim":
            add("no-sim" + which[0], "No SIM card", *which[1], tr(lang, "Insert the SIM, restart"))
        elif m.state in ("sim-locked", "sim-error"):
            add("sim" + which[0], "SIM problem", *which[1], tr(lang, "Check the SIM and PIN"))
        elif m.state in ("searching", "denied"):
            add("network" + which[0], "No network", *which[1], tr(lang, "Check antenna and SIM"))
        elif m.state in ("error", "dead"):
            add("modem" + which[0], "Modem not answering", *which[1],
                tr(lang, "The box keeps trying" if m.state == "error" else "Call the technician"))
        if m.held:  # three rows at most: the modem's name takes "sending stopped"'s place
            add("sim-held" + which[0], "SIM barred?", *(which[1] or (tr(lang, "Sending stopped"),)),
                tr(lang, "Check with the carrier"))
    if s.skipped_runs:
        run_id, name = s.skipped_runs[0]
        add(f"run-skipped:{run_id}", "Send skipped", name[:16], tr(lang, "See why on the page"))
    if s.disk_free_fraction < DISK_LOW_FRACTION or s.disk_free_mb < DISK_LOW_MB:
        add("disk", "Disk nearly full", tr(lang, "{mb} MB free", mb=int(s.disk_free_mb)),
            tr(lang, "Call the technician"))
    return out
