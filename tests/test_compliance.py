"""The service agreement's rules: forbidden words, opt-outs, the message record, confidentiality."""

from __future__ import annotations

import base64
import json
import os
import stat
import unicodedata
from collections import Counter
from datetime import date

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance import keywords, vendor
from appliance.audit import MIN_RETENTION_DAYS, safe_cell
from appliance.clock import SystemClock
from appliance.db import Database
from appliance.errors import KeywordListError, SettingsError
from appliance.forbidden import KeywordScreen
from appliance.inbox import Inbox
from appliance.keywords import KeywordStore
from appliance.optout import OptOuts, is_opt_out
from appliance.plan import plan_message
from appliance.settings import ShopSettings as Settings
from smsgenie.cli import cli
from tests.conftest import make_box, modem_statuses, report, running_daemon, wait_for

CN = "+8613800138000"


@pytest.fixture
def keys(tmp_path):
    key_path, pub_path = vendor.keygen(tmp_path / "vendor")
    return vendor.load_private_key(key_path), pub_path.read_text().strip()


# --- forbidden words -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["代开发票", "代开 发 票", "代开發票", "代开-发.票", "代开\u3000发票", "代开发*票"])
def test_evasions_of_a_chinese_word_are_caught(text):
    assert KeywordScreen([("发票", "vendor")]).find(text).word == "发票"


@pytest.mark.parametrize("text", ["FREE MONEY", "ｆｒｅｅ ｍｏｎｅｙ", "f r e e-m o n e y", "Free.Money!"])
def test_evasions_of_a_latin_word_are_caught(text):
    assert KeywordScreen([("free money", "local")]).find(text).word == "free money"


#: Characters that show nothing, or only change how the one before them looks: none may hide a word.
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u034f", "\u180e", "\u2063",
             "\ufe0f", "\ufe0e", "\U000e0101", "\u0301", "\u0308", "\u20dd", "\u3164", "\u115f", "\u202e",
             "\U000e0020"]


@pytest.mark.parametrize("text", ["代开发\u200b票", "代开发\u0301票", "代开发\ufe0f票", "代开\u2060发\u200d票",
                                  "代开发\u3164票", "代开\u202e发票"])
def test_invisible_characters_and_marks_do_not_hide_a_word(text):
    assert KeywordScreen([("发票", "vendor")]).find(text).word == "发票"


@pytest.mark.parametrize("text", ["frée money", "fre\u0301e mo\u0308ney", "ＦＲÉＥ ＭＯＮＥＹ"])
def test_accents_do_not_hide_a_latin_word(text):
    assert KeywordScreen([("free money", "local")]).find(text).word == "free money"


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["发票", "VIP专享", "free money", "刷单返现"]),
       st.lists(st.tuples(st.integers(0, 12), st.sampled_from(INVISIBLE)), max_size=8),
       st.text(alphabet="您好，欢迎光临 abc", max_size=8), st.text(alphabet="再见 xyz。", max_size=8))
def test_random_invisible_characters_never_hide_a_word(word, insertions, before, after):
    chars = list(word)
    for at, ch in sorted(insertions, reverse=True):
        chars.insert(min(at, len(chars)), ch)
    screen = KeywordScreen([(w, "vendor") for w in ("发票", "VIP专享", "free money", "刷单返现")])
    hit = screen.find(before + "".join(chars) + after)
    assert hit is not None and hit.word == word


def test_clean_text_passes_and_empty_screen_finds_nothing():
    screen = KeywordScreen([("发票", "vendor"), ("  ", "local")])
    assert screen.size == 1
    assert screen.find("您好，您的快递已到") is None
    assert KeywordScreen([]).find("发票") is None


