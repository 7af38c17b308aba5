"""Approval before marketing goes out (issue 15.3): a staff member's list waits for an admin."""

from __future__ import annotations

import pytest

from appliance.accounts import Accounts
from appliance.approval import Approvals, Waiting, needs
from appliance.config import Config, WebConfig
from appliance.errors import ListStateError
from appliance.intake import Intake
from appliance.sendlists import SendLists
from appliance.settings import save_setting
from appliance.ui.menu import Navigator, menu_items
from appliance.ui.screens import Snapshot
from tests.conftest import sent_rows
from tests.test_hardening import confirm_upload, login
from tests.test_web import PASSWORD, post

pytest_plugins = ["tests.test_web"]


@pytest.fixture
def shop(q, tmp_path, fake_clock):
    config = Config(data_dir=str(tmp_path / "data"), service_code="YL08", web=WebConfig(listen=""))
    accounts = Accounts(q.db, fake_clock)
    staff = accounts.create("clerk", PASSWORD, "staff")
    admin = accounts.create("boss", PASSWORD + "x", "admin")
    return Intake(q.db, fake_clock, config), q, staff, admin


def queue_list(intake, tmp_path, by, kind="marketing", rows=3):
    path = tmp_path / f"l{by.replace(':', '')}{kind}.csv"
    path.write_text("phone\n" + "".join(f"1380013{i:04d}\n" for i in range(rows)), encoding="utf-8")
    queued, _ = intake.queue_file(path, "周六会员日，全场八折", kind=kind, by=by)
    return queued


def test_who_must_wait(shop, tmp_path):
    intake, q, staff, admin = shop
    conn = q.db.conn
    token = Accounts(q.db, q.clock).new_token("POS")
    trusted = Accounts(q.db, q.clock).new_token("ERP", ("send", "send-unapproved"))
    assert token and trusted
    ids = [r[0] for r in conn.execute("SELECT id FROM api_tokens ORDER BY id")]
    assert needs(conn, "marketing", "marketing", f"user:{staff.id}")
    assert not needs(conn, "marketing", "transactional", f"user:{staff.id}")
    assert needs(conn, "all", "transactional", f"user:{staff.id}")
    assert not needs(conn, "none", "marketing", f"user:{staff.id}")
    assert not needs(conn, "all", "marketing", f"user:{admin.id}")
    assert needs(conn, "marketing", "marketing", f"api:{ids[0]}")
    assert not needs(conn, "marketing", "marketing", f"api:{ids[1]}")
    assert not any(needs(conn, "all", "marketing", by) for by in ("cli", "panel", "demo", None))
    assert needs(conn, "marketing", "marketing", "user:999")  # a deleted user's list: an admin looks


def test_a_staff_list_waits_uncharged_until_an_admin_approves(shop, tmp_path):
    intake, q, staff, admin = shop
    balance = q.ledger.balance()
    queued = queue_list(intake, tmp_path, f"user:{staff.id}")
    lists = SendLists(q.db, q.clock)
    assert lists.get(queued.list_id)["state"] == "awaiting"
    assert q.claim() is None and q.ledger.balance() == balance  # nothing goes, nothing charged
    (waiting,) = Approvals(q.db, q.clock).waiting()
    assert (waiting.messages, waiting.parts, waiting.created_by) == (3, 3, f"user:{staff.id}")
    assert waiting.first_text.startswith("周六会员日")
    Approvals(q.db, q.clock).approve(queued.list_id, f"user:{admin.id}")
    lists.settle()
    msg = q.claim(modem="m", sim="8986")
    assert msg is not None and msg.send_list_id == queued.list_id
    q.record_segment(msg.id, 1, 1)
    q.mark_sent(msg.id)
    row = sent_rows(q)[0]
    assert row["approved_by"] == f"user:{admin.id} boss" and row["queued_by"] == f"user:{staff.id} clerk"
    with pytest.raises(ListStateError, match="decided already"):
        Approvals(q.db, q.clock).decline(queued.list_id, f"user:{admin.id}")


def test_a_declined_list_fails_uncharged_and_the_record_says_who(shop, tmp_path):
    intake, q, staff, admin = shop
    balance = q.ledger.balance()
    queued = queue_list(intake, tmp_path, f"user:{staff.id}")
    Approvals(q.db, q.clock).decline(queued.list_id, "panel")
    SendLists(q.db, q.clock).settle()
    assert q.counts()["failed"] == 3 and q.ledger.balance() == balance
    rows = sent_rows(q)
    assert len(rows) == 3 and all("declined by panel" in r["outcome"] for r in rows)
    assert SendLists(q.db, q.clock).get(queued.list_id)["state"] == "declined"


def test_admins_and_transactional_lists_go_at_once(shop, tmp_path):
    intake, q, staff, admin = shop
    assert SendLists(q.db, q.clock).get(queue_list(intake, tmp_path, f"user:{admin.id}").list_id)["state"] == "active"
    staff_order = queue_list(intake, tmp_path, f"user:{staff.id}", kind="transactional")
    assert SendLists(q.db, q.clock).get(staff_order.list_id)["state"] == "active"
    save_setting(intake.config.data_dir, "approval", "all")
    staff_order = queue_list(intake, tmp_path, f"user:{staff.id}", kind="transactional", rows=2)
    assert SendLists(q.db, q.clock).get(staff_order.list_id)["state"] == "awaiting"
    save_setting(intake.config.data_dir, "approval", "none")
    assert SendLists(q.db, q.clock).get(queue_list(intake, tmp_path, f"user:{staff.id}", rows=1).list_id)[
        "state"] == "active"


