"""The customer book (issue 16): consent on record gates marketing, SMS double opt-in, birthdays, erasure."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import datetime

import pytest
from click.testing import CliRunner

from appliance.asking import Asking
from appliance.book import Book, parse_birthday
from appliance.bookfile import BookImport, export
from appliance.config import Config, WebConfig
from appliance.consent import Consent, is_yes
from appliance.db import Database
from appliance.erasure import Erasure
from appliance.errors import ConsentError, CustomerError, CustomerNotFound
from appliance.inbox import Inbox
from appliance.intake import Intake
from appliance.optout import OptOuts
from appliance.preview import NO_CONSENT, OPTED_OUT
from appliance.recurring import RecurringSends, born_on
from appliance.sendqueue import SendQueue
from appliance.settings import ShopSettings
from tests.conftest import SIGNATURE, give_vendor_list, modem_statuses, report, running_daemon, sent_rows, wait_for

CONSENTED = ["+8613800000001", "+8613800000002", "+8613800000003"]
UNKNOWN = ["+8613800000004", "+8613800000005"]
OPTED = "+8613800000006"


@pytest.fixture
def box(tmp_path, fake_clock):
    """A box set up as a shop's: the vendor list, the signature, and the consent gate as shipped."""
    db = Database.in_data_dir(tmp_path / "data")
    give_vendor_list(db, fake_clock, gate="required")
    q = SendQueue(db, fake_clock)
    q.ledger.adjust(1000, "credit")
    yield q
    db.close()


def intake_of(q, tmp_path):
    return Intake(q.db, q.clock, Config(data_dir=str(tmp_path / "data"), service_code="YL08",
                                        web=WebConfig(listen="")))


def write_list(path, numbers):
    path.write_text("手机号,姓名\n" + "".join(f"{n[3:]},顾客{i}\n" for i, n in enumerate(numbers)), encoding="utf-8")
    return path


def shop_with_customers(q):
    consent = Consent(q.db, q.clock)
    for i, n in enumerate(CONSENTED):
        consent.give(n, "paper", f"会员登记表 No.{i + 1}", by="user:1")
    Book(q.db, q.clock).save(UNKNOWN[0], by="cli", name="只在册")  # in the book, consent unknown
    OptOuts(q.db, q.clock).add(OPTED, "sms", "replied 'TD'")


# --- the gate ------------------------------------------------------------------------------------------


def test_a_marketing_upload_queues_only_the_consented_and_says_why_for_the_others(box, tmp_path):
    shop_with_customers(box)
    path = write_list(tmp_path / "l.csv", [*CONSENTED, *UNKNOWN, OPTED])
    queued, preview = intake_of(box, tmp_path).queue_file(path, "{姓名}您好，周六会员日", by="cli")
    assert queued.count == 3 and preview.accepted == 3 and preview.refused == 3
    assert preview.refused_by_reason == {NO_CONSENT: 2, OPTED_OUT: 1}
    assert preview.as_dict()["consent_gate"] == "required"
    shown = {r["reason"] for r in preview.as_dict()["refused_rows"]}
    assert shown == {NO_CONSENT, OPTED_OUT}
    (screened,) = [r for r in box.audit.rows(0, 1e12) if r["event"] == "screened"]  # the decisions, recorded
    assert screened["outcome"] == ("3 queued, 3 refused (no consent on record 2; opted out 1); consent gate required")
    assert screened["recipient"] == "" and box.audit.verify().ok
    assert all("****" in r["value"] for r in preview.as_dict()["refused_rows"])  # masked, as opt-outs are
    messages = box.messages()
    assert sorted(m.recipient for m in messages) == CONSENTED
    assert all(m.text.endswith("回T退订" + SIGNATURE) for m in messages)
    events = {e.number: e.id for e in Consent(box.db, box.clock).history()}
    assert {m.recipient: m.basis for m in messages} == {n: f"consent:{events[n]}" for n in CONSENTED}