def test_signed_keyword_list_round_trip_and_tampering(keys):
    private, line = keys
    public = vendor.parse_public_key(line)[0]
    signed = keywords.sign_list(private, ["发票", "赌博", "发票"], date(2026, 11, 25), 7)
    assert keywords.verify_list(signed, public) == keywords.VendorList(["发票", "赌博"], 7, "2026-11-25")
    trimmed = signed.replace("赌博\n", "")  # a shop removing a word it does not like
    with pytest.raises(KeywordListError, match="signature does not match"):
        keywords.verify_list(trimmed, public)
    with pytest.raises(KeywordListError, match="signature does not match"):
        keywords.verify_list(signed.replace("# version 7", "# version 9"), public)  # the version is signed too
    with pytest.raises(KeywordListError, match="no vendor signature"):
        keywords.verify_list(signed.split("# signature")[0], public)
    with pytest.raises(KeywordListError, match="not a signed keyword list"):
        keywords.verify_list("发票\n", public)


def test_a_list_of_the_first_format_counts_as_version_0(keys):
    private, line = keys
    body = "# smsgenie keywords v1\n# issued 2026-01-05\n发票\n"
    old = body + keywords.SIGNATURE_PREFIX + base64.b64encode(
        private.sign(keywords.DOMAIN + body.encode())).decode() + "\n"
    assert keywords.verify_list(old, vendor.parse_public_key(line)[0]) == keywords.VendorList(["发票"], 0, "2026-01-05")


def test_a_vendor_list_never_goes_back(q):
    store = KeywordStore(q.db, q.clock)
    assert store.vendor_list() is not None  # the test box has one (conftest.give_vendor_list): version 1
    assert store.replace_vendor(keywords.VendorList(["发票", "赌博", "套现"], 7, "2026-12-01"))
    assert not store.replace_vendor(keywords.VendorList(["发票"], 7, "2026-12-01"))  # this version already
    with pytest.raises(KeywordListError, match="version 5; the box has version 7 already"):
        store.replace_vendor(keywords.VendorList(["发票"], 5, "2026-11-01"))
    assert not store.replace_vendor(keywords.VendorList(["发票"], 5, "2026-11-01"), only_newer=True)
    assert sorted(k.word for k in store.all() if k.source == "vendor") == sorted(["套现", "发票", "赌博"])
    assert store.vendor_list() == keywords.VendorList([], 7, "2026-12-01")


def test_the_baseline_words_ship_with_the_package():
    version, words = keywords.baseline()
    assert version >= 1 and len(words) >= 50 and "代开发票" in words and "赌博" in words
    screen = KeywordScreen((w, "vendor") for w in words)
    for ordinary in ("张伟您好，您的订单已到店，请凭短信领取。", "会员日全场九折，欢迎光临【小王便利店】",
                     "您预约的洗牙服务在周日下午三点", "年货礼盒到店，送货上门请回复地址"):
        assert screen.find(ordinary) is None, ordinary  # a shop's everyday texts go


