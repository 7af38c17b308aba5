"""The customer book's pages (issue 16): list, import, a customer, consent, group send, asking, replies."""

from __future__ import annotations

import io
import re

from appliance.accounts import Accounts
from appliance.book import Book
from appliance.consent import Consent
from appliance.inbox import Inbox
from appliance.settings import ShopSettings
from tests.test_web import PASSWORD, _sentences, post, token_of

pytest_plugins = ["tests.test_web"]

PAGES = ["/customers", "/customers/import", "/customers/send", "/customers/recurring", "/templates"]


def gated(box):
    """The gate as shipped (the web tests' box relaxes it for the tests that are not about consent)."""
    with ShopSettings(box.db.path.parent) as s:
        s.set("consent_gate", "required")


def import_file(client, content: bytes, **form):
    page = client.get("/customers/import")
    return client.post("/customers/import", data={"csrf_token": token_of(page.get_data(as_text=True)),
                                                  "file": (io.BytesIO(content), "c.csv"), **form},
                       content_type="multipart/form-data")


def test_every_customer_page_needs_a_session(client, box):
    Accounts(box.db, box.clock).create("boss", PASSWORD, "admin")
    for page in [*PAGES, "/customers/1", "/customers/1/conversation", "/customers/export.csv", "/inbox/1"]:
        r = client.get(page)
        assert r.status_code == 302 and "/login" in r.headers["Location"], page


def test_import_previews_then_applies_with_the_admin_s_attestation(admin, box):
    csv = "手机号,姓名,标签,积分\r\n13800138000,张伟,VIP,120\r\n12345,错号,,\r\n".encode("gbk")
    r = import_file(admin, csv, attestation="2026年会员登记表，柜台存档")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "Import these changes" in html and Book(box.db, box.clock).count() == 0
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    done = admin.post("/customers/import", data={"csrf_token": token_of(html), "token": token, "apply": "1",
                                                 "attestation": "2026年会员登记表，柜台存档"})
    assert done.status_code == 200 and "Imported." in done.get_data(as_text=True)
    c = Book(box.db, box.clock).get("+8613800138000")
    assert (c.name, c.tags, c.fields, c.consent) == ("张伟", ["VIP"], {"积分": "120"}, "given")
    listed = admin.get("/customers").get_data(as_text=True)
    assert "138****8000" in listed and "+8613800138000" not in listed  # masked in the list


def test_staff_may_import_but_not_attest_consent_nor_erase_nor_export(staff, box):
    r = import_file(staff, "手机号\r\n13800138000\r\n".encode(), attestation="我说的")
    assert r.status_code == 403
    assert staff.get("/customers/export.csv").status_code == 403
    c = Book(box.db, box.clock).save("+8613800138000", by="cli", name="张伟")
    r = post(staff, f"/customers/{c.id}", {"action": "erase"})
    assert r.status_code == 403 and Book(box.db, box.clock).count() == 1


def test_a_customer_page_records_consent_and_asks_at_the_counter(admin, box):
    c = Book(box.db, box.clock).save("+8613800138000", by="cli", name="张伟")
    r = post(admin, f"/customers/{c.id}", {"action": "consent", "reference": ""})
    assert r.status_code == 400 and "where the evidence is" in r.get_data(as_text=True)
    r = post(admin, f"/customers/{c.id}", {"action": "consent", "reference": "表 12"})
    assert r.status_code == 302 and Consent(box.db, box.clock).evidence(c.number).reference == "表 12"
    other = Book(box.db, box.clock).save("+8613900139000", by="cli")
    assert post(admin, f"/customers/{other.id}", {"action": "counter"}).status_code == 302
    question = box.messages()[-1]
    assert question.recipient == other.number and question.kind == "transactional"
    r = post(admin, f"/customers/{c.id}", {"action": "save", "name": "张伟", "birthday": "3月5日", "tags": "VIP, 老客",
                                           "fields": "积分: 120\n会员等级：金卡"})
    c = Book(box.db, box.clock).get(c.number)
    assert (c.birthday, c.tags, c.fields) == ("03-05", ["VIP", "老客"], {"积分": "120", "会员等级": "金卡"})
    r = post(admin, f"/customers/{c.id}", {"action": "save", "birthday": "13月1日"})
    assert r.status_code == 400 and "not a date" in r.get_data(as_text=True)


def test_a_group_send_previews_with_the_gate_and_queues_once(admin, box):
    gated(box)
    book = Book(box.db, box.clock)
    for n, name in (("+8613800138000", "张伟"), ("+8613900139000", "王芳")):
        book.save(n, by="cli", name=name, tags=["VIP"])
    Consent(box.db, box.clock).give("+8613800138000", "paper", "表 1", by="cli")
    r = post(admin, "/customers/send", {"tag": "VIP", "text": "{姓名}您好，周六会员日", "kind": "marketing"})
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "张伟您好，周六会员日，回T退订" in html
    assert "1 numbers have no consent on record" in html and "Ask them by SMS" in html
    key = re.search(r'name="key" value="([^"]+)"', html).group(1)
    form = {"csrf_token": token_of(html), "tag": "VIP", "text": "{姓名}您好，周六会员日", "kind": "marketing",
            "key": key, "confirm": "1"}
    first, second = admin.post("/customers/send", data=form), admin.post("/customers/send", data=form)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]  # a double click queues it once
    assert [m.recipient for m in box.messages()] == ["+8613800138000"]
    asked = post(admin, "/customers/ask", {"tag": "VIP"}, form_page="/customers/send")
    assert asked.status_code == 200 and box.messages()[-1].recipient == "+8613900139000"


