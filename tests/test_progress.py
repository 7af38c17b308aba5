"""The sending pace, the time left and today's figures: one answer, the same on the page, the panel and status."""

from __future__ import annotations

import json
from datetime import datetime

from click.testing import CliRunner

from appliance.clock import FakeClock
from appliance.config import Config, WebConfig
from appliance.db import Database
from appliance.plan import plan_message
from appliance.progress import progress
from appliance.sendqueue import SendQueue
from appliance.status import status
from appliance.ui.panel import Panel
from smsgenie.cli import cli
from tests.conftest import make_box
from web import create_app
from web.dashboard import snapshot

TEN = datetime(2026, 11, 25, 10, 0).timestamp()
LONG = "您好，" + "会员日全场九折，" * 12  # UCS-2, two parts


def sent_box(tmp_path):
    """Eight messages queued (six of two parts, two of one); three sent one minute apart, one with the modem."""
    clock = FakeClock(TEN)
    config = Config(data_dir=str(tmp_path / "data"), service_code="YL08", web=WebConfig(listen=""))
    make_box(config.data_dir)
    q = SendQueue(Database.in_data_dir(config.data_dir), clock)
    q.ledger.adjust(1000, "credit")
    list_id = q.create_list("会员日", "YL08")
    ids = q.enqueue(list_id, [f"+86138001380{i:02d}" for i in range(6)], plan_message(LONG), "YL08")
    ids += q.enqueue(list_id, ["+8613900139000", "+8613900139001"], plan_message("短"), "YL08")
    for _ in range(3):
        clock.advance(60)
        m = q.claim()
        for seq in range(1, m.segments + 1):
            q.record_segment(m.id, seq, seq, modem="modem1")
        q.mark_sent(m.id)
    q.claim()  # the next one is with the modem: still waiting, not sent
    return config, clock, q


def test_the_figures_say_their_units(tmp_path):
    config, clock, q = sent_box(tmp_path)
    p = progress(q.db, clock.time())
    # 6 parts in 3 messages since the first part, 2 minutes ago
    assert (p.parts_per_minute, p.messages_per_minute) == (3.0, 1.5)
    assert (p.waiting_messages, p.waiting_parts) == (5, 3 * 2 + 2)
    assert p.minutes_left == round(8 / 3.0, 1)
    assert (p.sent_today_messages, p.sent_today_parts, p.failed_today) == (3, 6, 0)
    assert p.active_list["done"] == 3 and p.active_list["total"] == 8 and p.active_list["parts_left"] == 8
    clock.advance(3600)  # an hour of nothing: no pace, no promise of a time left
    later = progress(q.db, clock.time())
    assert later.parts_per_minute == 0 and later.minutes_left is None and later.sent_today_parts == 6


def test_page_panel_and_status_show_the_same_numbers(tmp_path):
    config, clock, q = sent_box(tmp_path)
    expected = progress(q.db, clock.time()).as_dict()
    assert status(config, q)["progress"] == expected
    app = create_app(config, clock=clock, testing=True)
    with app.test_request_context("/"):
        assert snapshot()["progress"] == expected
    panel = Panel(config, None, clock=clock)
    panel.open()
    try:
        snap = panel.read_snapshot(panel._slow_inputs(clock.monotonic()))
    finally:
        panel.close()
    assert snap.sent_today == expected["sent_today_messages"]
    assert snap.failed_today == expected["failed_today"]
    assert snap.active_list["eta_minutes"] == expected["active_list"]["minutes_left"]
    cli_json = json.loads(CliRunner().invoke(cli, ["--data-dir", config.data_dir, "status", "--json"]).output)
    for key in ("waiting_messages", "waiting_parts"):  # the command line is on the real clock (another day)
        assert cli_json["progress"][key] == expected[key]


def test_the_dashboard_shows_messages_and_parts_apart(tmp_path):
    config, clock, q = sent_box(tmp_path)
    app = create_app(config, clock=clock, testing=True)
    with app.test_request_context("/"):
        from flask import render_template

        html = render_template("dashboard.html", s=snapshot())
    assert 'data-field="progress.sent_today_messages">3<' in html
    assert 'data-field="progress.sent_today_parts">6<' in html


def test_the_dashboard_list_rows_follow_the_events(tmp_path):
    config, clock, q = sent_box(tmp_path)
    app = create_app(config, clock=clock, testing=True)
    with app.test_request_context("/"):
        from flask import render_template

        data = snapshot()
        html = render_template("dashboard.html", s=data)
    row = data["lists_by_id"]["1"]
    assert (row["waiting"], row["counts"]["sent"], row["progress"]) == (5, 3, "active")
    assert 'data-field="lists_by_id.1.waiting">5<' in html and 'data-field="lists_by_id.1.progress_text"' in html