def test_keywords_cli_import_add_list(tmp_path, keys):
    private, line = keys
    config = tmp_path / "c.toml"
    config.write_text(f'data_dir = "{tmp_path / "box"}"\n[vendor]\npublic_key = "{line}"\n')
    Database.in_data_dir(tmp_path / "box").close()  # a new box: no vendor list yet
    words = tmp_path / "words.txt"
    words.write_text("# vendor list\n发票\n赌博\n", encoding="utf-8")
    runner = CliRunner()
    key = str(tmp_path / "vendor" / "vendor.key")
    none_yet = runner.invoke(cli, ["--config", str(config), "keywords", "list"]).output
    assert "No list from the vendor yet: marketing lists are refused" in none_yet
    unversioned = runner.invoke(cli, ["vendor", "sign-keywords", "--key", key, str(words), str(tmp_path / "x")])
    assert unversioned.exit_code == 1 and "--version" in unversioned.output
    signed = tmp_path / "keywords.signed"
    out = runner.invoke(cli, ["vendor", "sign-keywords", "--key", key, "--version", "3", str(words), str(signed)])
    assert "Signed 2 words" in out.output and "(version 3)" in out.output, out.output
    imported = runner.invoke(cli, ["--config", str(config), "keywords", "import", str(signed)]).output
    assert f"Imported the vendor's list version 3 of {date.today()}: 2 words." in imported, imported
    assert "already: nothing changed" in runner.invoke(cli, ["--config", str(config), "keywords", "import",
                                                             str(signed)]).output
    older = tmp_path / "older.signed"
    runner.invoke(cli, ["vendor", "sign-keywords", "--key", key, "--version", "2", str(words), str(older)])
    back = runner.invoke(cli, ["--config", str(config), "keywords", "import", str(older)])
    assert back.exit_code == 1 and "never goes back" in back.output
    assert "Added 1 word" in runner.invoke(cli, ["--config", str(config), "keywords", "add", "秒批", "--note",
                                                 "boss said"]).output
    listing = json.loads(runner.invoke(cli, ["--config", str(config), "keywords", "list", "--json"]).output)
    assert [(k["source"], k["word"]) for k in listing] == [("vendor", "发票"), ("vendor", "赌博"), ("local", "秒批")]
    assert f"The vendor's list: version 3, issued {date.today()}." in runner.invoke(
        cli, ["--config", str(config), "keywords", "list"]).output
    bad = runner.invoke(cli, ["--config", str(config), "keywords", "remove", "发票"])
    assert bad.exit_code == 1 and "vendor's list changes only by import" in bad.output
    signed.write_text(signed.read_text().replace("赌博", "赌"))
    tampered = runner.invoke(cli, ["--config", str(config), "keywords", "import", str(signed)])
    assert tampered.exit_code == 1 and "signature does not match" in tampered.output
    baseline = runner.invoke(cli, ["vendor", "sign-keywords", "--key", key, "--baseline", str(tmp_path / "b.txt")])
    assert baseline.exit_code == 0 and f"(version {keywords.baseline()[0]})" in baseline.output


def test_without_a_vendor_list_marketing_is_refused_and_transactional_goes(tmp_path, fake_clock):
    from appliance.config import Config, WebConfig
    from appliance.errors import NoVendorKeywords, SignatureMissing
    from appliance.intake import Intake

    db = Database.in_data_dir(tmp_path / "data")
    intake = Intake(db, fake_clock, Config(data_dir=str(tmp_path / "data"), service_code="YL08",
                                           web=WebConfig(listen="")))
    path = tmp_path / "l.csv"
    path.write_text("phone\n13800138000\n", encoding="utf-8")
    with pytest.raises(SignatureMissing, match="must name the shop"):  # no signature yet: it is asked first
        intake.queue_file(path, "会员日八折")
    Settings(tmp_path / "data").set("signature", "【小王】")
    with pytest.raises(NoVendorKeywords, match="no forbidden-word list from the vendor yet"):
        intake.queue_file(path, "会员日八折")
    with pytest.raises(NoVendorKeywords):
        intake.queue_messages([("13800138000", "会员日八折")], name="API")
    assert intake.queue_file(path, "您的订单已到店", kind="transactional")[0].count == 1
    assert intake.queue_messages([("13800138000", "取件码 1234")], name="API", kind="transactional").queued == 1
    db.close()


def test_the_daemon_imports_the_images_list_when_newer(tmp_path, keys, caplog, make_config):
    import dataclasses

    from appliance.config import VendorConfig
    from tests.conftest import running_daemon

    private, line = keys
    signed = tmp_path / "vendor-keywords.txt"
    signed.write_text(keywords.sign_list(private, ["发票", "套现"], date(2026, 12, 1), 4), encoding="utf-8")
    config = dataclasses.replace(make_config(), vendor=VendorConfig(public_key=line, keywords=str(signed)))
    caplog.set_level("INFO")
    with running_daemon(config):
        pass
    db = Database.in_data_dir(config.data_dir)
    assert KeywordStore(db, SystemClock()).vendor_list().version == 4
    db.close()
    assert "imported the vendor's keyword list version 4 (2 words)" in caplog.text
    signed.write_text(signed.read_text().replace("套现", "套"), encoding="utf-8")  # changed on the card
    with running_daemon(config):
        pass
    assert "was not imported: the keyword list's signature does not match" in caplog.text


