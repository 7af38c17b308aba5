"""Lists streamed in bounded memory (issue 14): the same answers as before, row for row, and fast paths that
agree with the authorities they stand in for (phonenumbers, the whole-text screen, the codec's split)."""

from __future__ import annotations

import os
import random
from importlib import resources

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import carrier as pn_carrier

from appliance import phones
from appliance.errors import AlreadyQueued, MessageTextError, SendListError
from appliance.forbidden import KeywordScreen
from appliance.intake import Intake
from appliance.loading import LOAD_BATCH, LOADING_STALE
from appliance.plan import cost, plan_message
from appliance.preview import prepare
from appliance.sendlist import open_table
from appliance.sendlists import SendLists
from appliance.template import Template
from tests import oracle_preview
from tests.test_sendlist import CHINESE_FORMATS, SCREEN, shop_rows, write_csv, write_xlsx

TEMPLATES = ["{姓名}您好，您有{积分}积分。", "您好", "{姓名}{积分}", "发{姓名}票", "Hi {姓名}, €{积分} [VIP]"]


def both(path, template, opted_out=frozenset({"+8613912345678"})):
    """(the streamed preview with the rows it accepted, the oracle's preview) of one list."""
    accepted = []
    with open_table(path) as table:
        new = prepare(table, Template(template, "【小王】"), region="CN", screen=SCREEN, opted_out=set(opted_out),
                      balance=10_000, accept=accepted.append)
    with open_table(path) as table:
        old = oracle_preview.prepare(table, Template(template, "【小王】"), region="CN", screen=SCREEN,
                                     opted_out=set(opted_out), balance=10_000)
    return new, accepted, old


def assert_same(new, accepted, old):
    assert [(a.row, a.recipient, a.text, a.encoding, a.segments) for a in accepted] == \
        [(a.row, a.recipient, a.plan.text, a.plan.encoding, a.plan.segments) for a in old.accepted]
    assert [(r.row, r.value, r.reason, r.detail) for r in new.refused_rows] == \
        [(r.row, r.value, r.reason, r.detail) for r in old.refused]
    assert new.accepted == len(old.accepted) and new.refused == len(old.refused)
    assert new.refused_by_reason == old.refused_by_reason
    for name in ("messages_by_carrier", "credits_by_carrier", "by_encoding"):
        assert dict(getattr(new, name)) == dict(getattr(old, name)), name
    assert (new.credits_needed, new.forced_ucs2_by, new.ucs2_extra_credits, new.samples) == \
        (old.credits_needed, old.forced_ucs2_by, old.ucs2_extra_credits, old.samples)
    assert new.as_dict() == old.as_dict()


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("kind", ["gbk", "utf-8-sig", "xlsx"])
def test_the_streamed_preview_equals_the_old_one_row_for_row(tmp_path, kind, template):
    rows, _ = shop_rows(300, seed=11)
    rows += [[f, "格式", "1"] for f in CHINESE_FORMATS]
    rows += [["13700137000", "长" * 80, "2"], ["13700137002", "", "0"]]
    if kind != "xlsx":  # (a worksheet cannot hold a control character)
        rows.append(["13700137001", "\x07响铃", "3"])
    path = write_xlsx(tmp_path / "l.xlsx", rows) if kind == "xlsx" else write_csv(tmp_path / "l.csv", rows, kind)
    assert_same(*both(path, template))


@pytest.mark.parametrize("name", ["customers.csv", "orders.csv"])
def test_the_demo_lists_come_out_as_before(name):
    with resources.as_file(resources.files("smsgenie.demo") / name) as path:
        assert_same(*both(path, "{姓名}您好，本周六会员日全场九折。回复TD退订"
                          if name == "customers.csv" else "您好，订单已到店。"))


# --- the fast paths against their authorities -----------------------------------------------------------


def test_the_carrier_of_a_million_chinese_mobiles_is_what_phonenumbers_says():
    """Every number segment's carrier from the fast path, and random whole numbers (SMSGENIE_NUMBERS of them,
    a million in CI), against phonenumbers' own answer for that very number."""
    rng = random.Random(14)
    count = int(os.environ.get("SMSGENIE_NUMBERS", "100000"))
    numbers = [f"1{rng.randrange(3, 10)}{rng.randrange(10**9):09d}" for _ in range(count)]
    numbers += [f"{segment}{rng.randrange(10**7):07d}" for segment in range(1300, 2000)]
    differ = []
    for national in numbers:
        parsed = phonenumbers.PhoneNumber(country_code=86, national_number=int(national))
        valid = phonenumbers.is_valid_number(parsed) and phonenumbers.number_type(parsed) in phones.MOBILE_TYPES
        try:
            ours = phones.normalise(national)
        except phones.NumberProblem:
            ours = None
        if not valid:
            if ours is not None:
                differ.append((national, "valid to us"))
            continue
        name = pn_carrier.name_for_number(parsed, "en")
        if ours != phones.Number("+86" + national, phones.CARRIERS.get(name, name)):
            differ.append((national, ours))
    assert not differ[:10]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list("发票VIP专享 ,.ＡＶ發e\u0301ｶﾞ\u3099か한\u1161a€👍🏽\u302a")),
                        max_size=6), min_size=1, max_size=6))
