"""The clock check: a Pi without a battery clock boots with an old time; sending waits for the right one."""

from __future__ import annotations

from click.testing import CliRunner

from appliance import timecheck
from appliance.clock import FakeClock
from appliance.db import Database
from appliance.timecheck import SLACK, ClockCheck
from smsgenie.cli import cli
from tests.conftest import running_daemon, wait_for
from tests.test_daemon import enqueue


def test_a_clock_behind_the_mark_is_caught_and_the_mark_only_moves_forward(tmp_path):
    clock = FakeClock(1_790_000_000.0)
    db = Database.in_data_dir(tmp_path)
    check = ClockCheck(db, clock)
    assert check.behind() == 0  # a new box: no mark yet
    clock.advance(3600)
    assert check.behind() == 0
    later = ClockCheck(db, FakeClock(1_790_000_000.0 + 3600 - SLACK + 1))  # a small step back: NTP's business
    assert later.behind() == 0
    booted = ClockCheck(db, FakeClock(1_790_000_000.0))  # a reboot that restored an hour-old time
    assert booted.behind() == 3600
    db.close()


def test_the_mark_of_an_older_box_is_its_newest_send(tmp_path):
    db = Database.in_data_dir(tmp_path)
    with db.atomic() as conn:
        conn.execute("INSERT INTO send_log (modem, at, recipient) VALUES ('m1', 1790086400.0, '+8613800138000')")
    assert ClockCheck(db, FakeClock(1_790_000_000.0)).behind() == 86400
    db.close()


def test_reset_trusts_the_clock_again_even_for_a_running_check(tmp_path):
    db = Database.in_data_dir(tmp_path)
    ahead = ClockCheck(db, FakeClock(1_900_000_000.0))  # a clock that once ran years ahead
    ahead.behind()
    running = ClockCheck(db, FakeClock(1_790_000_000.0))
    assert running.behind() > 0
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "clock", "reset"])
    assert result.exit_code == 0 and "Sending no longer waits for the clock" in result.output
    timecheck.reset(db, FakeClock(1_790_000_000.0))
    assert running.behind() == 0
    assert ClockCheck(db, FakeClock(1_790_000_000.0)).behind() == 0  # and after a restart
    db.close()


def test_sending_waits_until_the_clock_catches_up_with_the_record(config, queue, fake_clock, caplog):
    caplog.set_level("INFO")
    mark = fake_clock.time() + 2 * 3600  # the box last recorded two hours "later" than its clock now says
    with queue.db.atomic() as conn:
        conn.execute("INSERT INTO kv (key, value) VALUES (?, ?)", (timecheck.KEY, repr(mark)))
    ids = enqueue(queue, ["+8613800138000", "+8613900139000"])
    with running_daemon(config, clock=fake_clock):
        wait_for(lambda: all(queue.get(i).state == "delivered" for i in ids), 30, message="sent once the time is right")
    sent = [r[0] for r in queue.db.execute("SELECT at FROM send_log")]
    assert len(sent) == 2 and min(sent) >= mark - SLACK
    assert "sending waits (the clock is 120 min behind the last time this box recorded" in caplog.text