def test_a_blocked_message_costs_nothing(tmp_path, q):
    KeywordStore(q.db, q.clock).add_local(["秒批"])
    path = tmp_path / "l.csv"
    path.write_text("手机,备注\n13800138000,贷款秒 批\n13900139000,正常\n", encoding="utf-8")
    config = tmp_path / "c.toml"
    config.write_text(f'data_dir = "{q.db.path.parent}"\nservice_code = "YL08"\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "send", str(path), "--template", "您好 {备注}",
                                      "--json"])
    preview = json.loads(result.output)
    assert preview["queued"] == 1 and preview["credits_needed"] == 1
    assert preview["refused_rows"] == [{"row": 2, "value": "13800138000", "reason": "blocked by a forbidden word",
                                        "detail": "contains '秒批' (shop list)"}]
    assert q.ledger.balance() == 1000  # nothing is charged until a message is claimed for sending


@pytest.mark.parametrize("text,word", [
    ("新开саsino，注册就送", "casino"),  # Cyrillic а
    ("ϲasino", "casino"),  # Greek lunate sigma, which NFKD alone makes a sigma
    ("ΒΟΝUS 88", "bonus"),  # Greek capitals
    ("ＣＡＳＩＮＯ", "casino"),  # full width I is I (as NFKD says), not the l it looks like
    ("Ꭵphone 低价", "iphone"),  # Cherokee
    ("𝐜𝐚𝐬𝐢𝐧𝐨", "casino"),  # mathematical bold, beyond the Basic Multilingual Plane
])
def test_look_alike_letters_of_other_scripts_are_caught(text, word):
    assert KeywordScreen([(word, "vendor")]).find(text).word == word


def test_a_dash_that_looks_like_a_letter_is_still_a_separator():
    screen = KeywordScreen([("发票", "vendor")])
    assert screen.find("代开发—票") and screen.find("代开发―票")  # em dash, horizontal bar (confusable with ー)


def test_normalising_twice_is_normalising_once():
    from appliance.forbidden import normalise

    everything = [chr(cp) for cp in (*range(0x80, 0xD800), *range(0xE000, 0x10000), *range(0x1D400, 0x1D800))]
    assert [c for c in everything if normalise(normalise(c)) != normalise(c)] == []


def _look_alikes() -> dict[str, list[str]]:
    """Latin letter -> the characters of other scripts the screen takes for it."""
    from appliance.forbidden import normalise

    out: dict[str, list[str]] = {}
    for cp in range(0x80, 0x10000):
        n = normalise(chr(cp))
        if len(n) == 1 and "a" <= n <= "z" and not unicodedata.normalize("NFKD", chr(cp)).isascii():
            out.setdefault(n, []).append(chr(cp))
    return out


LOOK_ALIKES = _look_alikes()


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_random_look_alikes_never_hide_a_word(data):
    word = data.draw(st.sampled_from(["casino", "bonus", "iphone", "viagra", "loan"]))
    table = LOOK_ALIKES
    disguised = "".join(data.draw(st.sampled_from([c, *table.get(c, [])])) for c in word)
    assert KeywordScreen([(word, "vendor")]).find(f"注册{disguised}送88元").word == word


# --- opt-outs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,yes", [
    ("TD", True), ("td", True), (" T D ", True), ("退订", True), ("T", True), ("STOP", True), ("Stop.", True),
    ("unsubscribe", True), ("ＴＤ", True), ("退订TD", True), ("TD 退订", True),
    ("谢谢", False), ("TD是什么", False), ("stopover", False), ("", False), (None, False),
])
def test_what_counts_as_an_opt_out(text, yes):
    assert is_opt_out(text) is yes


