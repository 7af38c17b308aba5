"""Webhooks (issue 16.10): signed, in order, retried with back-off, never in the sender's way."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from appliance.inbox import Inbox
from appliance.plan import plan_message
from appliance.settings import ShopSettings
from appliance.webhooks import FIRST_RETRY, MAX_ATTEMPTS, Webhooks, http_post, sign

SECRET = "a-secret-of-the-shop-0123"


class Receiver(BaseHTTPRequestHandler):
    answers: list[int] = []
    got: list[tuple[dict, bytes]] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = self.answers.pop(0) if self.answers else 204
        self.got.append((self.headers, body, status))  # (an email.message.Message: names in any case)
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.answers, Receiver.got = [], []
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def configure(q, url):
    with ShopSettings(q.db.path.parent) as s:
        s.set("webhook_url", url)
        s.set("webhook_secret", SECRET)


def send_one(q, number="+8613800000001"):
    mid = q.enqueue(None, [number], plan_message("取件码 1234"), "YL08")[0]
    q.claim(modem="m1", sim="8986")
    q.record_segment(mid, 1, 7)
    q.mark_sent(mid)
    return mid


def test_each_outcome_and_inbound_text_is_posted_signed_and_in_order(q, receiver):
    configure(q, receiver)
    hooks = Webhooks(q.db, q.clock, str(q.db.path.parent), post=http_post)
    assert hooks.next_event() is None  # it starts at the present: no flood of history
    mid = send_one(q)
    Inbox(q.db, q.clock).store("+8613800000001", None, "收到，谢谢", "0A")
    settings = {"url": receiver}
    for _ in range(2):
        cursor, ident, payload = hooks.next_event()
        assert hooks.deliver(settings["url"], SECRET, payload) == 204
        hooks._advance(cursor, ident)
    assert hooks.next_event() is None
    (h1, b1, _), (h2, b2, _) = Receiver.got
    first, second = json.loads(b1), json.loads(b2)
    assert first["event"] == "message.sent" and first["message_id"] == mid
    assert second == {"event": "inbound", "id": second["id"], "from": "+8613800000001", "text": "收到，谢谢",
                      "received_at": second["received_at"]}
    expected = "sha256=" + hmac.new(SECRET.encode(), h1["X-SMSGenie-Timestamp"].encode() + b"." + b1,
                                    hashlib.sha256).hexdigest()
    assert h1["X-SMSGenie-Signature"] == expected == sign(SECRET, h1["X-SMSGenie-Timestamp"], b1)


def test_a_refusing_receiver_is_retried_with_back_off_then_given_up(q, receiver):
    configure(q, receiver)
    stop = threading.Event()
    hooks = Webhooks(q.db, q.clock, str(q.db.path.parent))
    hooks.next_event()  # the cursors start here
    send_one(q)
    send_one(q, "+8613800000002")
    Receiver.answers = [500, 503] + [500] * (MAX_ATTEMPTS - 2) + [204]
    started = q.clock.time()

    def run():
        hooks._run(stop)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    from tests.conftest import wait_for

    wait_for(lambda: len(Receiver.got) >= MAX_ATTEMPTS + 1, 20, message="every attempt and the next event")
    stop.set()
    thread.join(5)
    firsts = [json.loads(b)["message_id"] for _, b, _ in Receiver.got]
    assert firsts[:MAX_ATTEMPTS] == [firsts[0]] * MAX_ATTEMPTS  # the same event until it is given up ...
    assert firsts[MAX_ATTEMPTS] != firsts[0]  # ... then the next one, which the receiver took
    waited = q.clock.time() - started
    assert waited >= FIRST_RETRY * (1 + 2 + 4)  # backing off, in simulated time


def test_no_url_no_posts(q):
    posted = []
    hooks = Webhooks(q.db, q.clock, str(q.db.path.parent), post=lambda *a: posted.append(a) or 200)
    stop = threading.Event()
    send_one(q)
    thread = threading.Thread(target=hooks._run, args=(stop,), daemon=True)
    thread.start()
    q.clock.advance(10)
    stop.set()
    thread.join(5)
    assert posted == []