def test_the_record_names_the_consent_each_message_relied_on(box, tmp_path):
    shop_with_customers(box)
    path = write_list(tmp_path / "l.csv", CONSENTED[:1])
    intake_of(box, tmp_path).queue_file(path, "{姓名}您好", by="cli")
    msg = box.claim(modem="m1", sim="8986")
    box.record_segment(msg.id, 1, 7)
    box.mark_sent(msg.id)
    row = sent_rows(box)[0]
    assert row["basis"].startswith("consent #") and "paper form 会员登记表 No.1" in row["basis"]
    assert box.audit.verify().ok


def test_transactional_needs_no_consent_and_says_so_in_the_record(box, tmp_path):
    path = write_list(tmp_path / "l.csv", UNKNOWN)
    queued, preview = intake_of(box, tmp_path).queue_file(path, "您的订单已到店", kind="transactional", by="cli")
    assert queued.count == 2 and preview.as_dict()["consent_gate"] == "none"
    assert [m.text for m in box.messages()] == ["您的订单已到店" + SIGNATURE] * 2  # the signature, no footer
    msg = box.claim(modem="m1", sim="8986")
    box.record_segment(msg.id, 1, 7)
    box.mark_sent(msg.id)
    assert sent_rows(box)[0]["basis"] == "transactional"


def test_the_relaxed_gate_lets_unknown_numbers_through_and_the_record_notes_it(box, tmp_path):
    shop_with_customers(box)
    ShopSettings(tmp_path / "data").set("consent_gate", "paper")
    path = write_list(tmp_path / "l.csv", [*UNKNOWN, OPTED])
    queued, preview = intake_of(box, tmp_path).queue_file(path, "周六会员日", by="cli")
    assert queued.count == 2 and preview.refused_by_reason == {OPTED_OUT: 1}  # a refusal still stops it
    assert preview.as_dict()["consent_gate"] == "paper"
    msg = box.claim(modem="m1", sim="8986")
    box.record_segment(msg.id, 1, 7)
    box.mark_sent(msg.id)
    assert "consent kept on paper by the shop" in sent_rows(box)[0]["basis"]


def test_the_api_meets_the_same_gate(box, tmp_path):
    shop_with_customers(box)
    answer = intake_of(box, tmp_path).queue_messages([(CONSENTED[0], "周六会员日"), (UNKNOWN[1], "周六会员日")],
                                                     name="API")
    assert "id" in answer.results[0] and "no consent on record" in answer.results[1]["error"]


def test_marketing_needs_the_signature_and_a_text_with_its_own_way_out_gets_no_footer(box, tmp_path):
    shop_with_customers(box)
    intake = intake_of(box, tmp_path)
    path = write_list(tmp_path / "l.csv", CONSENTED[:1])
    preview = intake.check_file(path, "周六会员日，退订回TD").preview
    assert preview.samples[0]["text"] == "周六会员日，退订回TD" + SIGNATURE
    ShopSettings(tmp_path / "data").set("signature", "")
    from appliance.errors import SignatureMissing

    with pytest.raises(SignatureMissing):
        intake.check_file(path, "周六会员日")
    assert intake.check_file(path, "订单已到店", kind="transactional").preview.accepted == 1


# --- consent, by hand and by SMS ----------------------------------------------------------------------


def test_consent_by_hand_needs_its_evidence(box):
    consent = Consent(box.db, box.clock)
    with pytest.raises(ConsentError, match="where the evidence is"):
        consent.give(CONSENTED[0], "paper", "  ", by="cli")
    with pytest.raises(ConsentError, match="recorded when the customer replies"):
        consent.give(CONSENTED[0], "sms-double-opt-in", "x", by="cli")
    consent.give(CONSENTED[0], "paper", "表 7", by="user:1")
    ev = consent.evidence(CONSENTED[0])
    assert (ev.state, ev.source, ev.reference, ev.recorded_by) == ("given", "paper", "表 7", "user:1")


@pytest.mark.parametrize("text,yes", [("Y", True), ("y", True), ("是", True), ("确认", True), ("Ｙ", True),
                                      (" yes! ", True), ("好的呀", False), ("TD", False), ("", False)])
