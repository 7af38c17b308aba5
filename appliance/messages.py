"""What the queue holds: a message's states and kinds, a message as read, and the rules of a retry.

The life of a message and how it is kept are in appliance/sendqueue.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.text import Text, say

STATES = ("queued", "sending", "sent", "delivered", "failed", "expired", "uncertain")
MARKETING, TRANSACTIONAL = "marketing", "transactional"
KINDS = (MARKETING, TRANSACTIONAL)
FINISHED = ("delivered", "failed", "expired")


@dataclass(frozen=True)
class Message:
    id: int
    send_list_id: int | None
    recipient: str
    text: str
    encoding: str
    segments: int
    service_code: str
    state: str
    attempts: int
    next_attempt_at: float
    concat_ref: int
    error: str | None
    created_at: float
    sending_at: float | None
    sent_at: float | None
    finished_at: float | None
    claim_charge: int = 0
    carrier: str = ""
    kind: str = "marketing"
    held: int = 0
    modem: str | None = None
    """The label of the modem that took it, and its SIM's ICCID (None until one does)."""
    sim_iccid: str | None = None
    basis: str | None = None
    """Why it may go: "consent:<event id>", "paper" (the relaxed gate), or None (appliance/consent.py)."""
    accepted: frozenset[int] = frozenset()
    """Parts (1-based) the network already accepted: never hand these over again."""


@dataclass(frozen=True)
class Shortfall:
    """The next message needs more credits than the balance holds."""

    message_id: int
    needed: int
    balance: int

    @property
    def text(self) -> Text:
        """Why sending waits, for a person (the page, the panel, the command line translate it)."""
        if self.needed == 1:
            return say("out of credit: message {id} needs 1 credit, the balance is {balance}. Top up to resume",
                       id=self.message_id, balance=self.balance)
        return say("out of credit: message {id} needs {n} credits, the balance is {balance}. Top up to resume",
                   id=self.message_id, n=self.needed, balance=self.balance)

    def __str__(self) -> str:
        return str(self.text)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_seconds: float = 30.0
    cap_seconds: float = 1800.0

    def delay(self, attempts: int) -> float:
        return min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
