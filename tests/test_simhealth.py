"""A SIM its carrier barred or suspended is held before it fails a list or burns credit (issue 15.8)."""

from __future__ import annotations

from click.testing import CliRunner

from appliance.plan import plan_message
from appliance.simhealth import REPORT_WAIT, SILENT_RUN, BarringWatch, SimHolds, silent_run
from appliance.ui import screens
from appliance.ui.screens import Snapshot
from smsgenie.cli import cli
from tests.conftest import running_daemon, wait_for

pytest_plugins = ["tests.test_web"]


def test_a_run_of_refusals_for_different_customers_is_the_sim_not_the_numbers():
    watch = BarringWatch(run=3)
    assert watch.refused("+8613800000001", "the network rejected the message") is None
    assert watch.refused("+8613800000001", "the network rejected the message") is None  # one number: its problem
    assert watch.refused("+8613800000002", "x") is None
    watch.went()  # a message went: the SIM works
    assert watch.refused("+8613800000003", "x") is None and watch.refused("+8613800000004", "x") is None
    why = watch.refused("+8613800000005", "the network refused the request")
    assert "refused 3 messages in a row" in why and "the network refused the request" in why


def _sent(q, label, n, at, reported=False, start=0):
    for i in range(n):
        (mid,) = q.enqueue(None, [f"+86138{start + i:08d}"], plan_message("会员日"), "YL08")
        q.db.execute("UPDATE message SET state = 'sent', modem = ?, sent_at = ? WHERE id = ?", (label, at, mid))
        q.db.execute("INSERT INTO segment (message_id, seq, reference, submitted_at, status, reported_at)"
                     " VALUES (?, 1, ?, ?, ?, ?)", (mid, mid % 256, at, "delivered" if reported else None,
                                                    at + 60 if reported else None))


def test_messages_that_go_and_never_get_a_report_are_a_silent_drop(q, fake_clock):
    now = fake_clock.time()
    _sent(q, "m1", SILENT_RUN, now - 2 * REPORT_WAIT)
    assert silent_run(q.db.conn, "m1", now) is None  # a SIM that never had reports: nothing to judge by
    _sent(q, "m1", 3, now - 5 * REPORT_WAIT, reported=True, start=100)
    why = silent_run(q.db.conn, "m1", now)
    assert why is not None and f"none of the last {SILENT_RUN} messages" in why
    assert silent_run(q.db.conn, "m1", now - 1.5 * REPORT_WAIT) is None  # too soon to say
    _sent(q, "m1", 1, now - 2 * REPORT_WAIT + 1, reported=True, start=200)
    assert silent_run(q.db.conn, "m1", now) is None  # one report came: the carrier delivers


def test_a_barred_sim_is_held_with_an_alert_and_resumed_by_a_person(sim, config, queue, tmp_path):
    ids = queue.enqueue(None, [f"+86138{i:08d}" for i in range(8)], plan_message("周六会员日八折"), "YL08")
    balance = queue.ledger.balance()
    sim.fail_next(21, count=5)  # the carrier refuses everything now
    with running_daemon(config):
        wait_for(lambda: SimHolds(queue.db, queue.clock).current(config.modem.label), 20, message="the SIM held")
        held = SimHolds(queue.db, queue.clock).current(config.modem.label)
        assert "refused 5 messages in a row" in held["why"]
        assert [queue.get(i).state for i in ids].count("failed") == 4  # the fifth waits, with the rest
        assert queue.ledger.balance() == balance  # refused parts cost nothing
        import time
        time.sleep(0.5)
        assert sim.accepted == []  # nothing more goes through the held SIM
        configured = tmp_path / "c.toml"
        configured.write_text(f'data_dir = "{config.data_dir}"\nservice_code = "YL08"\n[[modem]]\n'
                              f'port = "{config.modem.port}"\nlabel = "{config.modem.label}"\n')
        listed = CliRunner().invoke(cli, ["--config", str(configured), "sim", "list"])
        assert f"{config.modem.label}: held since" in listed.output
        resumed = CliRunner().invoke(cli, ["--config", str(configured), "sim", "resume", config.modem.label])
        assert resumed.exit_code == 0, resumed.output
        wait_for(lambda: len(sim.accepted) == 4, 20, message="the rest sent once resumed")
    again = CliRunner().invoke(cli, ["--config", str(configured), "sim", "resume", config.modem.label])
    assert again.exit_code == 1 and "is not held" in again.output


def test_the_panel_raises_the_alert():
    alert = screens.alerts(Snapshot(modems=(screens.ModemLine(held=True),), balance=100), "zh_CN")[0]
    assert alert.key == "sim-held" and alert.title == "SIM卡被停用?"
    assert alert.lines == ("已停止发送", "请联系运营商后恢复")




def test_the_page_shows_a_held_sim_and_an_admin_resumes_it(app, admin, box):
    from tests.test_web import post

    with app.app_context():
        from web.state import config
        label = config().modem.label
    SimHolds(box.db, box.clock).hold(label, BarringWatch(run=1).refused("+8613800000001", "x"))
    page = admin.get("/").get_data(as_text=True)
    assert "This SIM is held" in page and "resume this SIM" in page
    assert post(admin, f"/sims/{label}/resume", {}, form_page="/").status_code == 302
    assert SimHolds(box.db, box.clock).current(label) is None