def test_what_counts_as_yes(text, yes):
    assert is_yes(text) is yes


def test_a_yes_answers_only_the_question_sent_to_its_own_number(box, tmp_path):
    intake = intake_of(box, tmp_path)
    asking = Asking(box.db, box.clock)
    settings = intake.settings()
    assert asking.ask(intake, [UNKNOWN[0]], by="cli") == 1
    assert asking.ask(intake, [UNKNOWN[0]], by="cli") == 0  # one question open at a time
    question = box.messages()[0]
    assert question.kind == "transactional" and question.text == "回复Y确认接收【测试店】优惠信息，回T退订"
    assert asking.reply(UNKNOWN[1], "Y", 1, settings) is None  # another number's yes answers nothing
    assert Consent(box.db, box.clock).state(UNKNOWN[1]) == "unknown"
    assert asking.reply(UNKNOWN[0], "Y", 2, settings) == "yes"
    ev = Consent(box.db, box.clock).evidence(UNKNOWN[0])
    assert (ev.source, ev.inbound_id) == ("sms-double-opt-in", 2)


def test_an_unanswered_question_expires_and_leaves_consent_unknown(box, tmp_path):
    intake = intake_of(box, tmp_path)
    asking = Asking(box.db, box.clock)
    asking.ask(intake, [UNKNOWN[0]], by="cli")
    box.clock.advance(8 * 86400)  # consent_days is 7
    assert asking.reply(UNKNOWN[0], "Y", 3, intake.settings()) is None
    assert Consent(box.db, box.clock).state(UNKNOWN[0]) == "unknown"


def test_double_opt_in_round_trip_over_the_simulated_modem(sim, config, queue):
    """The shop asks; the daemon sends the question through the modem; the customer's Y comes back
    through the modem and becomes consent with the inbound text as evidence; a marketing list then
    reaches them."""
    give_vendor_list(queue.db, queue.clock, gate="required")
    intake = Intake(queue.db, queue.clock, config)
    number = "+8613912345678"
    assert Asking(queue.db, queue.clock).ask(intake, [number], by="cli") == 1
    with running_daemon(config):
        wait_for(lambda: queue.messages()[0].state == "delivered", 15, message="the question delivered")
        assert [(a.recipient, a.text) for a in sim.accepted] == [(number, "回复Y确认接收【测试店】优惠信息，回T退订")]
        sim.inject_sms(number, "是")
        wait_for(lambda: Consent(queue.db, queue.clock).state(number) == "given", 15, message="consent by SMS")
    ev = Consent(queue.db, queue.clock).evidence(number)
    inbound = queue.db.execute("SELECT * FROM inbound WHERE id = ?", (ev.inbound_id,)).fetchone()
    assert ev.source == "sms-double-opt-in" and inbound["sender"] == number and inbound["text"] == "是"
    answer = intake.queue_messages([(number, "周六会员日")], name="after consent")
    assert answer.queued == 1


def test_a_customer_who_texts_the_sign_up_word_is_asked_and_joins(sim, config, queue):
    give_vendor_list(queue.db, queue.clock, gate="required")
    number = "+8613912345679"
    with running_daemon(config):
        wait_for(lambda: modem_statuses(queue).get(sim.port, {}).get("state") == "registered", 10)
        sim.inject_sms(number, "加入")
        wait_for(lambda: [(a.recipient, a.text) for a in sim.accepted] == [
            (number, "回复Y确认接收【测试店】优惠信息，回T退订")], 60, message="the question sent back")
        sim.inject_sms(number, "Y")
        wait_for(lambda: Consent(queue.db, queue.clock).state(number) == "given", 15)
    assert Consent(queue.db, queue.clock).evidence(number).source == "sms-signup"


# --- the opt-out list became part of the book ---------------------------------------------------------


