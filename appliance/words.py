"""The domain's fixed words a person reads: a consent's state, a recurring send's rhythm and a run's outcome,
a list's kind, a column's role, a user's role, an opt-out list's change.

The database and the API keep the codes (``given``, ``monthly``); the page (web/i18n.py ``word``) and the
command line show these words, each in the reader's language (appliance/text.py). One table for both.
Where a consent came from is appliance/consent.py ``SOURCES``; the states of a message, a list and a modem
are appliance/states.py.
"""

from __future__ import annotations

from appliance.text import Text, say

WORDS: dict[str, Text] = {
    # a customer's consent
    "given": say("agreed"), "unknown": say("not known"), "refused": say("refused"),
    # a recurring send, and what became of a run
    "birthday": say("every birthday"), "monthly": say("monthly"), "weekly": say("weekly"),
    "queued": say("queued"), "skipped": say("skipped"),
    # a list's kind
    "marketing": say("marketing"), "transactional": say("transactional"),
    # a column of a customer file
    "number": say("phone number"), "name": say("name"), "tags": say("tags"), "field": say("a field of the shop's own"),
    # a user's role; an opt-out list's change
    "admin": say("admin"), "staff": say("staff"), "add": say("added"), "remove": say("removed"),
}


def words(code: str | None):
    """The words for ``code`` (:data:`WORDS`; a consent's source; else the code as it is)."""
    from appliance.consent import SOURCES  # noqa: PLC0415 - consent imports much of the domain

    return WORDS.get(code or "") or SOURCES.get(code or "", code or "")