def test_manual_opt_outs_are_logged_with_reasons(q):
    outs = OptOuts(q.db, q.clock)
    assert outs.add(CN, "manual", "asked at the counter") is True
    assert outs.add(CN, "manual", "again") is False
    with pytest.raises(ValueError, match="say why"):
        outs.remove(CN, " ")
    assert outs.remove(CN, "signed up again") is True
    assert [(e["action"], e["reason"]) for e in outs.log(CN)] == [("add", "asked at the counter"),
                                                                  ("remove", "signed up again")]


def test_an_opt_out_after_queueing_skips_the_message_uncharged(q):
    ids = q.enqueue(None, [CN, "+8613900139000"], plan_message("hi"), "YL08")
    OptOuts(q.db, q.clock).add(CN, "sms", "replied 'TD'")
    m = q.claim()
    assert m.id == ids[1]
    skipped = q.get(ids[0])
    assert skipped.state == "failed" and "opted out" in skipped.error
    assert q.ledger.charged(ids[0]) == 0


def test_a_td_reply_puts_the_sender_on_the_list_and_later_sends_skip_them(sim, config, queue):
    with running_daemon(config):
        wait_for(lambda: modem_statuses(queue).get(sim.port, {}).get("state") == "registered", 10)
        sim.inject_sms("13800138000", " ＴＤ ")  # national format, full-width: still the same customer
        sim.inject_sms("+8613900139000", "谢谢，收到了")
        outs = OptOuts(queue.db, queue.clock)
        wait_for(lambda: outs.contains(CN), 10, message="opt-out recorded")
        ids = queue.enqueue(None, [CN, "+8613900139000"], plan_message("周六大促"), "YL08")
        wait_for(lambda: queue.get(ids[1]).state == "delivered", 10)
        assert queue.get(ids[0]).state == "failed"
    assert not outs.contains("+8613900139000")
    assert [a.recipient for a in sim.accepted] == ["+8613900139000"]
    assert outs.all()[0].source == "sms" and "ＴＤ" in outs.all()[0].reason


def test_optout_cli(tmp_path):
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path)]
    make_box(tmp_path)
    assert "138****8000 added to the opt-out list." in runner.invoke(
        cli, [*base, "optout", "add", "138 0013 8000", "--reason", "phone call"]).output
    listed = runner.invoke(cli, [*base, "optout", "list"]).output
    assert "138****8000" in listed and "phone call" in listed and "13800138000" not in listed
    assert json.loads(runner.invoke(cli, [*base, "optout", "list", "--json", "--full"]).output)[0]["number"] == CN
    bad = runner.invoke(cli, [*base, "optout", "add", "12345", "--reason", "x"])
    assert bad.exit_code == 1 and "not a valid phone number" in bad.output
    assert "removed from" in runner.invoke(cli, [*base, "optout", "remove", CN, "--reason", "rejoined"]).output


# --- the inbox --------------------------------------------------------------------------------------


def test_inbox_joins_parts_and_keeps_what_it_cannot_read(q):
    Inbox(q.db, q.clock).store(CN, "2026-11-25T10:00:00+08:00", "第二部分", "P2", concat=(7, 2, 2))
    Inbox(q.db, q.clock).store(CN, "2026-11-25T10:00:00+08:00", "第一部分", "P1", concat=(7, 1, 2))
    Inbox(q.db, q.clock).store("+8613900139000", None, None, "BINARY", problem="8-bit data, not text")
    Inbox(q.db, q.clock).store("ICBC", "2026-11-25T11:00:00+08:00", "半截", "Q1", concat=(9, 1, 3))
    items = Inbox(q.db, q.clock).messages()
    by_sender = {m["sender"]: m for m in items}
    assert by_sender[CN]["text"] == "第一部分第二部分" and by_sender[CN]["complete"]
    assert by_sender["+8613900139000"]["text"] is None and "8-bit" in by_sender["+8613900139000"]["problem"]
    assert by_sender["ICBC"]["parts_received"] == 1 and not by_sender["ICBC"]["complete"]
    assert Inbox(q.db, q.clock).complete_text(CN, 7, 2) == "第一部分第二部分"
    assert Inbox(q.db, q.clock).complete_text("ICBC", 9, 3) is None