def test_the_opt_out_list_moves_into_the_book_with_nothing_lost(tmp_path):
    from appliance.schema import MIGRATIONS

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    for name, fn in MIGRATIONS:
        if name.startswith("0017"):
            break
        conn.execute("BEGIN")
        fn(conn)
        conn.execute("INSERT INTO migrations VALUES (?, 0)", (name,))
        conn.execute("COMMIT")
    conn.executescript("""
        INSERT INTO opt_out VALUES ('+8613800000001', 10, 'sms', 'replied ''TD''');
        INSERT INTO opt_out VALUES ('+8613800000002', 20, 'manual', 'asked at the counter');
        INSERT INTO opt_out_log (at, number, action, source, reason) VALUES (5, '+8613800000003', 'add', 'sms', 'TD');
        INSERT INTO opt_out_log (at, number, action, source, reason) VALUES (6, '+8613800000003', 'remove', 'manual',
                                                                             'rejoined');
        INSERT INTO opt_out_log (at, number, action, source, reason) VALUES (10, '+8613800000001', 'add', 'sms',
                                                                             'replied ''TD''');
        INSERT INTO opt_out_log (at, number, action, source, reason) VALUES (20, '+8613800000002', 'add', 'manual',
                                                                             'asked at the counter');
    """)
    conn.close()
    db = Database(path)
    try:
        from appliance.clock import FakeClock

        outs = OptOuts(db, FakeClock())
        assert outs.numbers() == {"+8613800000001", "+8613800000002"}
        assert [(e["number"], e["action"], e["reason"]) for e in outs.log()] == [
            ("+8613800000003", "add", "TD"), ("+8613800000003", "remove", "rejoined"),
            ("+8613800000001", "add", "replied 'TD'"), ("+8613800000002", "add", "asked at the counter")]
        assert Consent(db, FakeClock()).state("+8613800000003") == "unknown"
    finally:
        db.close()


# --- the book ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,stored", [("1990-03-05", "1990-03-05"), ("1990/3/5", "1990-03-05"),
                                         ("3月5日", "03-05"), ("03-05", "03-05"), ("2月29日", "02-29"), ("", "")])
def test_birthdays_as_shops_write_them(text, stored):
    assert parse_birthday(text) == stored


@pytest.mark.parametrize("text", ["13月1日", "1990-02-30", "昨天"])
def test_a_birthday_that_is_not_a_date_is_refused(text):
    with pytest.raises(CustomerError):
        parse_birthday(text)


def test_an_import_previews_new_updated_unchanged_and_refused_then_applies_it(box, tmp_path):
    Book(box.db, box.clock).save("+8613800138000", by="cli", name="张伟", fields={"积分": "100"})
    Book(box.db, box.clock).save("+8613700137000", by="cli", name="李娜")
    path = tmp_path / "c.csv"
    path.write_bytes("手机号,姓名,生日,分组,积分\n13800138000,张伟,,VIP,120\n13700137000,李娜,,,\n"
                     "13900139000,王芳,3月5日,会员,80\n12345,错号,,,\n13900139000,重复,,,\n".encode("gbk"))
    importer = BookImport(box.db, box.clock)
    preview = importer.preview(path, attestation="会员登记表，柜台存档")
    assert preview.as_dict()["new"] == 1 and preview.as_dict()["updated"] == 1
    assert preview.as_dict()["unchanged"] == 1 and preview.as_dict()["refused"] == 2
    assert preview.columns == {"手机号": "number", "姓名": "name", "生日": "birthday", "分组": "tags", "积分": "field"}
    assert Book(box.db, box.clock).count() == 2  # a preview changes nothing
    importer.apply(path, by="user:1", attestation="会员登记表，柜台存档")
    wang = Book(box.db, box.clock).get("+8613900139000")
    assert (wang.name, wang.birthday, wang.tags, wang.fields, wang.consent) == ("王芳", "03-05", ["会员"],
                                                                                {"积分": "80"}, "given")
    assert wang.evidence.source == "import-attested" and "会员登记表" in wang.evidence.reference
    zhang = Book(box.db, box.clock).get("+8613800138000")
    assert zhang.fields == {"积分": "120"} and zhang.tags == ["VIP"] and zhang.consent == "unknown"