def test_a_big_staff_list_loads_then_waits(shop, tmp_path, monkeypatch):
    from appliance.loading import ListLoader
    monkeypatch.setitem(ListLoader.__init__.__kwdefaults__, "batch", 2)
    intake, q, staff, admin = shop
    states = []
    real = ListLoader._write

    def write(self, *, final, **more):
        real(self, final=final, **more)
        states.append(SendLists(q.db, q.clock).get(self.list_id)["state"])

    monkeypatch.setattr(ListLoader, "_write", write)
    queue_list(intake, tmp_path, f"user:{staff.id}", rows=7)
    assert states == ["loading", "loading", "loading", "awaiting"]
    SendLists(q.db, q.clock).settle()
    assert q.claim() is None
    assert Approvals(q.db, q.clock).waiting()[0].messages == 7


def test_the_api_says_a_list_awaits_approval(shop):
    intake, q, staff, admin = shop
    accounts = Accounts(q.db, q.clock)
    accounts.new_token("POS")
    token_id = q.db.execute("SELECT MAX(id) FROM api_tokens").fetchone()[0]
    answer = intake.queue_messages([("13800138000", "会员日八折")], name="API: POS", by=f"api:{token_id}")
    assert SendLists(q.db, q.clock).get(answer.list_id)["state"] == "awaiting"
    assert q.claim() is None


# --- the counter panel -----------------------------------------------------------------------------------


def waiting_list(i=1, name="会员日"):
    return Waiting(i, name, "marketing", "user:2", 0.0, 120, 240, "周六会员日，全场八折【小王便利店】")


def test_the_panel_approves_with_ok_and_declines_with_back_then_ok():
    nav = Navigator()
    s = Snapshot(awaiting=(waiting_list(7), waiting_list(8, "新品")))
    assert menu_items(s)[1] == "Approve lists ({n})"
    assert menu_items(Snapshot())[1] == "Web address"  # only while a list waits
    nav.button("ok", "press", s, 0)
    nav.button("down", "press", s, 0)
    nav.button("ok", "press", s, 0)
    shown = nav.screen(s, "zh_CN", 0)
    assert shown.title.startswith("OK发送 返回拒绝") and shown.lines[:2] == ("1/2 会员日", "120条 扣240条")
    assert shown.lines[2].startswith("周六会员日")
    assert nav.button("ok", "press", s, 0) == "approve:7"
    nav.button("ok", "press", s, 0)  # the menu again: the entry is still the second
    nav.button("down", "press", s, 0)  # the second list
    assert nav.button("back", "press", s, 0) is None and nav.mode == "decline"
    assert nav.screen(s, "en", 0).lines == ("Sure? OK: yes", "Back: no")
    assert nav.button("back", "press", s, 0) is None and nav.mode == "approve"  # Back: no
    nav.button("back", "press", s, 0)
    assert nav.button("ok", "press", s, 0) == "decline:8"


# --- the page ---------------------------------------------------------------------------------------------


def test_on_the_page_staff_wait_and_an_admin_approves(app, admin, box):
    box.ledger.adjust(100, "credit")
    Accounts(box.db, box.clock).create("clerk", PASSWORD, "staff")
    clerk = login(app, "clerk")
    list_id = confirm_upload(clerk, "会员日.csv")
    assert SendLists(box.db, box.clock).get(list_id)["state"] == "awaiting"
    page = clerk.get(f"/history/{list_id}").get_data(as_text=True)
    assert "waits for an admin" in page
    dash = clerk.get("/").get_data(as_text=True)
    assert "Awaiting approval" in dash and "Waiting for an admin" in dash and "Approve: send it" not in dash
    assert post(clerk, f"/lists/{list_id}/approve", {}, form_page="/").status_code == 403
    boss = admin.get("/").get_data(as_text=True)
    assert "Approve: send it" in boss and "2 messages, 2 credits" in boss and "周六开业" in boss
    assert post(admin, f"/lists/{list_id}/approve", {"next": "/"}, form_page="/").status_code == 302
    lst = SendLists(box.db, box.clock).get(list_id)
    assert lst["state"] == "active" and lst["approved_by"].startswith("user:")
    assert "Approved by boss" in admin.get(f"/history/{list_id}").get_data(as_text=True)
    again = post(admin, f"/lists/{list_id}/decline", {}, form_page="/")
    assert again.status_code == 409 and "decided already" in again.get_data(as_text=True)


def test_staff_may_withdraw_their_waiting_list(app, admin, box):
    Accounts(box.db, box.clock).create("clerk", PASSWORD, "staff")
    clerk = login(app, "clerk")
    list_id = confirm_upload(clerk, "l.csv")
    assert post(clerk, f"/lists/{list_id}/cancel", {}, form_page="/history").status_code == 302
    SendLists(box.db, box.clock).settle()
    assert box.counts()["failed"] == 2 and not Approvals(box.db, box.clock).waiting()


def test_the_admin_sets_the_rule(app, admin, box):
    assert post(admin, "/admin/settings", {"approval": "all"}, form_page="/admin/").status_code == 200
    from appliance.settings import read_settings
    from web.state import config
    with app.app_context():
        assert read_settings(config().data_dir)["approval"] == "all"
    bad = post(admin, "/admin/settings", {"approval": "sometimes"}, form_page="/admin/")
    assert bad.status_code == 400 and "approval must be one of" in bad.get_data(as_text=True)
