"""Sending policy: caps and pacing per SIM, quiet hours, schedules, the modem pool, hung modems.

Caps and quiet hours run on a FakeClock: hours pass in moments, and what
was sent is checked from the send log's (simulated) timestamps.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta

import pytest
from gpiozero.pins.mock import MockFactory

from appliance import config as configmod
from appliance.clock import FakeClock, SystemClock
from appliance.config import ModemConfig
from appliance.db import Database
from appliance.errors import ConfigError, SettingsError
from appliance.plan import plan_message
from appliance.policy import CARRIER_DEFAULTS, caps_for, parse_quiet_hours, quiet_until
from appliance.sendqueue import TRANSACTIONAL, SendQueue
from appliance.settings import ShopSettings as Settings
from hw.power import GPIOPowerKey, GPIOPowerSwitch, PowerSwitchError, SimulatedPowerSwitch
from tests.conftest import make_box, modem_statuses, pool_config, running_daemon, wait_for

MOBILE = [f"+86138{i:08d}" for i in range(100)]   # China Mobile
UNICOM = [f"+86130{i:08d}" for i in range(100)]   # China Unicom


def open_queue(config, clock):
    db = Database.in_data_dir(config.data_dir)
    q = SendQueue(db, clock)
    q.ledger.adjust(100_000, "credit for the policy tests")
    return q


def sends(q, modem=None):
    sql = "SELECT at, recipient, modem FROM send_log" + (" WHERE modem = ?" if modem else "") + " ORDER BY at"
    return [tuple(r) for r in q.db.execute(sql, (modem,) if modem else ())]


def local(y, mo, d, h, mi=0):
    return datetime(y, mo, d, h, mi).timestamp()


# --- caps and pacing -----------------------------------------------------------------------------------


def no_quiet_hours(config):
    s = Settings(config.data_dir)
    s.set("quiet_hours", "")
    s.close()


def test_caps_hold_exactly_over_simulated_time(make_sims, tmp_path, caplog):
    caplog.set_level("INFO")
    (sim,) = make_sims(1)
    clock = FakeClock(local(2026, 11, 25, 9, 30))
    config = pool_config(tmp_path, [sim], per_hour=5, per_day=8)
    q = open_queue(config, clock)
    no_quiet_hours(config)
    q.enqueue(None, MOBILE[:12], plan_message("周六大促"), "YL08")
    with running_daemon(config, clock=clock) as daemon:
        wait_for(lambda: len(sends(q)) == 12, 60, message="all twelve, over two days")
        assert daemon.workers[0].label == "m1"
    times = [t for t, _, _ in sends(q)]
    for t in times:  # no rolling hour ever holds more than 5
        assert sum(1 for u in times if t - 3600 < u <= t) <= 5
    assert times[5] >= times[0] + 3600  # the sixth waited for the first to age out of the hour
    per_day = Counter(datetime.fromtimestamp(t).date() for t in times)
    assert list(per_day.values()) == [8, 4]  # the daily cap pushed the last four to the next day
    assert "m1: sending waits (hourly cap of 5 reached) until 10:30" in caplog.text
    assert "m1: sending waits (daily cap of 8 reached) until 00:00" in caplog.text
    assert sorted(m.recipient for m in q.messages() if m.state in ("sent", "delivered")) == sorted(MOBILE[:12])


def test_counters_survive_a_restart(make_sims, tmp_path):
    (sim,) = make_sims(1)
    clock = FakeClock(local(2026, 11, 25, 10))
    config = pool_config(tmp_path, [sim], per_hour=3)
    q = open_queue(config, clock)
    no_quiet_hours(config)
    q.enqueue(None, MOBILE[:3], plan_message("hi"), "YL08")
    with running_daemon(config, clock=clock):
        wait_for(lambda: len(sends(q)) == 3, 10)
    q.enqueue(None, MOBILE[3:5], plan_message("hi"), "YL08")
    stopped_at = clock.time()
    with running_daemon(config, clock=clock):  # a new daemon: the hour's count comes from the database
        wait_for(lambda: len(sends(q)) == 5, 30)
    assert sends(q)[3][0] >= sends(q)[0][0] + 3600 > stopped_at


def test_minimum_gap_between_messages(make_sims, tmp_path):
    (sim,) = make_sims(1)
    clock = FakeClock(local(2026, 11, 25, 10))
    config = pool_config(tmp_path, [sim], min_gap_seconds=30.0, jitter_seconds=10.0)
    q = open_queue(config, clock)
    no_quiet_hours(config)
    q.enqueue(None, MOBILE[:5], plan_message("hi"), "YL08")
    with running_daemon(config, clock=clock):
        wait_for(lambda: len(sends(q)) == 5, 20)
    times = [t for t, _, _ in sends(q)]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(g >= 30 for g in gaps), gaps
    assert len({round(g) for g in gaps}) > 1  # jittered, not a fixed beat


def test_multi_part_messages_count_every_part(make_sims, tmp_path):
    (sim,) = make_sims(1)
    clock = FakeClock(local(2026, 11, 25, 10))
    config = pool_config(tmp_path, [sim], per_hour=5)
    q = open_queue(config, clock)
    no_quiet_hours(config)
    q.enqueue(None, MOBILE[:3], plan_message("long text " * 20), "YL08")  # 2 parts each
    with running_daemon(config, clock=clock):
        wait_for(lambda: len(sends(q)) == 6, 30)
    times = [t for t, _, _ in sends(q)]
    assert times[4] >= times[0] + 3600  # 2 + 2 fit the hour; the third message's 2 parts do not


def test_carrier_defaults_and_overrides():
    caps = caps_for(ModemConfig(carrier="China Mobile", per_hour=150, min_gap_seconds=0))
    assert caps.per_hour == 150 and caps.per_day == CARRIER_DEFAULTS["China Mobile"].per_day
    assert caps.min_gap_seconds == 0
    assert caps_for(ModemConfig()).per_hour == 200
    # the shop admin's setting for the SIM has the last word
    shop = caps_for(ModemConfig(carrier="China Mobile", per_hour=150), {"per_hour": 120, "per_day": 0})
    assert (shop.per_hour, shop.per_day, shop.per_minute) == (120, 0, 10)


def test_sim_caps_setting_is_checked(tmp_path):
    s = Settings(tmp_path)
    s.set_caps("m1", {"per_hour": "150", "min_gap_seconds": "4.5", "per_day": ""})
    assert s.get("sim_caps") == {"m1": {"per_hour": 150, "min_gap_seconds": 4.5}}  # empty: back to default
    for caps, message in (({"per_hour": "lots"}, "m1 per_hour: 'lots' is not a whole number"),
                          ({"per_hour": "-1"}, "out of range"),
                          ({"per_hour": 2.5}, "not a whole number"),
                          ({"min_gap_seconds": "soon"}, "not a number of seconds"),
                          ({"per_week": "9"}, "'per_week' is not a cap")):
        with pytest.raises(SettingsError, match=message):
            s.set_caps("m1", caps)
    assert s.get("sim_caps") == {"m1": {"per_hour": 150, "min_gap_seconds": 4.5}}  # a refused change keeps the old
    s.set_caps("m1", {})
    assert s.get("sim_caps") == {}
    s.close()


class HeldClock(FakeClock):
    """A FakeClock that stops at ``limit`` until the test moves it: simulated time cannot run past
    the moment the test means to act in, however fast the waiting threads spin."""

    limit: float | None = None

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now = self._now + seconds if self.limit is None else min(self._now + seconds, self.limit)


def test_the_daemon_picks_up_changed_caps_without_a_restart(make_sims, tmp_path, caplog):
    caplog.set_level("INFO")
    (sim,) = make_sims(1)
    start = local(2026, 11, 25, 10)
    clock = HeldClock(start)
    clock.limit = start + 1800  # the hour's first half: the cap holds, nothing ages out
    config = pool_config(tmp_path, [sim], per_hour=5)
    q = open_queue(config, clock)
    no_quiet_hours(config)
    s = Settings(config.data_dir)
    s.set_caps("m1", {"per_hour": 2})  # tighter than the config file's 5
    q.enqueue(None, MOBILE[:4], plan_message("hi"), "YL08")
    with running_daemon(config, clock=clock):
        # the second's bookkeeping may land just after the worker logs the cap (it counts it in flight)
        wait_for(lambda: "hourly cap of 2 reached" in caplog.text and len(sends(q)) == 2, 20)
        wait_for(lambda: clock.time() == clock.limit, 20)
        assert len(sends(q)) == 2  # half an hour on, still held
        s.set_caps("m1", {"per_hour": 4})  # the admin raises it ...
        clock.limit = start + 3000
        wait_for(lambda: len(sends(q)) == 4, 20)  # ... and the waiting two go within the same hour
    s.close()
    times = [t for t, _, _ in sends(q)]
    assert times[3] < times[0] + 3600
    assert "m1: caps now" in caplog.text


# --- quiet hours and schedules ------------------------------------------------------------------------------


def test_quiet_hours_hold_marketing_and_let_transactional_through(make_sims, tmp_path, caplog):
    caplog.set_level("INFO")
    (sim,) = make_sims(1)
    clock = FakeClock(local(2026, 11, 25, 22, 0))
    config = pool_config(tmp_path, [sim])
    q = open_queue(config, clock)
    marketing = q.enqueue(q.create_list("promo", "YL08"), MOBILE[:2], plan_message("大促"), "YL08")
    ready = q.enqueue(q.create_list("orders", "YL08", kind=TRANSACTIONAL), MOBILE[2:4],
                      plan_message("您的订单已到店"), "YL08")
    with running_daemon(config, clock=clock):
        wait_for(lambda: all(q.get(i).state == "delivered" for i in marketing + ready), 30)
    first_marketing = min(t for t, r, _ in sends(q) if r in MOBILE[:2])
    last_transactional = max(t for t, r, _ in sends(q) if r in MOBILE[2:4])
    assert last_transactional < local(2026, 11, 25, 22, 5)  # right away, at 22:00
    assert first_marketing >= local(2026, 11, 26, 8, 0)  # after the quiet hours
    assert "m1: sending waits (quiet hours: marketing lists wait) until 08:00" in caplog.text


def test_quiet_hours_are_a_setting(tmp_path):
    s = Settings(tmp_path)
    s.set("quiet_hours", "22:30-07:15")
    assert s.get("quiet_hours") == "22:30-07:15"
    with pytest.raises(SettingsError, match="should look like 21:00-08:00"):
        s.set("quiet_hours", "late")
    s.set("quiet_hours", "")  # none
    s.close()
    assert parse_quiet_hours("") is None
    assert quiet_until(local(2026, 11, 25, 12), "21:00-08:00") is None
    assert quiet_until(local(2026, 11, 25, 23), "21:00-08:00") == local(2026, 11, 26, 8)
    assert quiet_until(local(2026, 11, 26, 7, 59), "21:00-08:00") == local(2026, 11, 26, 8)
    assert quiet_until(local(2026, 11, 25, 13), "12:00-14:00") == local(2026, 11, 25, 14)


def test_a_scheduled_list_starts_at_its_time(make_sims, tmp_path):
    (sim,) = make_sims(1)
    clock = FakeClock(local(2026, 11, 25, 9, 0))
    config = pool_config(tmp_path, [sim])
    q = open_queue(config, clock)
    no_quiet_hours(config)
    start = local(2026, 11, 25, 11, 0)
    ids = q.enqueue(q.create_list("later", "YL08", start_at=start), MOBILE[:2], plan_message("午市特价"), "YL08")
    with running_daemon(config, clock=clock):
        wait_for(lambda: all(q.get(i).state == "delivered" for i in ids), 20)
    assert min(t for t, _, _ in sends(q)) >= start


# --- the pool ------------------------------------------------------------------------------------------------


def test_a_message_goes_to_its_carriers_sim_when_that_one_is_free(make_sims, tmp_path):
    mobile_sim, unicom_sim = make_sims(2)
    config = pool_config(tmp_path, [mobile_sim, unicom_sim], carriers=["China Mobile", "China Unicom"])
    q = open_queue(config, SystemClock())
    with running_daemon(config):
        wait_for(lambda: all(s.get("state") == "registered" for s in modem_statuses(q).values())
                 and len(modem_statuses(q)) == 2, 10)
        for number in [UNICOM[0], MOBILE[0], UNICOM[1], UNICOM[2], MOBILE[1]]:
            (mid,) = q.enqueue(None, [number], plan_message("hi"), "YL08")
            wait_for(lambda mid=mid: q.get(mid).state == "delivered", 10)
    assert sorted(a.recipient for a in mobile_sim.accepted) == MOBILE[:2]
    assert sorted(a.recipient for a in unicom_sim.accepted) == UNICOM[:3]
    assert {r: m for _, r, m in sends(q)}[UNICOM[0]] == "m2"


def test_a_dead_carrier_sim_leaves_its_messages_to_the_others(make_sims, tmp_path):
    mobile_sim, unicom_sim = make_sims(2)
    unicom_sim.set_sim(False)  # the Unicom SIM is out
    config = pool_config(tmp_path, [mobile_sim, unicom_sim], carriers=["China Mobile", "China Unicom"])
    q = open_queue(config, SystemClock())
    ids = q.enqueue(None, UNICOM[:4] + MOBILE[:2], plan_message("hi"), "YL08")
    with running_daemon(config):
        wait_for(lambda: all(q.get(i).state == "delivered" for i in ids), 15)
    assert len(mobile_sim.accepted) == 6 and unicom_sim.accepted == []


def test_status_lists_every_modem(make_sims, tmp_path):
    from click.testing import CliRunner

    from smsgenie.cli import cli

    sims = make_sims(2)
    config = pool_config(tmp_path, sims, carriers=["China Mobile", "China Telecom"])
    q = open_queue(config, SystemClock())
    config_file = tmp_path / "pool.toml"
    config_file.write_text(configmod.dump(config))
    with running_daemon(config):
        wait_for(lambda: len(modem_statuses(q)) == 2 and all(s.get("state") == "registered"
                                                              for s in modem_statuses(q).values()), 10)
        data = json.loads(CliRunner().invoke(cli, ["--config", str(config_file), "status", "--json"]).output)
    assert [(m["label"], m["sim_carrier"], m["state"]) for m in data["modems"]] == [
        ("m1", "China Mobile", "registered"), ("m2", "China Telecom", "registered")]
    assert data["modem"] == data["modems"][0]


def test_killing_one_modem_mid_send_moves_the_rest_to_the_others(make_sims, tmp_path):
    sims = make_sims(3, send_latency=0.01)
    config = pool_config(tmp_path, sims)
    q = open_queue(config, SystemClock())
    ids = q.enqueue(None, MOBILE[:60], plan_message("大促"), "YL08")
    with running_daemon(config):
        wait_for(lambda: len(sims[1].accepted) >= 5, 15, message="the second modem sending")
        sims[1].unplug()  # gone for good, mid-send
        # Reports for what the lost modem had sent stay in it: those messages stay 'sent'.
        def settled():
            via_lost = {r for _, r, m in sends(q) if m == "m2"}
            return all(q.get(i).state in ("delivered", "uncertain")
                       or (q.get(i).state == "sent" and q.get(i).recipient in via_lost) for i in ids)
        wait_for(settled, 30, message="the queue settles on the other two")
    states = Counter(q.get(i).state for i in ids)
    assert sum(states.values()) == 60 and states["uncertain"] <= 1
    assert states["sent"] <= len(sims[1].accepted)
    accepted = Counter(a.recipient for s in sims for a in s.accepted)
    assert max(accepted.values()) == 1  # nothing went out twice
    delivered = {q.get(i).recipient for i in ids if q.get(i).state == "delivered"}
    assert delivered <= set(accepted)
    assert len(sims[0].accepted) + len(sims[2].accepted) >= 55


# --- hung modems --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cured_by,steps", [
    ("cfun", ["re-sync", "soft reset"]),
    ("power", ["re-sync", "soft reset", "power cycle"]),
])
def test_a_hung_modem_goes_through_the_recovery_steps_in_order(make_sims, tmp_path, cured_by, steps):
    (sim,) = make_sims(1)
    clock = FakeClock()
    config = pool_config(tmp_path, [sim], command_timeout=0.3)
    q = open_queue(config, clock)
    switch = SimulatedPowerSwitch(sim)
    with running_daemon(config, clock=clock, power_switches={"m1": switch}) as daemon:
        wait_for(lambda: modem_statuses(q).get(sim.port, {}).get("state") == "registered", 10)
        sim.hang(cured_by=cured_by)
        ids = q.enqueue(None, MOBILE[:3], plan_message("hi"), "YL08")
        wait_for(lambda: all(q.get(i).state == "delivered" for i in ids), 60, message="recovered and sent")
        assert daemon.workers[0].recovery_steps == steps
    assert switch.cycles == (1 if cured_by == "power" else 0)
    assert max(Counter(a.recipient for a in sim.accepted).values()) == 1


def test_a_modem_nothing_revives_is_reported_dead_and_the_pool_carries_on(make_sims, tmp_path):
    hung, healthy = make_sims(2)
    clock = FakeClock()
    config = pool_config(tmp_path, [hung, healthy], command_timeout=0.3)
    q = open_queue(config, clock)
    with running_daemon(config, clock=clock) as daemon:
        wait_for(lambda: len(modem_statuses(q)) == 2, 10)
        hung.hang(cured_by=None)
        ids = q.enqueue(None, MOBILE[:6], plan_message("hi"), "YL08")
        wait_for(lambda: modem_statuses(q).get(hung.port, {}).get("state") == "dead", 60, message="reported dead")
        assert "no power switch configured" in modem_statuses(q)[hung.port]["detail"]
        wait_for(lambda: all(q.get(i).state in ("delivered", "uncertain") for i in ids), 30)
        assert daemon.workers[0].recovery_steps[:3] == ["re-sync", "soft reset", "dead"]
    assert Counter(q.get(i).state for i in ids)["delivered"] >= 5


def test_gpio_power_switch_cycles_the_pin():
    factory = MockFactory()
    switch = GPIOPowerSwitch(26, pin_factory=factory)
    waited = []
    switch.cycle(3.0, waited.append)
    assert waited == [3.0]
    assert [state for _, state in factory.pin(26).states][-3:] == [True, False, True]
    switch.close()
    low = GPIOPowerSwitch(19, active_high=False, pin_factory=factory)
    low.off()
    assert factory.pin(19).state is True  # active low: "off" drives the pin high
    low.close()


def test_gpio_power_key_holds_long_to_switch_off_and_short_to_switch_on():
    factory = MockFactory()
    key = GPIOPowerKey(6, pin_factory=factory)
    pin = factory.pin(6)
    seen = []

    def wait(seconds):
        seen.append((seconds, pin.state))
    key.cycle(3.0, wait)
    # held 3 s (a running SIM7600 turns off after 2.5 s), released for the off time, held 1 s (on)
    assert seen == [(GPIOPowerKey.OFF_HOLD, True), (3.0, False), (GPIOPowerKey.ON_HOLD, True)]
    assert pin.state is False
    with pytest.raises(PowerSwitchError, match="can only cycle"):
        key.off()
    key.close()


def test_a_modem_has_a_power_switch_or_a_power_key_not_both(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[modem]\nport = "/dev/x"\npower_gpio = 26\npower_key_gpio = 6\n')
    with pytest.raises(ConfigError, match="cannot both be set"):
        configmod.load(path, explicit=True)


def test_send_cli_schedules_and_marks_transactional(tmp_path):
    from click.testing import CliRunner

    from smsgenie.cli import cli

    path = tmp_path / "l.csv"
    path.write_text("phone\n13800138000\n")
    make_box(tmp_path / "d")
    runner = CliRunner()
    day = date.today() + timedelta(days=2)
    start = local(day.year, day.month, day.day, 9, 0)
    out = runner.invoke(cli, ["--data-dir", str(tmp_path / "d"), "send", str(path), "--text", "订单已到店",
                              "--transactional", "--at", f"{day:%Y-%m-%d} 09:00", "--json"]).output
    data = json.loads(out)
    assert data["kind"] == "transactional" and data["start_at"] == start
    q = SendQueue(Database.in_data_dir(tmp_path / "d"), SystemClock())
    (m,) = q.messages()
    assert (m.kind, m.next_attempt_at, m.carrier) == ("transactional", start, "China Mobile")
    past = runner.invoke(cli, ["--data-dir", str(tmp_path / "d"), "send", str(path), "--text", "订单已到店",
                               "--at", "2020-01-01 09:00"])
    assert past.exit_code == 1 and "the start time has already passed" in past.output
    assert len(q.messages()) == 1
    human = runner.invoke(cli, ["--data-dir", str(tmp_path / "d"), "send", str(path), "--text", "大促"]).output
    assert "it waits during the quiet hours (21:00-08:00)" in human


def test_per_minute_and_distinct_recipient_caps(make_sims, tmp_path):
    (sim,) = make_sims(1)
    clock = FakeClock(local(2026, 11, 25, 10))
    config = pool_config(tmp_path, [sim], per_minute=2, distinct_per_day=3)
    q = open_queue(config, clock)
    no_quiet_hours(config)
    q.enqueue(None, MOBILE[:5], plan_message("hi"), "YL08")
    with running_daemon(config, clock=clock):
        wait_for(lambda: len(sends(q)) == 5, 60)
    times = [t for t, _, _ in sends(q)]
    for t in times:
        assert sum(1 for u in times if t - 60 < u <= t) <= 2
    per_day = Counter(datetime.fromtimestamp(t).date() for t in times)
    assert list(per_day.values()) == [3, 2]  # three people today, the other two tomorrow