def test_the_export_is_formula_safe_and_keeps_numbers_as_they_are(box):
    Book(box.db, box.clock).save("+8613800138000", by="cli", name="=HYPERLINK(\"x\")", fields={"积分": "-5"})
    out = io.StringIO()
    export(Book(box.db, box.clock), out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[1][0] == "+8613800138000" and rows[1][1].startswith("'=") and rows[1][5] == "-5"


def test_a_group_send_reads_the_book_with_its_merge_fields(box, tmp_path):
    shop_with_customers(box)
    book = Book(box.db, box.clock)
    book.save(CONSENTED[0], by="cli", name="张伟", fields={"积分": "120"}, tags=["VIP"])
    book.save(CONSENTED[1], by="cli", name="王芳", fields={"积分": "80"}, tags=["VIP"])
    book.save(UNKNOWN[0], by="cli", tags=["VIP"])
    intake = intake_of(box, tmp_path)
    queued, preview = intake.queue_table(book.table(tag="VIP"), "{姓名}您好，您有{积分}积分", by="cli")
    assert queued.count == 2 and preview.refused_by_reason == {NO_CONSENT: 1}
    assert sorted(m.text for m in box.messages()) == [
        "张伟您好，您有120积分，回T退订" + SIGNATURE, "王芳您好，您有80积分，回T退订" + SIGNATURE]


def test_tags_and_search(box):
    book = Book(box.db, box.clock)
    for i, n in enumerate(CONSENTED):
        book.save(n, by="cli", name=f"顾客{i}")
    assert book.tag(CONSENTED[:2], "VIP", by="cli") == 2
    assert book.tags() == [("VIP", 2)]
    found, total = book.search("顾客1")
    assert total == 1 and found[0].number == CONSENTED[1]
    assert book.search(tag="VIP")[1] == 2
    with pytest.raises(CustomerNotFound):
        book.tag(["+8613999999999"], "VIP", by="cli")
    with pytest.raises(CustomerError):
        book.tag(CONSENTED, "two words", by="cli")


# --- recurring sends ----------------------------------------------------------------------------------


def test_birthday_greetings_go_on_the_day_at_the_hour_in_the_box_s_time(box, tmp_path):
    consent = Consent(box.db, box.clock)
    book = Book(box.db, box.clock)
    for n, name, birthday in ((CONSENTED[0], "张伟", "1990-03-05"), (CONSENTED[1], "王芳", "03-06"),
                              (CONSENTED[2], "李娜", "2月29日")):
        book.save(n, by="cli", name=name, birthday=birthday)
        consent.give(n, "paper", "表", by="cli")
    sends = RecurringSends(box.db, box.clock)
    sends.add("生日祝福", "birthday", "{姓名}生日快乐！本月到店享8折", at="09:30", by="cli")
    intake = intake_of(box, tmp_path)
    box.clock._now = datetime(2027, 3, 5, 9, 0).timestamp()  # local time: the day, before the hour
    assert sends.run_due(intake) == []
    box.clock._now = datetime(2027, 3, 5, 9, 30).timestamp()
    (run,) = sends.run_due(intake)
    assert run["outcome"] == "queued" and run["messages"] == 1
    assert [m.text for m in box.messages()] == ["张伟生日快乐！本月到店享8折，回T退订" + SIGNATURE]
    assert sends.run_due(intake) == []  # once a day, however often it is asked
    box.clock._now = datetime(2027, 2, 28, 10, 0).timestamp()  # 2027 has no 29 February: 李娜 on the 28th
    assert born_on(datetime(2027, 2, 28).date()) == ("02-28", "02-29")
    (run,) = sends.run_due(intake)
    assert run["messages"] == 1 and box.messages()[-1].recipient == CONSENTED[2]


def test_a_run_is_skipped_with_an_alert_when_credit_is_short_or_nobody_may_get_it(box, tmp_path):
    consent = Consent(box.db, box.clock)
    book = Book(box.db, box.clock)
    book.save(UNKNOWN[0], by="cli", tags=["会员"])
    sends = RecurringSends(box.db, box.clock)
    sends.add("会员日", "monthly", "会员日全场9折", at="10:00", by="cli", day=8, tag="会员")
    intake = intake_of(box, tmp_path)
    box.clock._now = datetime(2027, 1, 8, 10, 5).timestamp()
    (run,) = sends.run_due(intake)
    assert run["outcome"] == "skipped" and "no consent on record 1" in run["reason"]
    consent.give(UNKNOWN[0], "paper", "表", by="cli")
    box.ledger.adjust(-box.ledger.balance(), "spent")
    box.clock._now = datetime(2027, 2, 8, 10, 5).timestamp()
    (run,) = sends.run_due(intake)
    assert run["outcome"] == "skipped" and "credit short" in run["reason"]
    assert [a["name"] for a in sends.alerts()] == ["会员日"]
    assert box.messages() == []


def test_a_monthly_send_on_the_31st_runs_on_a_short_month_s_last_day(box):
    sends = RecurringSends(box.db, box.clock)
    rid = sends.add("月底", "monthly", "月底清仓", at="10:00", by="cli", day=31)
    r = next(x for x in sends.all() if x.id == rid)
    assert r.due_on(datetime(2027, 2, 28).date()) and not r.due_on(datetime(2027, 2, 27).date())
    assert r.due_on(datetime(2027, 1, 31).date()) and not r.due_on(datetime(2027, 1, 30).date())


# --- erasure and retention ----------------------------------------------------------------------------


def test_erasure_masks_the_customer_everywhere_and_the_record_still_verifies(box, tmp_path):
    shop_with_customers(box)
    number = CONSENTED[0]
    Book(box.db, box.clock).save(number, by="cli", name="张伟")
    path = write_list(tmp_path / "l.csv", [number])
    path.write_text(f"手机号,姓名\n{number[3:]},张伟\n", encoding="utf-8")
    intake_of(box, tmp_path).queue_file(path, "{姓名}您好", by="cli")
    msg = box.claim(modem="m1", sim="8986")
    box.record_segment(msg.id, 1, 7)
    box.mark_sent(msg.id)
    Inbox(box.db, box.clock).store(number, None, "我是张伟，谢谢", "0011AABB")
    done = Erasure(box.db, box.clock).erase(number, by="user:1")
    assert done["messages"] == 1 and done["inbound"] == 1 and not done["kept_refusal"]
    with pytest.raises(CustomerNotFound):
        Book(box.db, box.clock).get(number)
    m = box.messages()[0]
    assert m.recipient == "138****0001" and "张伟" not in m.text
    inbound = box.db.execute("SELECT * FROM inbound").fetchone()
    assert inbound["sender"] == "138****0001" and "张伟" not in inbound["text"] and "AABB" not in inbound["pdu"]
    dump = "\n".join(box.db.conn.iterdump())
    assert dump.count(number) == dump.count(f"'{number}'") and all(
        number in line for line in dump.splitlines() if number in line and line.startswith('INSERT INTO "audit"'))
    assert not [line for line in dump.splitlines() if number in line and not line.startswith('INSERT INTO "audit"')]
    verdict = box.audit.verify()
    assert verdict.ok and verdict.rows == 2  # the list's screening and the message: kept until retention ends
    # the message was with the network: its report still settles it, and the number is not kept aside
    assert report(box, 7, number, "delivered", 0, "received").state == "delivered"
    assert box.db.execute("SELECT count(*) FROM unmatched_report").fetchone()[0] == 0
    assert report(box, 8, number, "delivered", 0, "received") is None  # another reference: unmatched, as always
    assert box.audit.verify().ok


def test_the_box_s_own_notes_on_consent_are_said_in_the_reader_s_language(box):
    """A note the box writes on a consent event (an erasure, a reply) reads in Chinese on a Chinese page or
    terminal, and stays English where a machine or the record reads it."""
    from web.i18n import translator

    Book(box.db, box.clock).save(OPTED, by="cli", name="老王")
    OptOuts(box.db, box.clock).add(OPTED, "sms", "TD")
    Erasure(box.db, box.clock).erase(OPTED, by="cli")
    note = Consent(box.db, box.clock).history(OPTED)[0].note
    assert note == "customer erased from the book" and translator("zh_CN")(note) == "顾客已从名册删除"
    reasons = [e["reason"] for e in OptOuts(box.db, box.clock).log(OPTED)]
    assert reasons == ["TD", "customer erased from the book"]  # the customer's own word stays as they wrote it
    assert translator("zh_CN")(reasons[1]) == "顾客已从名册删除"


def test_erasing_someone_who_refused_keeps_the_refusal_and_nothing_else(box):
    Book(box.db, box.clock).save(OPTED, by="cli", name="老王", fields={"积分": "5"})
    OptOuts(box.db, box.clock).add(OPTED, "sms", "TD")
    assert Erasure(box.db, box.clock).erase(OPTED, by="cli")["kept_refusal"]
    kept = Book(box.db, box.clock).get(OPTED)
    assert (kept.name, kept.fields, kept.consent) == ("", {}, "refused")


def test_retention_prunes_old_bodies_and_inbound_texts(box, tmp_path):
    Inbox(box.db, box.clock).store(CONSENTED[0], None, "旧消息", "00")
    intake_of(box, tmp_path).queue_messages([(CONSENTED[0], "订单到店")], name="API", kind="transactional")
    msg = box.claim(modem="m1", sim="8986")
    box.record_segment(msg.id, 1, 7)
    box.mark_sent(msg.id)
    box.db.execute("UPDATE message SET state = 'delivered', finished_at = ?", (box.clock.time(),))
    box.clock.advance(100 * 86400)
    assert Erasure(box.db, box.clock).prune(180) == {"messages": 0, "inbound": 0}
    box.clock.advance(100 * 86400)
    assert Erasure(box.db, box.clock).prune(180) == {"messages": 1, "inbound": 1}
    assert box.messages()[0].text == "" and box.messages()[0].recipient == "138****0001"


def test_a_reply_that_is_a_consent_s_evidence_outlives_the_retention(box, tmp_path):
    intake = intake_of(box, tmp_path)
    asking = Asking(box.db, box.clock)
    asking.ask(intake, [UNKNOWN[0]], by="cli")
    iid = Inbox(box.db, box.clock).store(UNKNOWN[0], None, "Y", "0B")
    assert asking.reply(UNKNOWN[0], "Y", iid, intake.settings()) == "yes"
    Inbox(box.db, box.clock).store(UNKNOWN[1], None, "谢谢", "0C")
    box.clock.advance(400 * 86400)
    assert Erasure(box.db, box.clock).prune(180)["inbound"] == 1
    assert box.db.execute("SELECT text FROM inbound WHERE id = ?", (iid,)).fetchone()["text"] == "Y"


# --- the command line ---------------------------------------------------------------------------------


def test_customers_cli(tmp_path):
    from smsgenie.cli import cli
    from tests.conftest import make_box

    make_box(tmp_path)
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path)]
    path = tmp_path / "c.csv"
    path.write_text("手机号,姓名,标签\n13800138000,张伟,VIP\n12345,错号,\n", encoding="utf-8")
    out = runner.invoke(cli, [*base, "customers", "import", str(path), "--dry-run"]).output
    assert "Would import c.csv: 1 new" in out and "row 3: 12345" in out
    assert "Imported c.csv: 1 new" in runner.invoke(cli, [*base, "customers", "import", str(path)]).output
    listed = json.loads(runner.invoke(cli, [*base, "customers", "list", "--json"]).output)
    assert listed["customers"][0]["number"] == "138****8000" and listed["customers"][0]["consent"] == "unknown"
    out = runner.invoke(cli, [*base, "customers", "consent", "13800138000", "--reference", "表 12"]).output
    assert "Consent of 138****8000 recorded" in out
    shown = runner.invoke(cli, [*base, "customers", "show", "13800138000"]).output
    assert "consent: agreed - paper form 表 12" in shown
    bad = runner.invoke(cli, [*base, "customers", "show", "13900139000"])
    assert bad.exit_code == 1 and "no customer" in bad.output and "Traceback" not in bad.output
    out = runner.invoke(cli, [*base, "customers", "erase", "13800138000", "--yes"]).output
    assert "Erased 138****8000" in out


