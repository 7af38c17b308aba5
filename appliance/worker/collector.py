"""What the modem received: delivery reports and customers' texts, kept before the modem forgets them.

The modem stores both in its memory (AT+CNMI=2,1,0,2,0) and says so with
an indication (+CDSI, +CMTI), so nothing is lost while the daemon is down.
They are collected in batches - one AT+CMGL and one commit for many,
instead of two AT round trips each - and a customer's text at once, so an
opt-out (TD/退订) counts before the next message goes. A text that replies
TD puts its sender on the opt-out list; a yes answers the consent question
sent to its number; the sign-up word makes one (appliance/asking.py).
"""

from __future__ import annotations

import functools
import logging
import queue as stdqueue

from appliance import carriers, phones
from appliance.asking import Asking
from appliance.clock import Clock
from appliance.db import Database
from appliance.inbox import Inbox
from appliance.privacy import mask_number
from appliance.replies import Replies
from appliance.reports import DeliveryReports
from appliance.settings import read_settings
from appliance.worker.bookkeeping import Bookkeeping
from hw.errors import CommandFailed, PduError
from hw.modem import pdu as pducodec
from hw.modem.at import Urc
from hw.modem.driver import Modem

log = logging.getLogger(__name__)

#: Delivery reports wait in the modem's memory and are collected in batches.
REPORT_BATCH = 20
REPORT_MAX_DELAY = 3.0