def test_inbox_cli_masks_numbers(tmp_path):
    db = Database.in_data_dir(tmp_path)
    Inbox(db, SystemClock()).store(CN, None, "退订", "X1")
    db.close()
    runner = CliRunner()
    text = runner.invoke(cli, ["--data-dir", str(tmp_path), "inbox"]).output
    assert "138****8000" in text and "退订" in text
    assert json.loads(runner.invoke(cli, ["--data-dir", str(tmp_path), "inbox", "--json"]).output)[0]["text"] == "退订"


# --- the message record --------------------------------------------------------------------------------


def sent_messages(q, n=5):
    ids = q.enqueue(None, [f"+86138{i:08d}" for i in range(n)], plan_message("=SUM(A1) 您好"), "YL08")
    for mid in ids:
        q.claim()
        q.record_segment(mid, 1, mid)
        q.mark_sent(mid)
    return ids


def test_every_message_sent_is_recorded_with_its_fate(q):
    ids = sent_messages(q, 2)
    report(q, ids[0], "+8613800000000", "delivered", 0, "received by the phone")
    rows = list(q.audit.rows(0, 1e12))
    assert [(r["event"], r["message_id"]) for r in rows] == [("sent", ids[0]), ("sent", ids[1]),
                                                             ("delivered", ids[0])]
    assert rows[0]["content"] == "=SUM(A1) 您好" and rows[0]["service_code"] == "YL08"
    assert rows[0]["recipient"] == "+8613800000000"
    assert q.audit.verify().ok


@pytest.mark.parametrize("tamper,problem", [
    ("UPDATE audit SET content = 'nothing to see' WHERE id = 3", "row 3 was changed"),
    ("DELETE FROM audit WHERE id = 3", "rows 3 to 3 are missing"),
    ("DELETE FROM audit WHERE id = 5", "rows 5 to 5 are missing"),
    ("INSERT INTO audit (id, at, event, recipient, content, service_code, outcome, prev_hash, hash)"
     " SELECT 99, at, 'sent', recipient, 'forged', service_code, 'sent', hash, hash FROM audit WHERE id = 6",
     "rows 7 to 98 are missing"),
    ("UPDATE audit SET id = 100 WHERE id = 6", "rows 6 to 99 are missing"),
])
def test_verify_detects_edited_deleted_and_inserted_rows(q, tamper, problem):
    sent_messages(q, 6)
    assert q.audit.verify().ok and q.audit.verify().rows == 6
    q.db.execute(tamper)
    verdict = q.audit.verify()
    assert not verdict.ok and problem in verdict.problem


def test_a_row_inserted_in_the_middle_with_a_forged_hash_is_caught(q):
    sent_messages(q, 3)
    q.db.execute("UPDATE audit SET id = id + 100 WHERE id >= 2")  # make room, then slip a row in
    q.db.execute("UPDATE audit SET id = id - 99 WHERE id >= 100")
    q.db.execute("INSERT INTO audit (id, at, event, recipient, content, service_code, outcome, prev_hash, hash)"
                 " VALUES (2, 0, 'sent', '+8613800000009', 'forged', 'YL08', 'sent', 'x', 'y')")
    verdict = q.audit.verify()
    assert not verdict.ok and "row 2" in verdict.problem


def test_pruning_past_retention_keeps_the_chain_verifiable(q, fake_clock):
    sent_messages(q, 3)
    fake_clock.advance(200 * 86400)
    sent_messages(q, 2)
    with pytest.raises(ValueError, match="at least 180 days"):
        q.audit.prune(90)
    assert q.audit.prune(MIN_RETENTION_DAYS) == 3
    verdict = q.audit.verify()
    assert verdict.ok and verdict.rows == 2
    q.db.execute("UPDATE audit SET outcome = 'x' WHERE id = (SELECT MIN(id) FROM audit)")
    assert not q.audit.verify().ok