def test_a_keyword_gets_its_auto_reply_once_queued_and_never_twice(box, tmp_path):
    from appliance.replies import DAILY_PER_NUMBER, Replies

    ShopSettings(tmp_path / "data").set("auto_replies", "营业时间 = 每天8:00-22:00营业\n地址=人民路1号")
    answers = intake_of(box, tmp_path).settings()["auto_replies"]
    replies = Replies(box.db, box.clock)
    assert replies.owe(UNKNOWN[0], "今天开门吗", 1, answers) is None  # not a keyword: a person reads it
    assert replies.owe(UNKNOWN[0], " 营业 时间 ", 2, answers) == "营业时间"
    assert replies.send_owed(intake_of(box, tmp_path)) == 1
    assert replies.send_owed(intake_of(box, tmp_path)) == 0
    (reply,) = box.messages()
    assert reply.kind == "transactional" and reply.text == "每天8:00-22:00营业" + SIGNATURE
    for i in range(DAILY_PER_NUMBER):
        replies.owe(UNKNOWN[0], "地址", 10 + i, answers)
    assert replies.send_owed(intake_of(box, tmp_path)) == DAILY_PER_NUMBER - 1  # a few a day, not a chat loop


def test_a_skipped_run_is_an_alert_on_the_counter_panel(box):
    from appliance.ui.screens import Snapshot, alerts

    sends = RecurringSends(box.db, box.clock)
    rid = sends.add("会员日", "monthly", "会员日全场9折", at="10:00", by="cli", day=8)
    box.db.execute("INSERT INTO recurring_run (recurring_id, day, at, outcome, reason) VALUES (?, '2027-01-08', ?,"
                   " 'skipped', 'credit short')", (rid, box.clock.time()))
    shown = alerts(Snapshot(skipped_runs=tuple((a["id"], a["name"]) for a in sends.alerts())), "zh_CN")
    assert [(a.title, a.lines) for a in shown] == [("定期发送已跳过", ("会员日", "原因见网页"))]
    box.clock.advance(2 * 86400)
    assert sends.alerts() == []  # a day later it is history, on the recurring page