def test_ask_them_from_an_upload_s_preview(admin, box):
    gated(box)
    from tests.test_web import upload

    page = upload(admin, "l.csv", "手机号\r\n13800138000\r\n13900139000\r\n".encode(), "周六会员日")
    html = page.get_data(as_text=True)
    assert "2 numbers have no consent on record" in html
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    r = admin.post("/customers/ask", data={"csrf_token": token_of(html), "token": token})
    assert r.status_code == 200 and "queued to 2 customers" in r.get_data(as_text=True)
    assert sorted(m.recipient for m in box.messages()) == ["+8613800138000", "+8613900139000"]


def test_the_inbox_groups_by_customer_and_a_reply_is_a_charged_transactional_text(admin, box):
    box.ledger.adjust(10, "credit")
    inbox = Inbox(box.db, box.clock)
    first = inbox.store("+8613800138000", None, "几点关门？", "01")
    inbox.store("+8613800138000", None, "谢谢", "02")
    html = admin.get("/inbox").get_data(as_text=True)
    assert "138****8000" in html and "谢谢" in html
    page = admin.get(f"/inbox/{first}")
    assert "几点关门？" in page.get_data(as_text=True)
    r = post(admin, f"/inbox/{first}", {"text": "晚上十点关门"})
    assert r.status_code == 200 and "Reply queued." in r.get_data(as_text=True)
    reply = box.messages()[-1]
    assert reply.kind == "transactional" and reply.text.startswith("晚上十点关门")
    assert "晚上十点关门" in admin.get(f"/inbox/{first}").get_data(as_text=True)


def test_recurring_sends_on_the_page(admin, box):
    r = post(admin, "/customers/recurring", {"name": "生日祝福", "every": "birthday", "at": "09:30",
                                             "text": "{姓名}生日快乐", "kind": "marketing", "action": "add"})
    assert r.status_code == 302
    assert "生日祝福" in admin.get("/customers/recurring").get_data(as_text=True)
    bad = post(admin, "/customers/recurring", {"name": "会员日", "every": "monthly", "day": "8", "at": "25:00",
                                               "text": "x", "action": "add"})
    assert bad.status_code == 400 and "not a time of day" in bad.get_data(as_text=True)


def test_the_customer_pages_in_chinese_show_no_english_sentence(app, box):
    zh = app.test_client()
    pin = Accounts(box.db, box.clock).new_setup_pin()
    post(zh, "/setup", {"pin": pin, "shop_name": "小王便利店", "username": "boss", "password": PASSWORD,
                        "password2": PASSWORD})
    c = Book(box.db, box.clock).save("+8613800138000", by="cli", name="张伟", tags=["VIP"], birthday="3月5日")
    Consent(box.db, box.clock).give(c.number, "paper", "表 1", by="cli")
    iid = Inbox(box.db, box.clock).store(c.number, None, "你好", "01")
    shown = {}
    for url in [*PAGES, f"/customers/{c.id}", f"/customers/{c.id}/conversation", f"/inbox/{iid}"]:
        r = zh.get(url)
        assert r.status_code == 200, url
        shown[url] = r.get_data(as_text=True)
    preview = post(zh, "/customers/send", {"tag": "VIP", "text": "{姓名}您好", "kind": "marketing"})
    shown["group preview"] = preview.get_data(as_text=True)
    english = {name: found for name, html in shown.items() if (found := _sentences(html))}
    assert not english, english


# --- the API ----------------------------------------------------------------------------------------------


def token(box, *scopes):
    return {"Authorization": "Bearer " + Accounts(box.db, box.clock).new_token("POS", scopes or ("send", "customers"))}


def test_the_api_keeps_the_book_with_consent_and_opt_outs(client, box):
    auth = token(box)
    r = client.post("/api/v1/customers", headers=auth, json={"number": "138 0013 8000", "name": "张伟",
                                                             "tags": ["VIP"], "fields": {"积分": "120"}})
    assert r.status_code == 200
    c = r.get_json()["customer"]
    assert (c["number"], c["consent"], c["tags"]) == ("+8613800138000", "unknown", ["VIP"])
    assert client.post("/api/v1/customers", headers=auth, json={"number": "12345"}).status_code == 400
    assert client.post("/api/v1/customers", headers=auth, json={"number": "13800138000", "tags": "VIP"}
                       ).status_code == 400
    bad = client.post("/api/v1/customers/consent", headers=auth, json={"number": "13800138000", "source": "paper"})
    assert bad.status_code == 400 and "where the evidence is" in bad.get_json()["error"]
    ok = client.post("/api/v1/customers/consent", headers=auth, json={"number": "13800138000", "source": "paper",
                                                                     "reference": "表 9"}).get_json()
    assert ok["customer"]["consent"] == "given" and ok["customer"]["evidence"]["reference"] == "表 9"
    assert client.get(f"/api/v1/customers/{c['id']}", headers=auth).get_json()["customer"]["name"] == "张伟"
    assert client.get("/api/v1/groups", headers=auth).get_json() == {"groups": [{"tag": "VIP", "customers": 1}]}
    out = client.post("/api/v1/customers/opt-out", headers=auth, json={"number": "13800138000", "reason": "电话里说的"})
    assert out.get_json()["customer"]["consent"] == "refused"
    no_scope = token(box, "send")
    assert client.get("/api/v1/customers", headers=no_scope).status_code == 403