class Collector:
    """Collects one modem's stored texts and reports; :meth:`on_urc` is called from the AT reader thread."""

    def __init__(self, modem: Modem, db: Database, *, clock: Clock, bookkeeping: Bookkeeping, data_dir: str,
                 wake=lambda: None, carrier: str = ""):
        self.modem = modem
        self.carrier = carrier
        """This modem's SIM's carrier: a report it collects was for a message it sent (appliance/carriers.py)."""
        self.db = db
        self.clock = clock
        self.data_dir = data_dir
        self.bookkeeping = bookkeeping
        self.inbox = Inbox(db, clock)
        self.reports = DeliveryReports(db, clock)
        self.asking = Asking(db, clock)
        self.replies = Replies(db, clock)
        self._wake = wake
        self._urcs: stdqueue.Queue[Urc] = stdqueue.Queue()
        self._memories: list[str] = []  # message memories the modem has indicated (SM, ME, SR)
        self.waiting = 0                # indications (+CDSI/+CMTI) not yet collected
        self._waiting_since = 0.0
        self._now = False               # a customer wrote: collect at once
        self.collecting = False         # a listing not yet stored and deleted
        self._to_delete: list = []      # listed and stored: delete from the modem at the next step

    # --- indications ------------------------------------------------------------------------

    def on_urc(self, urc: Urc) -> None:  # the AT reader thread
        self._urcs.put(urc)
        self._wake()

    def handle_urcs(self) -> None:
        """Act on the indications the reader thread queued (in the worker's thread)."""
        while True:
            try:
                urc = self._urcs.get_nowait()
            except stdqueue.Empty:
                return
            if urc.name in ("+CDS", "+CMT") and urc.pdu:
                fields = urc.args.split(",")
                length = int(fields[-1]) if fields[-1].strip().isdigit() else None
                self.incoming(urc.pdu, length)
            elif urc.name in ("+CMTI", "+CDSI"):
                memory = urc.args.partition(",")[0].strip().strip('"')
                if memory and memory not in self._memories:
                    self._memories.append(memory)
                if not self.waiting:
                    self._waiting_since = self.clock.monotonic()
                self.waiting += 1
                if urc.name == "+CMTI":
                    self._now = True  # a customer wrote: an opt-out must count at once

    def due(self, now: float) -> bool:
        """Time to collect: a customer wrote, a batch is full, or the oldest report waited long enough."""
        if self.collecting:
            return False
        return self._now or self.waiting >= self._batch() or bool(
            self.waiting and now - self._waiting_since >= REPORT_MAX_DELAY)

    def _batch(self) -> int:
        """Collect before the modem's memory is half full: a full one refuses new texts."""
        total = self.modem.storage[1] if self.modem.storage else 0
        return max(1, min(REPORT_BATCH, total // 2)) if total else REPORT_BATCH

    # --- collecting ---------------------------------------------------------------------------

    def restart(self) -> None:
        """After a bring-up a fresh listing covers whatever was pending."""
        self._to_delete, self.collecting = [], False

    def collect(self) -> None:
        """Keep every text and delivery report waiting in the modem, then let the modem forget them.

        Three steps, so the modem never waits for the database: list the
        modem's memories now (AT+CMGL, which marks them read); store what was
        found in one durable commit while the modem works on the next send;
        then delete the read messages (AT+CMGD=0,1) at the next step. A crash
        or power cut in between means reading the same PDUs again (stored
        once), never losing one. No new listing starts until the last one is
        deleted, so nothing is listed twice.
        """
        self.waiting = 0
        self._now = False
        memories = list(dict.fromkeys(m for m in [self.modem.read_memory, *self._memories] if m)) or [None]
        batch = []
        for memory in memories:
            try:
                stored = self.modem.list_stored(memory)
            except CommandFailed as exc:
                log.warning("could not list the modem's stored messages%s: %s",
                            f" in {memory}" if memory else "", exc)
                continue
            items = [i for i in stored if i.status not in (2, 3)]  # 2, 3: outgoing drafts, not ours
            if items:
                batch.append((memory, items))
        if batch:
            self.collecting = True
            self.bookkeeping.later(functools.partial(self._store, batch))

    def _store(self, batch: list) -> None:
        with self.db.atomic():
            for _memory, items in batch:
                for item in items:
                    self.incoming(item.pdu, item.length)
        # the modem may forget them only once they are stored for good: not if this write is rolled back
        # with others it was done together with (a full disk), when it stays pending and is done again
        self.bookkeeping.after_commit(lambda: self._to_delete.extend(batch))

    @property
    def delete_pending(self) -> bool:
        return bool(self._to_delete)

    def delete_collected(self) -> None:
        """Let the modem forget what was stored (if this fails, the next listing reads it again)."""
        batch, self._to_delete = self._to_delete, []
        try:
            for memory, items in batch:
                if memory:
                    self.modem.select_memory(memory)
                try:
                    self.modem.delete_read()
                except CommandFailed:
                    for item in items:
                        self.modem.delete_stored(item.index)
        finally:
            self.collecting = False

    # --- what a PDU is ---------------------------------------------------------------------------

    def incoming(self, pdu_hex: str, length: int | None) -> None:
        """One PDU from the modem: a delivery report settles its message; a text goes to the inbox."""
        try:
            decoded = pducodec.decode_incoming(pdu_hex, length)
        except PduError as exc:
            # Never drop what we cannot read: keep it, marked, for a person to look at.
            self.inbox.store("?", None, None, pdu_hex, problem=f"unreadable PDU: {exc}")
            log.warning("stored an unreadable PDU from the modem: %s", exc)
            return
        if isinstance(decoded, pducodec.StatusReport):
            msg = self.reports.apply(decoded.reference, decoded.recipient, decoded.outcome, decoded.status,
                                     decoded.reason,
                                     submitted_at=decoded.submitted.timestamp() if decoded.submitted else None)
            if msg is None:
                log.info("delivery report for %s (ref %d) matches no message", mask_number(decoded.recipient),
                         decoded.reference)
            elif msg.state == "delivered" and self.carrier:
                with self.db.atomic() as conn:
                    if carriers.delivered(conn, msg.recipient, self.carrier, self.clock.time()):
                        log.info("%s is on %s now (learned)", mask_number(msg.recipient), self.carrier)
            return
        concat = decoded.concat
        stored = self.inbox.store(
            decoded.sender, decoded.timestamp.isoformat() if decoded.timestamp else None, decoded.text, pdu_hex,
            concat=(concat.reference, concat.sequence, concat.total) if concat else None,
            problem=decoded.user_data.problem)
        if not stored:
            return
        log.info("inbound SMS from %s", mask_number(decoded.sender))
        whole = decoded.text if concat is None else self.inbox.complete_text(decoded.sender, concat.reference,
                                                                             concat.total)
        if whole is None:
            return
        settings = read_settings(self.data_dir)
        number = self._e164(decoded.sender, settings["default_region"])
        said = self.asking.reply(number, whole, stored, settings)
        if said == "no":
            log.info("%s opted out (replied %r)", mask_number(number), whole.strip())
        elif said == "signup":
            log.info("%s texted the sign-up word: a question waits to be sent", mask_number(number))
        elif said is None and self.replies.owe(number, whole, stored, settings["auto_replies"]):
            log.info("%s asked for an auto-reply", mask_number(number))

    @staticmethod
    def _e164(sender: str, region: str) -> str:
        """A sender as the customer book keeps numbers (E.164), or as it came if it is not one."""
        try:
            return phones.normalise(sender, region).e164
        except phones.NumberProblem:
            return sender