@pytest.mark.parametrize("text,final", [
    ("周六会员日", "周六会员日，回T退订【测试店】"),      # a comma between the text and the footer
    ("周六会员日！", "周六会员日！回T退订【测试店】"),    # none after punctuation
    ("{姓名}", "张伟，回T退订【测试店】"),              # after a merge field too
    ("周六会员日，退订回N", "周六会员日，退订回N【测试店】"),  # its own way out: no footer
])
def test_the_footer_reads_as_a_sentence(text, final):
    from appliance.template import Template

    template = Template(text, SIGNATURE, "回T退订")
    assert "".join(template.pieces_for(["姓名"])(["张伟"])) == final == template.render({"姓名": "张伟"})


def test_a_quick_yes_answers_a_question_not_yet_linked_to_its_text(box, tmp_path):
    """The daemon queues a sign-up's question, then notes its message id: a customer whose Y arrives in
    between (CI saw it under load) is still answered."""
    asking = Asking(box.db, box.clock)
    with box.db.atomic() as conn:
        asking.make(conn, UNKNOWN[0], "signup", days=7, by="sms")
    assert asking.reply(UNKNOWN[0], "Y", 5, intake_of(box, tmp_path).settings()) == "yes"
    assert Consent(box.db, box.clock).evidence(UNKNOWN[0]).source == "sms-signup"