def test_the_api_sends_to_a_group_through_the_gate_once_per_key(client, box):
    gated(box)
    auth = {**token(box), "Idempotency-Key": "member-day-1"}
    book = Book(box.db, box.clock)
    for n in ("+8613800138000", "+8613900139000"):
        book.save(n, by="cli", name="顾客", tags=["VIP"])
    Consent(box.db, box.clock).give("+8613800138000", "paper", "表 1", by="cli")
    r = client.post("/api/v1/groups/VIP/messages", headers=auth, json={"text": "{姓名}您好，周六会员日"})
    body = r.get_json()
    assert r.status_code == 202 and body["queued"] == 1 and body["refused_by_reason"] == {"no consent on record": 1}
    again = client.post("/api/v1/groups/VIP/messages", headers=auth, json={"text": "{姓名}您好，周六会员日"})
    assert again.get_json() == {"list_id": body["list_id"], "replayed": True}
    assert len(box.messages()) == 1


def test_the_api_keeps_saved_templates_and_reads_conversations_and_recurring_sends(client, box):
    """Saved templates (scope send), a customer's conversation and the recurring sends (scope customers)."""
    from appliance.inbox import Inbox
    from appliance.recurring import RecurringSends

    send, book = token(box, "send"), token(box, "customers")
    made = client.post("/api/v1/templates", headers=send, json={"name": "会员日", "text": "{姓名}您好！周六9折"})
    assert made.status_code == 200 and made.get_json()["template"]["fields"] == ["姓名"]
    tid = made.get_json()["template"]["id"]
    bad = client.post("/api/v1/templates", headers=send, json={"name": "坏的", "text": "{姓名您好"})
    assert bad.status_code == 400 and "unmatched brace" in bad.get_json()["error"]
    assert client.post("/api/v1/templates", headers=send, json={"name": "x"}).status_code == 400
    assert [t["name"] for t in client.get("/api/v1/templates", headers=send).get_json()["templates"]] == ["会员日"]
    assert client.get("/api/v1/templates", headers=book).status_code == 403  # templates are the send scope's
    assert client.delete(f"/api/v1/templates/{tid}", headers=send).get_json() == {"deleted": tid}
    assert client.delete(f"/api/v1/templates/{tid}", headers=send).status_code == 404

    c = Book(box.db, box.clock).save("+8613800138000", by="cli", name="张伟")
    Inbox(box.db, box.clock).store("+8613800138000", None, "几点开门？", "00")
    talk = client.get(f"/api/v1/customers/{c.id}/conversation", headers=book)
    assert talk.status_code == 200 and talk.get_json()["messages"][0]["text"] == "几点开门？"
    assert talk.get_json()["messages"][0]["direction"] == "in"
    assert client.get("/api/v1/customers/999/conversation", headers=book).status_code == 404
    assert client.get(f"/api/v1/customers/{c.id}/conversation", headers=send).status_code == 403

    RecurringSends(box.db, box.clock).add("生日祝福", "birthday", "{姓名}生日快乐", at="10:00", by="user:1")
    sends = client.get("/api/v1/recurring", headers=book).get_json()
    assert sends["recurring"][0]["name"] == "生日祝福" and sends["recurring"][0]["at"] == "10:00"
    assert sends["runs"] == []


def test_saved_templates_fill_the_send_pages(admin, box):
    r = post(admin, "/templates", {"name": "会员日", "text": "{姓名}您好！本周六会员日全场9折"})
    assert r.status_code == 302
    bad = post(admin, "/templates", {"name": "坏的", "text": "{姓名您好"})
    assert bad.status_code == 400 and "unmatched brace" in bad.get_data(as_text=True)
    from appliance.saved import SavedTemplates

    (saved,) = SavedTemplates(box.db, box.clock).all()
    assert saved.fields == ["姓名"]
    upload_page = admin.get(f"/send?template={saved.id}").get_data(as_text=True)
    assert "{姓名}您好！本周六会员日全场9折</textarea>" in upload_page
    group = admin.get(f"/customers/send?template={saved.id}").get_data(as_text=True)
    assert "{姓名}您好！本周六会员日全场9折</textarea>" in group
    post(admin, "/templates", {"name": "会员日", "text": "{姓名}您好！会员日8折"})  # the same name: replaced
    assert [t.text for t in SavedTemplates(box.db, box.clock).all()] == ["{姓名}您好！会员日8折"]