def test_audit_verify_says_where_the_record_was_cut(tmp_path, q):
    sent_messages(q, 3)
    config = tmp_path / "c.toml"
    config.write_text(f'data_dir = "{q.db.path.parent}"\nservice_code = "YL08"\n')
    runner = CliRunner()
    assert "The record is intact: 3 rows" in runner.invoke(cli, ["--config", str(config), "audit", "verify"]).output
    q.db.execute("DELETE FROM audit WHERE id = 2")
    broken = runner.invoke(cli, ["--config", str(config), "audit", "verify"])
    assert broken.exit_code == 1 and "tampered with: rows 2 to 2 are missing" in broken.output


@pytest.mark.parametrize("value,shown", [
    ("=1+1", "'=1+1"), ("@cmd", "'@cmd"), ("\t=x", "'\t=x"), ("\r=x", "'\r=x"), ("您好", "您好"), (None, ""),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"), ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
    ("+SUM(1)", "'+SUM(1)"), ("-", "'-"),
    # numbers a machine reads are left alone: a spreadsheet runs nothing in them
    ("+8613800138000", "+8613800138000"), ("+86 138 0013 8000", "+86 138 0013 8000"), ("-5", "-5"), ("-2.5", "-2.5"),
    (12, "12"),
])
def test_safe_cell(value, shown):
    assert safe_cell(value) == shown


# --- settings and confidentiality ------------------------------------------------------------------------


def test_settings_are_validated_and_written_atomically(tmp_path):
    s = Settings(tmp_path)
    assert s.get("audit_retention_days") == 180 and s.get("default_region") == "CN"
    s.set("signature", "【小王便利店】")
    s.set("audit_retention_days", "365")
    with pytest.raises(SettingsError, match="at least 180 days"):
        s.set("audit_retention_days", 30)
    with pytest.raises(SettingsError, match="not a region code"):
        s.set("default_region", "XX")
    with pytest.raises(SettingsError, match="no setting called"):
        s.set("colour", "red")
    s.close()
    assert not (tmp_path / "settings.json.tmp").exists()
    assert stat.S_IMODE(os.stat(tmp_path / "settings.json").st_mode) == 0o600
    again = Settings(tmp_path)
    assert again.all() == {"signature": "【小王便利店】", "default_region": "CN", "audit_retention_days": 365,
                           "quiet_hours": "21:00-08:00", "sim_caps": {}, "test_number": "", "low_credit_alert": 50,
                           "panel_language": "zh_CN", "session_idle_hours": 8,
                           "staff_may_steer": False, "max_list_rows": 2_000_000, "approval": "marketing",
                           "consent_gate": "required", "unsubscribe_footer": "回T退订",
                           "consent_question": "回复Y确认接收【店名】优惠信息，回T退订", "consent_days": 7,
                           "signup_word": "加入", "auto_replies": {}, "webhook_url": "", "webhook_secret": ""}
    again.close()
    (tmp_path / "settings.json").write_text("{broken")
    with pytest.raises(SettingsError, match="damaged"):
        Settings(tmp_path).all()


