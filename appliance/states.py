"""The states of a message, a send list and a modem, as a person reads them.

The database, the API and the logs use the codes (``queued``, ``no-sim``); the page and the command line
show these words, each in the reader's language (appliance/text.py). One table, so the page and a
technician's terminal never call one state by two names.
"""

from __future__ import annotations

from appliance.text import Text, say

STATE_WORDS: dict[str, Text] = {
    # a message
    "queued": say("waiting"), "sending": say("sending"), "sent": say("sent"), "delivered": say("delivered"),
    "failed": say("failed"), "expired": say("expired"), "uncertain": say("uncertain"),
    # a send list
    "active": say("sending"), "paused": say("paused"), "cancelled": say("cancelled"), "done": say("done"),
    "loading": say("being queued"), "discarded": say("discarded (not queued)"),
    "awaiting": say("awaiting approval"), "declined": say("declined"),
    # a modem
    "registered": say("online"), "roaming": say("online (roaming)"), "searching": say("looking for the network"),
    "denied": say("refused by the network"), "starting": say("starting"), "disconnected": say("not connected"),
    "error": say("not answering"), "dead": say("needs a technician"), "stopped": say("stopped"),
    "no-sim": say("no SIM card"), "sim-locked": say("SIM locked"), "sim-error": say("SIM problem"),
    "unknown": say("unknown"),
}


def state_words(code: str | None) -> Text | str:
    """The words for a state's code (the code itself when it has none)."""
    return STATE_WORDS.get(code or "", code or "")
