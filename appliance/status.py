"""``smsgenie status``: the queue and the modem, read from the database alone.

``queue`` counts messages by their current state; ``sent_total`` counts every
message the network accepted whole, whatever became of it after (sent,
delivered, expired, or failed by its delivery report). ``balance`` is the
credit left; ``paused`` says why sending waits (out of credit), or is null.

The daemon publishes the modem's state as it changes; whether the daemon is
running at all comes from its lock, so a crashed daemon never shows a stale
"registered".
"""

from __future__ import annotations

from appliance.config import Config
from appliance.lock import DataDirLock
from appliance.sendqueue import SendQueue


def status(config: Config, queue: SendQueue) -> dict:
    running = DataDirLock.held(config.data_dir)
    modems = queue.modem_statuses()
    port = config.modem.port if config.modem.port in modems else next(iter(modems), config.modem.port)
    modem = modems.get(port, {})
    state = modem.get("state", "unknown")
    detail = modem.get("detail", "")
    if not running:
        state, detail = "stopped", "the smsgenie daemon is not running"
    shortfall = queue.waiting_for_credit()
    return {
        "queue": queue.counts(),
        "sent_total": queue.sent_total(),
        "balance": queue.ledger.balance(),
        "paused": str(shortfall) if shortfall else None,
        "modem": {
            "state": state,
            "detail": detail,
            "operator": modem.get("operator", ""),
            "signal": modem.get("signal", 99),
            "signal_dbm": modem.get("signal_dbm"),
            "access": modem.get("access", ""),
            "port": port,
            "updated_at": modem.get("updated_at"),
        },
        "daemon": {"running": running, "pid": modem.get("pid") if running else None},
        "data_dir": config.data_dir,
    }
