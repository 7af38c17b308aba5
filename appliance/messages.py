"""What the queue holds: a message's states and kinds, a message as read, and the rules of a retry.

The life of a message and how it is kept are in appliance/sendqueue.py.
"""

from __future__ import annotations

from dataclasses import dataclass

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

    def __str__(self) -> str:
        return (f"out of credit: message {self.message_id} needs {self.needed} credit"
                f"{'s' if self.needed != 1 else ''}, the balance is {self.balance}. Top up to resume")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_seconds: float = 30.0
    cap_seconds: float = 1800.0

    def delay(self, attempts: int) -> float:
        return min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
