"""Carriers as the network sees them: a ported number (携号转网) is set by hand or learned (issue 15.8)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from appliance.carriers import NumberCarriers
from appliance.clock import SystemClock
from appliance.errors import SettingsError
from appliance.intake import Intake
from smsgenie.cli import cli
from tests.conftest import give_vendor_list, make_box, modem_statuses, pool_config, running_daemon, wait_for
from tests.test_policy import no_quiet_hours, open_queue

PORTED = "+8613800138000"  # a China Mobile prefix


def test_the_shop_sets_a_numbers_carrier_and_lists_route_by_it(q, tmp_path):
    book = NumberCarriers(q.db, q.clock)
    assert book.set(PORTED, "联通", "the customer said so") == "China Unicom"
    with pytest.raises(SettingsError, match="not a carrier the box knows"):
        book.set(PORTED, "Vodafone")
    from appliance.config import Config, WebConfig

    intake = Intake(q.db, q.clock, Config(data_dir=str(q.db.path.parent), service_code="YL08",
                                          web=WebConfig(listen="")))
    path = tmp_path / "l.csv"
    path.write_text("phone\n13800138000\n13800138001\n", encoding="utf-8")
    queued, preview = intake.queue_file(path, "会员日八折")
    assert dict(preview.messages_by_carrier) == {"China Unicom": 1, "China Mobile": 1}
    carriers = {r["recipient"]: r["carrier"] for r in q.db.execute("SELECT recipient, carrier FROM message")}
    assert carriers == {PORTED: "China Unicom", "+8613800138001": "China Mobile"}
    assert book.clear(PORTED) and not book.clear(PORTED)


def test_the_carrier_commands(tmp_path):
    make_box(tmp_path)
    run = lambda *a: CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "carrier", *a])  # noqa: E731
    assert "138****8000 is a China Telecom number now." in run("set", "138 0013 8000", "电信").output
    listed = run("list").output
    assert "138****8000  China Telecom" in listed and "set by the shop" in listed
    assert "+8613800138000" in run("list", "--full").output
    assert "routed by its prefix again" in run("clear", "13800138000").output
    again = run("clear", "13800138000")
    assert again.exit_code == 1 and "has no carrier of its own" in again.output
    bad = run("set", "12345", "移动")
    assert bad.exit_code == 1 and "is not a valid phone number" in bad.output


def test_a_number_its_carrier_does_not_know_is_tried_on_another_and_learned(make_sims, tmp_path):
    mobile_sim, unicom_sim = make_sims(2)
    config = pool_config(tmp_path, [mobile_sim, unicom_sim], carriers=["China Mobile", "China Unicom"])
    q = open_queue(config, SystemClock())
    no_quiet_hours(config)
    give_vendor_list(q.db)
    mobile_sim.fail_next(28)  # "unknown subscriber": the number left China Mobile
    with running_daemon(config):
        wait_for(lambda: all(s.get("state") == "registered" for s in modem_statuses(q).values())
                 and len(modem_statuses(q)) == 2, 10)
        answer = Intake(q.db, q.clock, config).queue_messages([("13800138000", "您的订单已到店")], name="订单",
                                                               kind="transactional")
        mid = answer.results[0]["id"]
        wait_for(lambda: q.get(mid).state == "delivered", 20, message="delivered through the other carrier")
        wait_for(lambda: NumberCarriers(q.db, q.clock).all().get(PORTED) == "China Unicom", 20,
                 message="the carrier learned")
    assert [a.recipient for a in unicom_sim.accepted] == [PORTED] and mobile_sim.accepted == []
    assert NumberCarriers(q.db, q.clock).rows()[0]["source"] == "learned"
    assert q.ledger.balance() == 100_000 - 1  # charged once: the refused try was refunded
    later = Intake(q.db, q.clock, config).queue_messages([("13800138000", "取件码 1234")], name="订单",
                                                          kind="transactional")
    assert q.get(later.results[0]["id"]).carrier == "China Unicom"  # routed by what was learned