def test_settings_cli_and_signature_in_send(tmp_path):
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path)]
    make_box(tmp_path)
    assert "signature = '【小王】'" in runner.invoke(cli, [*base, "settings", "set", "signature", "【小王】"]).output
    path = tmp_path / "l.csv"
    path.write_text("phone\n13800138000\n")
    preview = json.loads(runner.invoke(cli, [*base, "send", str(path), "--text", "周六开业", "--dry-run",
                                             "--json"]).output)
    # marketing: the unsubscribe footer, then the signature (the rules for commercial SMS want both)
    assert preview["samples"][0]["text"] == "周六开业，回T退订【小王】"
    assert preview["queued"] == 0 and preview["dry_run"]
    own = json.loads(runner.invoke(cli, [*base, "send", str(path), "--text", "周六开业，退订回N", "--dry-run",
                                         "--json"]).output)
    assert own["samples"][0]["text"] == "周六开业，退订回N【小王】"  # a text that says how to leave gets no footer
    order = json.loads(runner.invoke(cli, [*base, "send", str(path), "--text", "您的订单已到店", "--transactional",
                                           "--dry-run", "--json"]).output)
    assert order["samples"][0]["text"] == "您的订单已到店【小王】"  # transactional: the signature, no footer
    bad = runner.invoke(cli, [*base, "settings", "set", "audit_retention_days", "7"])
    assert bad.exit_code == 1 and "at least 180 days" in bad.output
    ok = runner.invoke(cli, [*base, "settings", "set", "sim_caps.modem1.per_hour", "150"])
    assert ok.exit_code == 0 and "sim_caps.modem1.per_hour = 150" in ok.output
    assert "sim_caps = {'modem1': {'per_hour': 150}}" in runner.invoke(cli, [*base, "settings", "show"]).output
    back = runner.invoke(cli, [*base, "settings", "set", "sim_caps.modem1.per_hour", ""])
    assert "sim_caps.modem1.per_hour = '(default)'" in back.output
    nobody = runner.invoke(cli, [*base, "settings", "set", "sim_caps.modem7.per_hour", "5"])
    assert nobody.exit_code == 1 and "no modem called 'modem7'" in nobody.output


def test_numbers_are_masked_in_the_daemon_log(sim, config, queue, caplog):
    caplog.set_level("INFO")
    ids = queue.enqueue(None, [CN], plan_message("hi"), "YL08")
    with running_daemon(config):
        wait_for(lambda: queue.get(ids[0]).state == "delivered", 10)
    assert "138****8000" in caplog.text
    assert "13800138000" not in caplog.text


def test_send_dry_run_json_preview(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("手机,姓名\n13800138000,张伟\n13800138000,张伟\n13300133000,王芳\n19200192000,李娜\n",
                    encoding="utf-8")
    make_box(tmp_path)
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "send", str(path), "--template",
                                      "{姓名}，您的订单已到", "--dry-run", "--json"])
    preview = json.loads(result.output)
    assert preview["accepted"] == 3 and preview["queued"] == 0
    assert preview["messages_by_carrier"] == {"China Mobile": 1, "China Telecom": 1, "China Broadnet": 1}
    assert preview["refused_by_reason"] == {"duplicate": 1}
    assert preview["refused_rows"][0]["value"] == "138****8000"
    assert preview["balance"] == 0 and preview["enough_credit"] is False
    assert Counter(s["encoding"] for s in preview["samples"]) == {"ucs2": 3}


def test_the_daemon_prunes_the_record_daily_and_logs_its_head(sim, config, queue, fake_clock, caplog):
    caplog.set_level("INFO")
    ids = queue.enqueue(None, [CN], plan_message("hi"), "YL08")
    with running_daemon(config, clock=fake_clock):
        wait_for(lambda: queue.get(ids[0]).state == "delivered", 10)
        fake_clock.advance(200 * 86400)  # past retention, and past the next daily run
        wait_for(lambda: "2 rows past retention pruned" in caplog.text, 10, message="daily pruning")
    assert "message record: 0 rows, head" in caplog.text
    assert queue.audit.verify().ok


def test_a_failure_reason_is_kept_as_text_the_page_can_translate(q):
    """A message's error column keeps a Text as JSON (appliance/text.py stored): read back it is the same
    English str, the record has the English, and the page can say it in Chinese."""
    from appliance.sendlists import SendLists
    from appliance.text import Text

    list_id = q.create_list("l", "YL08", created_by="cli")
    (mid,) = q.enqueue(list_id, ["+8613800138000"], plan_message("会员日"), "YL08")
    lists = SendLists(q.db, q.clock)
    lists.cancel(list_id, "boss")
    lists.settle()
    error = q.get(mid).error
    assert isinstance(error, Text) and error == "the list was cancelled by boss; not sent, not charged"
    assert q.db.execute("SELECT error FROM message").fetchone()[0].startswith('{"say":')
    assert list(q.audit.rows(0, 1e12))[0]["outcome"] == error  # the record keeps plain English
    assert q.audit.verify().ok