def test_screening_a_text_by_its_pieces_finds_what_screening_it_whole_finds(pieces):
    screen = KeywordScreen([("发票", "vendor"), ("VIP专享", "local"), ("é", "local"), ("ガ", "local"),
                            ("가", "local"), ("a€", "local")])
    assert screen.find_pieces(pieces) == screen.find("".join(pieces))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(list("aé€[中👍\n ") + ["x" * 40, "中" * 30]), min_size=1, max_size=40).map("".join))
def test_pricing_without_splitting_agrees_with_the_split(text):
    try:
        plan = plan_message(text)
    except MessageTextError:
        with pytest.raises(MessageTextError):
            cost(text)
        return
    assert cost(text) == (plan.encoding, plan.segments, plan.forced_ucs2_by)


# --- queueing while reading -------------------------------------------------------------------------------


def big_list(tmp_path, n, *, bad_at=None):
    rows = [[f"138{i:08d}", f"顾客{i}", "1"] for i in range(n)]
    path = write_csv(tmp_path / "big.csv", rows, "utf-8")
    if bad_at is not None:  # a row far down that the CSV reader refuses (a cell past its field limit)
        with open(path, "a", encoding="utf-8") as f:
            f.write('13900139000,"' + "x" * 200_000 + '"\n')
    return path


def test_a_list_bigger_than_a_batch_loads_held_then_sends_whole(tmp_path, queue, config):
    intake = Intake(queue.db, queue.clock, config)
    n = LOAD_BATCH * 2 + 7
    queued, preview = intake.queue_file(big_list(tmp_path, n), "{姓名}您好")
    assert queued.count == preview.accepted == n
    lists = SendLists(queue.db, queue.clock)
    assert lists.get(queued.list_id)["state"] == "active"
    held = queue.db.execute("SELECT COUNT(*) FROM message WHERE held = 1").fetchone()[0]
    assert held == n  # held while it loaded: no modem took half a list
    lists.settle(budget=60)
    assert queue.db.execute("SELECT COUNT(*) FROM message WHERE held = 0 AND state = 'queued'").fetchone()[0] == n
    assert queue.claim() is not None


def test_a_list_that_breaks_part_way_queues_nothing(tmp_path, queue, config):
    intake = Intake(queue.db, queue.clock, config)
    with pytest.raises(SendListError, match="not a well-formed CSV"):
        intake.queue_file(big_list(tmp_path, LOAD_BATCH * 2, bad_at=True), "{姓名}您好")
    lists = SendLists(queue.db, queue.clock)
    assert [entry["state"] for entry in lists.recent()] == ["discarded"]
    assert queue.claim() is None  # none of its messages may go
    lists.settle(budget=60)
    assert lists.recent() == []
    assert queue.db.execute("SELECT COUNT(*) FROM message").fetchone()[0] == 0


def test_a_load_whose_process_died_is_discarded_later(tmp_path, fake_clock, queue, config, monkeypatch):
    from appliance import loading

    intake = Intake(queue.db, queue.clock, config)
    monkeypatch.setattr(loading.ListLoader, "abandon", lambda self: None)  # as if the power went
    with pytest.raises(SendListError):
        intake.queue_file(big_list(tmp_path, LOAD_BATCH + 10, bad_at=True), "{姓名}您好")
    lists = SendLists(queue.db, queue.clock)
    lists.settle(budget=5)
    assert [entry["state"] for entry in lists.recent()] == ["loading"]  # it may still be loading
    queue.clock.advance(LOADING_STALE + 1)
    lists.settle(budget=60)
    assert lists.recent() == [] and queue.db.execute("SELECT COUNT(*) FROM message").fetchone()[0] == 0


def test_a_second_confirm_while_the_first_still_loads_queues_nothing(tmp_path, queue, config, monkeypatch):
    from appliance import loading

    intake = Intake(queue.db, queue.clock, config)
    path = big_list(tmp_path, LOAD_BATCH + 10)
    seen = []
    real_write = loading.ListLoader._write

    def write_then_confirm_again(self, *, final):
        real_write(self, final=final)
        if not final and not seen:  # the first batch is in: the same preview is confirmed again
            with pytest.raises(AlreadyQueued) as again:
                intake.queue_file(path, "{姓名}您好", key="upload:t")
            seen.append(again.value.list_id)

    monkeypatch.setattr(loading.ListLoader, "_write", write_then_confirm_again)
    queued, _ = intake.queue_file(path, "{姓名}您好", key="upload:t")
    assert seen == [queued.list_id]
    assert queue.db.execute("SELECT COUNT(*) FROM message").fetchone()[0] == LOAD_BATCH + 10
