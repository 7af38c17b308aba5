"""Forgetting a customer, and forgetting old messages: erasure and retention.

Erasing a customer (``smsgenie customers erase NUMBER``, the page) removes
them from the book and masks their number (138****8000) and their name
wherever the box kept them for its own work: the messages sent to them,
their texts in the inbox (with the raw PDU, which carries the number), the
send log, the questions asked. Messages still waiting for them are failed,
uncharged; one with the network already is settled by its delivery report,
matched on the masked number (appliance/reports.py). What the box must keep stays: the lawful message record
(appliance/audit.py) is a hash chain the seed requires for its retention,
so it is left whole - and verifiable - until the daily prune removes it.
A customer who had refused texts keeps the refusal, their number and
nothing else: forgetting it would text them again.

Retention: message bodies and inbound texts older than the record's
retention (setting ``audit_retention_days``) are pruned daily too, the
bodies blanked and the numbers masked, so the box does not keep
customers' words for longer than the record does - but for a reply that
is the evidence of a customer's consent now, kept while the consent is.
"""

from __future__ import annotations

import logging

from appliance.clock import Clock
from appliance.consent import REFUSED
from appliance.db import Database
from appliance.errors import CustomerNotFound
from appliance.messages import FINISHED
from appliance.privacy import mask_number
from appliance.text import say, stored

log = logging.getLogger(__name__)

#: What an erased name becomes in a text, so the sentence still reads.
NAME_MASK = "**"
_WAITING = ("queued",)


class Erasure:
    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock

    def erase(self, number: str, *, by: str) -> dict:
        """Forget one customer (see the module's docstring); what was masked, counted."""
        masked = mask_number(number)
        now = self.clock.time()
        with self.db.atomic() as conn:
            row = conn.execute("SELECT name, consent FROM customer WHERE number = ?", (number,)).fetchone()
            known = conn.execute("SELECT 1 FROM message WHERE recipient = ? UNION SELECT 1 FROM inbound"
                                 " WHERE sender = ? LIMIT 1", (number, number)).fetchone()
            if row is None and known is None:
                raise CustomerNotFound(say("the box has nothing about {number}: no customer, message or text",
                                           number=masked))
            name = row["name"] if row else ""
            refused = row is not None and row["consent"] == REFUSED
            done = {"messages_cancelled": conn.execute(
                "UPDATE message SET state = 'failed', finished_at = ?, error = ? WHERE recipient = ? AND state IN"
                f" ({','.join('?' * len(_WAITING))})", (now, "the customer was erased; not sent, not charged",
                                                      number, *_WAITING)).rowcount}
            # SQLite's replace() leaves a text as it is for an empty name (and NULL stays NULL)
            done["messages"] = conn.execute("UPDATE message SET recipient = ?, text = replace(text, ?, ?)"
                                            " WHERE recipient = ?", (masked, name, NAME_MASK, number)).rowcount
            done["inbound"] = conn.execute("UPDATE inbound SET sender = ?, text = replace(text, ?, ?),"
                                           " pdu = 'erased:' || id WHERE sender = ?",
                                           (masked, name, NAME_MASK, number)).rowcount
            conn.execute("UPDATE send_log SET recipient = ? WHERE recipient = ?", (masked, number))
            conn.execute("DELETE FROM consent_ask WHERE number = ?", (number,))
            conn.execute("DELETE FROM number_carrier WHERE number = ?", (number,))
            conn.execute("DELETE FROM carrier_doubt WHERE number = ?", (number,))
            conn.execute("DELETE FROM customer_tag WHERE number = ?", (number,))
            if refused:  # the refusal stays, with nothing but the number
                conn.execute("UPDATE customer SET name = '', birthday = '', fields = '{}', updated_at = ?,"
                             " updated_by = ? WHERE number = ?", (now, by, number))
            else:
                conn.execute("DELETE FROM customer WHERE number = ?", (number,))
                conn.execute("UPDATE consent_event SET number = ?, reference = '', note = '' WHERE number = ?",
                             (masked, number))
            conn.execute("INSERT INTO consent_event (number, at, state, source, recorded_by, note)"
                         " VALUES (?, ?, ?, 'erased', ?, ?)", (masked if not refused else number, now,
                                                              REFUSED if refused else "unknown", by,
                                                              stored(say("customer erased from the book"))))
        done["kept_refusal"] = refused
        log.info("customer %s erased by %s: %s", masked, by, done)
        return done

    def prune(self, retention_days: int) -> dict:
        """Blank message bodies and delete inbound texts older than ``retention_days`` (daily)."""
        cutoff = self.clock.time() - retention_days * 86400
        done = {}
        with self.db.atomic() as conn:
            rows = conn.execute(f"SELECT id, recipient FROM message WHERE text != '' AND state IN"
                                f" ({','.join('?' * len(FINISHED))}) AND COALESCE(finished_at, created_at) < ?",
                                (*FINISHED, cutoff)).fetchall()
            for r in rows:
                conn.execute("UPDATE message SET text = '', recipient = ? WHERE id = ?",
                             (mask_number(r["recipient"]), r["id"]))
            done["messages"] = len(rows)
            done["inbound"] = conn.execute(  # a reply that is a consent's evidence stays while the consent does
                "DELETE FROM inbound WHERE received_at < ? AND id NOT IN (SELECT e.inbound_id FROM customer c JOIN"
                " consent_event e ON e.id = c.consent_event WHERE e.inbound_id IS NOT NULL)", (cutoff,)).rowcount
            conn.execute("DELETE FROM consent_ask WHERE expires_at < ? AND answered_at IS NULL", (cutoff,))
        return done
