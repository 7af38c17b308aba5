"""Webhooks: the shop's own system told of each message's outcome and each text a customer sends.

Set ``webhook_url`` (and ``webhook_secret``, at least 16 characters) and the
daemon posts, in order, one JSON event per outcome in the message record
(``message.sent``, ``message.delivered``, ``message.failed``,
``message.expired``, ``message.uncertain``; ``list.screened`` for how a
list was screened: queued and refused by reason) and per text received
(``inbound``, a long text once all its parts are in). Each request is
signed: ``X-SMSGenie-Signature: sha256=<hex>``, the HMAC-SHA256 with the
secret of ``<X-SMSGenie-Timestamp>.<body>``; a receiver recomputes it and
refuses an old timestamp.

It never holds the sender up: it runs on a thread of its own, reads the
record and the inbox (never writes them), and remembers how far it got
(``kv``), so a restart goes on from there. An answer other than 2xx, or no
answer in :data:`TIMEOUT` seconds, is tried again after 10 s, 20 s, 40 s ...
up to an hour; after :data:`MAX_ATTEMPTS` the event is given up, logged,
and the next one goes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import urllib.error
import urllib.request
from typing import Callable

from appliance import kv
from appliance.clock import Clock
from appliance.db import Database
from appliance.inbox import Inbox
from appliance.settings import read_settings

log = logging.getLogger(__name__)

TIMEOUT = 5.0
MAX_ATTEMPTS = 12
FIRST_RETRY, LONGEST_RETRY = 10.0, 3600.0
IDLE = 2.0
#: How far the webhooks got: the last record row and inbound text told.
AUDIT_CURSOR, INBOUND_CURSOR = "webhook_audit_id", "webhook_inbound_id"

Post = Callable[[str, bytes, dict], int]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def http_post(url: str, body: bytes, headers: dict) -> int:
    """POST ``body``; the HTTP status (0: no answer)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - the admin's own URL
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError, ValueError):
        return 0


class Webhooks:
    def __init__(self, db: Database, clock: Clock, data_dir: str, *, post: Post = http_post):
        self.db = db
        self.clock = clock
        self.data_dir = data_dir
        self.post = post

    def next_event(self) -> tuple[str, int, dict] | None:
        """The oldest event not yet told: (cursor, id, payload); cursors start at the present the first time."""
        conn = self.db.conn
        for cursor, table in ((AUDIT_CURSOR, "audit"), (INBOUND_CURSOR, "inbound")):
            if kv.get(conn, cursor) is None:
                with self.db.atomic() as c:
                    kv.put(c, cursor, str(c.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0]))
        row = conn.execute("SELECT * FROM audit WHERE id > ? ORDER BY id LIMIT 1",
                           (int(kv.get(conn, AUDIT_CURSOR)),)).fetchone()
        if row is not None:
            return AUDIT_CURSOR, row["id"], {
                "event": "list.screened" if row["event"] == "screened" else f"message.{row['event']}",
                "message_id": row["message_id"], "list_id": row["send_list_id"],
                "to": row["recipient"], "outcome": row["outcome"], "at": row["at"]}
        after = int(kv.get(conn, INBOUND_CURSOR))
        for row in conn.execute("SELECT * FROM inbound WHERE id > ? ORDER BY id LIMIT 50", (after,)):
            text = row["text"]
            if row["concat_ref"] is not None:
                text = Inbox(self.db, self.clock).complete_text(row["sender"], row["concat_ref"], row["parts"])
                last = conn.execute("SELECT MAX(id) FROM inbound WHERE sender = ? AND concat_ref = ? AND parts = ?",
                                    (row["sender"], row["concat_ref"], row["parts"])).fetchone()[0]
                if text is None or last != row["id"]:
                    if text is None:
                        return None  # wait for the other parts, in order
                    self._advance(INBOUND_CURSOR, row["id"])
                    continue
            return INBOUND_CURSOR, row["id"], {"event": "inbound", "id": row["id"], "from": row["sender"],
                                               "text": text, "received_at": row["received_at"]}
        return None

    def _advance(self, cursor: str, ident: int) -> None:
        with self.db.atomic() as conn:
            kv.put(conn, cursor, str(ident))

    def deliver(self, url: str, secret: str, payload: dict) -> int:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        timestamp = str(int(self.clock.time()))
        return self.post(url, body, {"Content-Type": "application/json", "X-SMSGenie-Event": payload["event"],
                                     "X-SMSGenie-Timestamp": timestamp,
                                     "X-SMSGenie-Signature": sign(secret, timestamp, body)})

    def run(self, stop: threading.Event) -> None:
        """Until ``stop``: tell each event in order, retrying with back-off (see the module's docstring).
        The database connection it was given is its own: closed when it stops."""
        try:
            self._run(stop)
        finally:
            self.db.close()

    def _run(self, stop: threading.Event) -> None:
        attempts = 0
        while not stop.is_set():
            settings = read_settings(self.data_dir)
            url, secret = settings["webhook_url"], settings["webhook_secret"]
            event = self.next_event() if url and secret else None
            if event is None:
                # Nothing to tell: look again in a moment of real time. (Not the injected clock's wait, which
                # in a test moves a simulated time the whole box shares: an idle poll must not age the box.)
                stop.wait(IDLE)
                continue
            cursor, ident, payload = event
            status = self.deliver(url, secret, payload)
            if 200 <= status < 300 or attempts + 1 >= MAX_ATTEMPTS:
                if not 200 <= status < 300:
                    log.error("webhook %s gave up after %d attempts (last answer %s)", payload["event"],
                              MAX_ATTEMPTS, status or "none")
                self._advance(cursor, ident)
                attempts = 0
                continue
            attempts += 1
            delay = min(FIRST_RETRY * 2 ** (attempts - 1), LONGEST_RETRY)
            log.warning("webhook %s: answer %s; trying again in %.0f s", payload["event"], status or "none", delay)
            self.clock.wait(stop, delay)
