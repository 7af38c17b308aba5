"""The box under double clicks, faults and a hostile LAN (issue 13): each promise, tested."""

from __future__ import annotations

import re
import threading

import pytest

from appliance.accounts import Accounts
from appliance.intake import Intake
from appliance.sendlists import SendLists
from tests.test_web import PASSWORD, post, token_of, upload

pytest_plugins = ["tests.test_web"]


def login(app, username="boss"):
    c = app.test_client()
    c.get("/lang/en")
    assert post(c, "/login", {"username": username, "password": PASSWORD}).status_code == 302
    return c


# --- 1. exactly once ------------------------------------------------------------------------------------


def test_two_confirms_of_one_preview_queue_the_list_once(app, admin, box, monkeypatch):
    """A double click, a resubmitted form, two tabs: the list goes into the queue once."""
    box.ledger.adjust(10, "credit")
    r = upload(admin, "l.csv", "phone\n13800138000\n13900139000\n".encode(), "周六开业")
    html = r.get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    other = login(app)
    other_csrf = token_of(other.get("/send").get_data(as_text=True))
    both_read = threading.Barrier(2)
    real = Intake.check_file

    def read_then_wait(self, *args, **kwargs):
        checked = real(self, *args, **kwargs)
        both_read.wait(timeout=10)  # both requests have read the upload before either queues it
        return checked

    monkeypatch.setattr(Intake, "check_file", read_then_wait)
    form = {"token": token, "name": "l.csv", "text": "周六开业", "kind": "marketing", "start_at": ""}
    answers = []
    tabs = [threading.Thread(target=lambda c=c, t=t: answers.append(c.post("/send/confirm",
                                                                            data={"csrf_token": t, **form})))
            for c, t in ((admin, token_of(html)), (other, other_csrf))]
    for t in tabs:
        t.start()
    for t in tabs:
        t.join(timeout=30)
    lists = SendLists(box.db, box.clock).recent()
    assert len(lists) == 1 and lists[0]["total"] == 2
    assert len(box.messages()) == 2
    codes = sorted(a.status_code for a in answers)
    assert codes == [302, 409]
    again = next(a for a in answers if a.status_code == 409).get_data(as_text=True)
    assert "already sent" in again and f'href="/history/{lists[0]["id"]}"' in again
    # the same form sent once more later (the browser's "resubmit"): the same answer, still one list
    late = admin.post("/send/confirm", data={"csrf_token": token_of(html), **form})
    assert late.status_code == 409 and "already sent" in late.get_data(as_text=True)
    assert len(SendLists(box.db, box.clock).recent()) == 1


def test_the_api_replays_an_idempotency_key_with_its_first_answer(client, box):
    token = Accounts(box.db, box.clock).new_token("POS")
    other = Accounts(box.db, box.clock).new_token("Booking")
    body = {"messages": [{"to": "13800138000", "text": "您的订单已到店"}]}

    def send(tok, key, json=body):
        return client.post("/api/v1/messages", json=json,
                           headers={"Authorization": f"Bearer {tok}", "Idempotency-Key": key})

    first = send(token, "order-1001")
    replay = send(token, "order-1001")
    assert first.status_code == replay.status_code == 202
    assert first.get_json()["messages"] == replay.get_json()["messages"]
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert len(box.messages()) == 1
    assert send(token, "order-1002").status_code == 202 and len(box.messages()) == 2
    assert send(other, "order-1001").status_code == 202 and len(box.messages()) == 3  # keys are per token
    changed = send(token, "order-1001", {"to": "13900139000", "text": "另一条"})
    assert changed.status_code == 422 and "Idempotency-Key" in changed.get_json()["error"]
    assert len(box.messages()) == 3


def test_concurrent_api_calls_with_one_key_queue_once(app, box):
    token = Accounts(box.db, box.clock).new_token("POS")
    answers = []

    def call():
        c = app.test_client()
        answers.append(c.post("/api/v1/messages", json={"to": "13800138000", "text": "取件码 8842"},
                              headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k-7"}))

    calls = [threading.Thread(target=call) for _ in range(4)]
    for t in calls:
        t.start()
    for t in calls:
        t.join(timeout=30)
    assert [a.status_code for a in answers] == [202] * 4
    assert len({a.get_json()["messages"][0]["id"] for a in answers}) == 1
    assert len(box.messages()) == 1


def test_keys_are_remembered_for_a_week(tmp_path):
    from appliance.clock import FakeClock
    from appliance.config import Config
    from appliance.db import Database

    clock = FakeClock()
    config = Config(data_dir=str(tmp_path), service_code="YL08")
    db = Database.in_data_dir(tmp_path)
    intake = Intake(db, clock, config)
    first = intake.queue_messages([("13800138000", "hi")], name="API", key="api:1:a")
    assert intake.queue_messages([("13800138000", "hi")], name="API", key="api:1:a").replayed
    clock.advance(6 * 86400)
    assert intake.forget_keys() == 0
    clock.advance(2 * 86400)
    assert intake.forget_keys() == 1
    again = intake.queue_messages([("13800138000", "hi")], name="API", key="api:1:a")
    assert not again.replayed and again.list_id != first.list_id
    db.close()
