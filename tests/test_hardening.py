"""The box under double clicks, faults and a hostile LAN (issue 13): each promise, tested."""

from __future__ import annotations

import os
import re
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance import intake as intake_module
from appliance.accounts import Accounts
from appliance.intake import Intake
from appliance.sendlists import SendLists
from tests.conftest import give_vendor_list, trusting, wait_for
from tests.test_web import PASSWORD, post, token_of, upload

pytest_plugins = ["tests.test_web"]


def login(app, username="boss"):
    c = app.test_client()
    c.get("/lang/en")
    assert post(c, "/login", {"username": username, "password": PASSWORD}).status_code == 302
    return c


# --- 1. exactly once ------------------------------------------------------------------------------------


def test_two_confirms_of_one_preview_queue_the_list_once(app, admin, box, monkeypatch):
    """A double click, a resubmitted form, two tabs: the list goes into the queue once."""
    box.ledger.adjust(10, "credit")
    r = upload(admin, "l.csv", "phone\n13800138000\n13900139000\n".encode(), "周六开业")
    html = r.get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    other = login(app)
    other_csrf = token_of(other.get("/send").get_data(as_text=True))
    real = intake_module.prepare

    def read_slowly(*args, **kwargs):
        time.sleep(0.3)  # the second click comes while the first is still reading the list
        return real(*args, **kwargs)

    monkeypatch.setattr(intake_module, "prepare", read_slowly)
    form = {"token": token, "name": "l.csv", "text": "周六开业", "kind": "marketing", "start_at": ""}
    answers = []
    tabs = [threading.Thread(target=lambda c=c, t=t: answers.append(c.post("/send/confirm",
                                                                            data={"csrf_token": t, **form})))
            for c, t in ((admin, token_of(html)), (other, other_csrf))]
    for t in tabs:
        t.start()
    for t in tabs:
        t.join(timeout=30)
    lists = SendLists(box.db, box.clock).recent()
    assert len(lists) == 1 and lists[0]["total"] == 2
    assert len(box.messages()) == 2
    codes = sorted(a.status_code for a in answers)
    assert codes == [302, 409]
    again = next(a for a in answers if a.status_code == 409).get_data(as_text=True)
    assert "already sent" in again and f'href="/history/{lists[0]["id"]}"' in again
    # the same form sent once more later (the browser's "resubmit"): the same answer, still one list
    late = admin.post("/send/confirm", data={"csrf_token": token_of(html), **form})
    assert late.status_code == 409 and "already sent" in late.get_data(as_text=True)
    assert len(SendLists(box.db, box.clock).recent()) == 1


def test_the_api_replays_an_idempotency_key_with_its_first_answer(client, box):
    token = Accounts(box.db, box.clock).new_token("POS")
    other = Accounts(box.db, box.clock).new_token("Booking")
    body = {"messages": [{"to": "13800138000", "text": "您的订单已到店"}]}

    def send(tok, key, json=body):
        return client.post("/api/v1/messages", json=json,
                           headers={"Authorization": f"Bearer {tok}", "Idempotency-Key": key})

    first = send(token, "order-1001")
    replay = send(token, "order-1001")
    assert first.status_code == replay.status_code == 202
    assert first.get_json()["messages"] == replay.get_json()["messages"]
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert len(box.messages()) == 1
    assert send(token, "order-1002").status_code == 202 and len(box.messages()) == 2
    assert send(other, "order-1001").status_code == 202 and len(box.messages()) == 3  # keys are per token
    changed = send(token, "order-1001", {"to": "13900139000", "text": "另一条"})
    assert changed.status_code == 422 and "Idempotency-Key" in changed.get_json()["error"]
    assert len(box.messages()) == 3


def test_concurrent_api_calls_with_one_key_queue_once(app, box):
    token = Accounts(box.db, box.clock).new_token("POS")
    answers = []

    def call():
        c = app.test_client()
        answers.append(c.post("/api/v1/messages", json={"to": "13800138000", "text": "取件码 8842"},
                              headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k-7"}))

    calls = [threading.Thread(target=call) for _ in range(4)]
    for t in calls:
        t.start()
    for t in calls:
        t.join(timeout=30)
    assert [a.status_code for a in answers] == [202] * 4
    assert len({a.get_json()["messages"][0]["id"] for a in answers}) == 1
    assert len(box.messages()) == 1


def test_keys_are_remembered_for_a_week(tmp_path):
    from appliance.clock import FakeClock
    from appliance.config import Config
    from appliance.db import Database

    clock = FakeClock()
    config = Config(data_dir=str(tmp_path), service_code="YL08")
    db = Database.in_data_dir(tmp_path)
    give_vendor_list(db, clock)
    intake = Intake(db, clock, config)
    first = intake.queue_messages([("13800138000", "hi")], name="API", key="api:1:a")
    assert intake.queue_messages([("13800138000", "hi")], name="API", key="api:1:a").replayed
    clock.advance(6 * 86400)
    assert intake.forget_keys() == 0
    clock.advance(2 * 86400)
    assert intake.forget_keys() == 1
    again = intake.queue_messages([("13800138000", "hi")], name="API", key="api:1:a")
    assert not again.replayed and again.list_id != first.list_id
    db.close()


# --- 2. sessions end when they should ---------------------------------------------------------------


def test_a_deleted_users_cookie_never_opens_the_next_users_account(app, admin, box):
    accounts = Accounts(box.db, box.clock)
    clerk = accounts.create("clerk", PASSWORD, "staff")
    old_cookie = login(app, "clerk")
    assert old_cookie.get("/").status_code == 200
    accounts.delete(clerk.id)
    newcomer = accounts.create("newcomer", PASSWORD, "admin")
    assert newcomer.id != clerk.id  # ids are never given out twice
    r = old_cookie.get("/admin/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_logout_ends_the_users_sessions_on_every_device(app, admin, box):
    counter, back_office = login(app), login(app)
    assert post(counter, "/logout", {}, form_page="/").status_code == 302
    for device in (counter, back_office):
        r = device.get("/")
        assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert admin.get("/").status_code == 302  # the admin fixture was the same user: out too


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(app, admin, box):
    elsewhere = login(app)
    r = post(admin, "/password", {"old": PASSWORD, "new": "counter-2027!", "new2": "counter-2027!"})
    assert r.status_code == 200 and "Password changed" in r.get_data(as_text=True)
    assert admin.get("/").status_code == 200
    assert elsewhere.get("/").status_code == 302


def test_a_role_change_or_a_reset_by_the_admin_ends_that_users_sessions(app, admin, box):
    accounts = Accounts(box.db, box.clock)
    clerk = accounts.create("clerk", PASSWORD, "staff")
    session = login(app, "clerk")
    assert post(admin, "/admin/users", {"action": "role", "id": clerk.id, "role": "admin"},
                form_page="/admin/").status_code == 302
    assert accounts.get(clerk.id).role == "admin"
    assert session.get("/").status_code == 302
    session = login(app, "clerk")
    assert post(admin, "/admin/users", {"action": "reset", "id": clerk.id, "password": "another-pass-42"},
                form_page="/admin/").status_code == 302
    assert session.get("/").status_code == 302


def test_idle_sessions_expire_after_the_admin_setting(tmp_path, vendor_keys):
    from appliance.clock import FakeClock
    from appliance.config import Config, VendorConfig, WebConfig
    from appliance.db import Database
    from appliance.settings import save_setting
    from web import create_app

    clock = FakeClock()
    config = Config(data_dir=str(tmp_path / "data"), service_code="YL08",
                    vendor=VendorConfig(public_key=vendor_keys[1]), web=WebConfig(listen=""))
    app = create_app(config, clock=clock, testing=True)
    db = Database.in_data_dir(config.data_dir)
    Accounts(db, clock).create("boss", PASSWORD, "admin")
    c = login(app)
    clock.advance(7.5 * 3600)
    assert c.get("/").status_code == 200  # in use: the idle time starts again
    clock.advance(7.5 * 3600)
    assert c.get("/").status_code == 200
    clock.advance(8 * 3600 + 1)  # 8 hours without a request: the default
    assert c.get("/").status_code == 302
    save_setting(config.data_dir, "session_idle_hours", 1)
    c = login(app)
    clock.advance(3601)
    assert c.get("/").status_code == 302
    db.close()


def test_a_box_from_before_keeps_its_users_and_tokens_and_never_reuses_their_ids(tmp_path, monkeypatch):
    from appliance import schema
    from appliance.clock import SystemClock
    from appliance.db import Database

    names = [n for n, _ in schema.MIGRATIONS]
    before = schema.MIGRATIONS[:names.index("0008_sessions")]
    monkeypatch.setattr("appliance.db.MIGRATIONS", before)
    from appliance.accounts import hash_secret, token_digest

    db = Database.in_data_dir(tmp_path)  # a box as it was: its rows written as that schema had them
    for name, role in (("boss", "admin"), ("clerk", "staff")):
        db.execute("INSERT INTO users (username, password_hash, role, created_at) VALUES (?, ?, ?, 0)",
                   (name, hash_secret(PASSWORD), role))
    token = "sg_old-token"
    db.execute("INSERT INTO api_tokens (name, token_hash, created_at) VALUES ('POS', ?, 0)", (token_digest(token),))
    boss, clerk = (type("U", (), {"id": i}) for i in (1, 2))
    db.close()
    monkeypatch.setattr("appliance.db.MIGRATIONS", schema.MIGRATIONS)
    db = Database.in_data_dir(tmp_path)  # the upgrade
    accounts = Accounts(db, SystemClock())
    assert [(u.id, u.username) for u in accounts.all()] == [(boss.id, "boss"), (clerk.id, "clerk")]
    assert accounts.check_token(token) == "POS"
    assert accounts.login("clerk", PASSWORD).id == clerk.id
    accounts.delete(clerk.id)
    assert accounts.create("next", PASSWORD, "staff").id > clerk.id
    db.close()


# --- 6. the page never runs out of threads ------------------------------------------------------------


class Dashboard(threading.Thread):
    """One open dashboard, doing what its page tells the browser: follow an event stream, or poll."""

    def __init__(self, base: str, cookie: str, stop: threading.Event, context=None):
        super().__init__(daemon=True)
        self.base, self.cookie, self.stop, self.context = base, cookie, stop, context
        self.updates = 0

    def get(self, path: str, timeout: float = 10):
        import urllib.request

        return urllib.request.urlopen(urllib.request.Request(self.base + path, headers={"Cookie": self.cookie}),
                                      timeout=timeout, context=self.context)

    def run(self) -> None:
        html = None
        while html is None and not self.stop.is_set():  # fifty from one address: some wait their turn
            try:
                html = self.get("/").read().decode()
            except OSError:
                self.stop.wait(0.2)
        stream = re.search(r'data-events="([^"]+)"', html or "")
        poll = re.search(r'data-poll="([^"]+)"', html or "")
        try:
            if stream:  # an EventSource holds its connection open for as long as the page is
                with self.get(stream.group(1), timeout=60) as r:
                    while not self.stop.is_set() and r.readline():
                        self.updates += 1
        except OSError:
            pass
        while poll and not self.stop.is_set():
            try:
                self.get(poll.group(1)).read()
                self.updates += 1
            except OSError:  # a browser asks again at its next turn
                pass
            self.stop.wait(float(re.search(r'data-every="([\d.]+)"', html).group(1)))


def test_fifty_open_dashboards_leave_login_and_the_api_answering(tmp_path):
    import http.cookiejar
    import time
    import urllib.request

    from appliance.config import Config, ModemConfig, WebConfig
    from appliance.db import Database
    from smsgenie.box import RunningBox

    config = Config(data_dir=str(tmp_path / "data"), service_code="YL08",
                    modems=(ModemConfig(port=str(tmp_path / "no-modem")),), web=WebConfig(listen="127.0.0.1:0"))
    box = RunningBox(config)
    running = threading.Thread(target=box.run, daemon=True)
    running.start()
    db = Database.in_data_dir(config.data_dir)
    accounts = Accounts(db, box.daemon.clock)
    accounts.create("boss", PASSWORD, "admin")
    token = accounts.new_token("POS")
    stop = threading.Event()
    trust = trusting(box)  # the page is HTTPS, as on the box: fifty browsers' TLS on waitress's one loop
    assert box.url.startswith("https://")
    try:
        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar),
                                              urllib.request.HTTPSHandler(context=trust))
        browser.addheaders = [("Referer", box.url + "/login")]  # a browser's, which CSRF over HTTPS checks
        csrf = token_of(browser.open(box.url + "/login", timeout=5).read().decode())
        browser.open(box.url + "/login", data=f"csrf_token={csrf}&username=boss&password={PASSWORD}".encode(),
                     timeout=5).read()
        cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
        dashboards = [Dashboard(box.url, cookie, stop, trust) for _ in range(50)]
        for d in dashboards:
            d.start()
        from tests.conftest import wait_for

        wait_for(lambda: all(d.updates for d in dashboards), 30, message="all fifty dashboards open and live")
        slowest = 0.0
        for _ in range(5):
            for request in (urllib.request.Request(box.url + "/login"),
                            urllib.request.Request(box.url + "/api/v1/status",
                                                   headers={"Authorization": f"Bearer {token}"})):
                t = time.monotonic()
                urllib.request.urlopen(request, timeout=5, context=trust).read()  # a hung page fails here
                slowest = max(slowest, time.monotonic() - t)
        assert slowest < 1.0, f"the page took {slowest:.2f} s with 50 dashboards open"
    finally:
        stop.set()
        box.stop()
        running.join(timeout=20)
        db.close()


# --- 11. no open redirects; headers ------------------------------------------------------------------

EVIL = ["//evil.example/", "/\\evil.example/", "\\\\evil.example", "/\t/evil.example", "https://evil.example/",
        "javascript:alert(1)", "/%0d%0aSet-Cookie:x=1", "/ok\r\nLocation: https://evil.example/", " /x",
        "///evil.example", "/\\/evil.example"]


@pytest.mark.parametrize("target", EVIL)
def test_next_accepts_only_a_path_on_this_site(app, admin, box, target):
    r = admin.get("/lang/en", query_string={"next": target})
    assert r.status_code == 302
    location = r.headers["Location"]
    assert location in ("/", "http://localhost/"), location
    client = app.test_client()
    page = client.get("/login", query_string={"next": target})
    csrf = token_of(page.get_data(as_text=True))
    signed_in = client.post("/login", query_string={"next": target},
                            data={"csrf_token": csrf, "username": "boss", "password": PASSWORD})
    assert signed_in.headers["Location"] in ("/", "http://localhost/")


def test_next_keeps_a_real_path_with_its_query(admin):
    r = admin.get("/lang/en", query_string={"next": "/history/3?page=2"})
    assert r.headers["Location"].endswith("/history/3?page=2")


@pytest.mark.parametrize("page", ["/login", "/", "/history", "/status.json"])
def test_every_page_sends_the_security_headers(admin, page):
    r = admin.get(page)
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize("page", ["/", "/history", "/status.json", "/inbox", "/optouts", "/topup"])
def test_pages_with_customer_data_are_not_cached(admin, page):
    assert "no-store" in admin.get(page).headers["Cache-Control"]


# --- 14. bad input is a clear error, never a 500 ---------------------------------------------------------


@pytest.mark.parametrize("page", ["/message/99999999999999999999", "/history/9223372036854775808",
                                  "/history/99999999999999999999.csv"])
def test_ids_past_what_the_database_holds_are_not_found(admin, page):
    assert admin.get(page).status_code == 404


def test_api_ids_past_the_database_are_not_found(client, box):
    token = Accounts(box.db, box.clock).new_token("POS")
    r = client.get("/api/v1/messages/99999999999999999999", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 404 and "error" in r.get_json()


@pytest.mark.parametrize("query", ["from=0001-01-01&to=9999-12-31", "from=9999-12-31&to=9999-12-31",
                                   "from=2026-13-01&to=2026-12-01", "from=2026-12-05&to=2026-12-01"])
def test_dates_out_of_range_are_refused_not_a_crash(admin, query):
    r = admin.get(f"/admin/audit.zip?{query}")
    assert r.status_code in (200, 400)


@pytest.mark.parametrize("body,why", [
    ({"to": "13800138000", "text": "hi", "transactional": "false"}, "transactional"),
    ({"to": "13800138000", "text": "hi", "transactional": 1}, "transactional"),
    ({"messages": "13800138000"}, "messages"),
    ({"messages": [{"to": "13800138000", "text": ""}]}, "empty"),
    ({"messages": [{"to": "13800138000", "text": "hi\x00there"}]}, "control character"),
    ({"messages": [{"to": "13800138000", "text": "\x1b[2J"}]}, "control character"),
])
def test_the_api_refuses_wrong_types_and_unsendable_text_by_name(client, box, body, why):
    token = Accounts(box.db, box.clock).new_token("POS")
    r = client.post("/api/v1/messages", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code in (400, 422)
    text = str(r.get_json())
    assert why in text, text
    assert box.messages() == []


def test_deeply_nested_json_is_a_400(client, box):
    token = Accounts(box.db, box.clock).new_token("POS")
    deep = "[" * 100_000 + "]" * 100_000
    r = client.post("/api/v1/messages", data=deep, content_type="application/json",
                    headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 400


def test_minting_a_code_that_expired_already_is_refused(tmp_path):
    from click.testing import CliRunner

    from smsgenie.cli import cli

    runner = CliRunner()
    assert runner.invoke(cli, ["vendor", "keygen", "--out", str(tmp_path)]).exit_code == 0
    r = runner.invoke(cli, ["vendor", "mint", "--key", str(tmp_path / "vendor.key"), "--device", "7K3M-9QAZ",
                            "--credits", "10", "--expires", "2020-01-01"])
    assert r.exit_code != 0 and "already passed" in r.output and "Traceback" not in r.output


def test_cli_audit_export_with_a_date_at_the_end_of_time_is_one_line(tmp_path):
    from click.testing import CliRunner

    from smsgenie.cli import cli
    from tests.conftest import make_box

    make_box(tmp_path)
    r = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "audit", "export", "--from", "2026-01-01",
                                 "--to", "9999-12-31", "--out", str(tmp_path / "x.csv")])
    assert r.exit_code in (0, 1) and "Traceback" not in r.output


JSON = st.recursive(st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
                    | st.floats(allow_nan=False) | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                        st.sampled_from(["to", "text", "messages", "transactional", "x"]) | st.text(max_size=5),
                        inner, max_size=4), max_leaves=20)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=JSON)
def test_fuzz_the_api_never_fails_with_a_500(client, box, body):
    token = Accounts(box.db, box.clock).new_token("fuzz")
    r = client.post("/api/v1/messages", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code in (202, 400, 422), (r.status_code, body)
    answer = r.get_json()
    assert ("messages" in answer) if r.status_code != 400 else ("error" in answer)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=300) | st.text(max_size=200).map(lambda t: t.encode("utf-8")),
       name=st.sampled_from(["l.csv", "l.txt", "l.xlsx"]), text=st.text(max_size=40))
def test_fuzz_the_upload_parser_refuses_clearly_or_previews(admin, content, name, text):
    r = upload(admin, name, content, text)
    assert r.status_code in (200, 400), r.status_code
    if r.status_code == 400:
        assert 'class="error"' in r.get_data(as_text=True)


AS_ANOTHER_USER = """
import encodings.idna, os, pwd, sqlite3, sys
from smsgenie.cli import cli
os.setgroups([]); os.setgid(65534); os.setuid(65534)  # nobody: the box's files are not theirs
cli(args=sys.argv[1:], prog_name="smsgenie")
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
@pytest.mark.parametrize("unreadable", ["data dir", "database", "config"])
@pytest.mark.parametrize("command", [["status"], ["run"], ["audit", "verify"]])
def test_a_config_or_data_dir_this_user_may_not_read_is_one_line_saying_whose_it_is(unreadable, command):
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from appliance.db import Database

    top = Path(tempfile.mkdtemp(prefix="smsgenie-perm-"))  # in /tmp itself: pytest's own folders are root's
    try:
        top.chmod(0o755)
        data = top / "data"
        Database.in_data_dir(data).close()  # root's, as after a 'sudo smsgenie init'
        cfg = top / "c.toml"
        cfg.write_text(f'data_dir = "{data}"\n[web]\nlisten = ""\n', encoding="utf-8")
        cfg.chmod(0o644)
        {"data dir": lambda: data.chmod(0o700), "database": lambda: data.chmod(0o755),
         "config": lambda: cfg.chmod(0o600)}[unreadable]()
        out = subprocess.run([sys.executable, "-c", AS_ANOTHER_USER, "--config", str(cfg), *command],
                             capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(top)
    said = out.stderr + out.stdout
    assert out.returncode == 1 and "Traceback" not in said and said.count("\n") == 1, said
    named = {"data dir": f"{data}:", "database": f"{data}/smsgenie.db:", "config": f"{cfg}:"}[unreadable]
    if command == ["run"] and unreadable == "database":
        named = f"{data}:"  # run writes beside the database too (its WAL, the lock): the folder must be theirs
    assert f"this user (nobody) may not read or write {named}" in said and "sudo -u smsgenie" in said, said


# --- 7. a failing part never stops the box silently -----------------------------------------------------


def test_a_panel_that_crashes_is_logged_and_restarts_alone(sim, tmp_path, caplog):
    import logging

    from appliance.clock import FakeClock
    from appliance.config import Config, ModemConfig, PanelConfig, WebConfig
    from appliance.ui.panel import Panel
    from tests.conftest import running_daemon, wait_for

    config = Config(data_dir=str(tmp_path / "data"), service_code="YL08", web=WebConfig(listen=""),
                    modems=(ModemConfig(port=sim.port),), panel=PanelConfig(display="emulator", buttons="mock"))
    real_step, faults = Panel.step, [0]

    def faulty_step(self):
        if faults[0] < 2:
            faults[0] += 1
            raise RuntimeError("a bug in the panel")
        return real_step(self)

    caplog.set_level(logging.INFO)
    with running_daemon(config, clock=FakeClock()) as daemon:
        daemon.panel.step = faulty_step.__get__(daemon.panel)
        wait_for(lambda: faults[0] == 2, 20, message="the two crashes")
        daemon.panel.screen = None
        wait_for(lambda: daemon.panel.screen is not None, 20, message="the panel drawing again after its crashes")
    crashes = [r for r in caplog.records if "counter panel crashed" in r.getMessage()]
    assert len(crashes) == 2 and all(r.exc_info for r in crashes)  # with the traceback


def test_a_worker_that_crashes_stops_the_daemon_with_its_error(sim, config, caplog):
    from appliance.daemon import Daemon
    from appliance.worker import ModemWorker

    def broken(self):
        raise RuntimeError("a bug in the send loop")

    daemon = Daemon(config)
    daemon.workers[0].step = broken.__get__(daemon.workers[0], ModemWorker)
    with pytest.raises(RuntimeError, match="a bug in the send loop"):
        daemon.run()
    assert any(r.exc_info and "worker modem1 crashed" in r.getMessage() for r in caplog.records)


def test_run_exits_non_zero_in_one_line_when_the_box_fails(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from smsgenie.box import RunningBox
    from smsgenie.cli import cli

    def failing(self):
        raise RuntimeError("a bug in the send loop")

    monkeypatch.setattr(RunningBox, "run", failing)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "d"}"\nservice_code = "Y"\n[web]\nlisten = ""\n')
    r = CliRunner().invoke(cli, ["--config", str(cfg), "run"])
    assert r.exit_code == 1 and r.output.count("\n") == 1
    assert "unexpected fault (RuntimeError: a bug in the send loop)" in r.output


def test_the_page_dying_stops_the_box_rather_than_sending_on_without_it(tmp_path, caplog):
    from appliance.config import Config, ModemConfig, WebConfig
    from smsgenie.box import RunningBox

    config = Config(data_dir=str(tmp_path / "data"), service_code="YL08",
                    modems=(ModemConfig(port=str(tmp_path / "no-modem")),), web=WebConfig(listen="127.0.0.1:0"))
    box = RunningBox(config)

    def dies():
        raise OSError("the listening socket broke")

    box.web.server.run = dies
    outcome = []
    runner = threading.Thread(target=lambda: outcome.append(pytest.raises(OSError, box.run)), daemon=True)
    runner.start()
    runner.join(timeout=20)
    assert not runner.is_alive(), "the box went on without its page"
    assert "the listening socket broke" in str(outcome[0].value)
    assert any(r.exc_info and "the page stopped" in r.getMessage() for r in caplog.records)


# --- 5. long writes never starve the sender -------------------------------------------------------------


class LockProbe(threading.Thread):
    """Takes the database's write lock again and again, as the sender does, and keeps the longest wait."""

    def __init__(self, data_dir):
        super().__init__(daemon=True)
        self.data_dir, self.stop, self.longest = data_dir, threading.Event(), 0.0

    def run(self) -> None:
        import sqlite3
        import time

        conn = sqlite3.connect(f"{self.data_dir}/smsgenie.db", timeout=60, isolation_level=None)
        while not self.stop.is_set():
            t = time.monotonic()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            self.longest = max(self.longest, time.monotonic() - t)
            self.stop.wait(0.02)
        conn.close()


@pytest.mark.system  # a big list: SMSGENIE_BIG_LIST messages (CI: a million)
@pytest.mark.timeout(1800)
def test_cancelling_a_big_list_never_starves_the_sender(sim, config, queue):
    import os
    import time

    from appliance.plan import plan_message
    from tests.conftest import running_daemon, wait_for

    size = int(os.environ.get("SMSGENIE_BIG_LIST", "100000"))
    sim.send_latency = 0.05  # 20 a second: faster than any SIM, and it leaves the lock free as a modem does
    big = queue.create_list("big.csv", "YL08")
    queue.enqueue_many(big, ((f"+86138{i:08d}", plan_message("会员日九折")) for i in range(size)), "YL08")
    after = queue.create_list("after.csv", "YL08")
    small = queue.enqueue(after, [f"+86139{i:08d}" for i in range(20)], plan_message("订单已到"), "YL08")
    lists = SendLists(queue.db, queue.clock)
    probe = LockProbe(config.data_dir)
    with running_daemon(config) as daemon:
        wait_for(lambda: len(sim.accepted) >= 5, 20, message="sending under way")
        probe.start()
        t = time.monotonic()
        lists.cancel(big, "boss")
        assert time.monotonic() - t < 1.0, "the cancel held the page's request"
        sent_at_cancel = len(sim.accepted)
        wait_for(lambda: all(queue.get(m).state in ("sent", "delivered") for m in small), 60 + size / 2000,
                 message="the next list sent while the big one is cancelled")
        assert len(sim.accepted) > sent_at_cancel  # sending went on
        wait_for(lambda: lists.get(big)["counts"]["queued"] == 0, 60 + size / 1000, interval=0.5,
                 message="the cancel completed")
        probe.stop.set()
        probe.join()
        assert daemon.workers[0].stuck_for() < 0
    counts = lists.get(big)["counts"]
    assert sum(counts.values()) == size  # nothing lost
    assert counts["failed"] >= size - 100 and counts["sending"] == 0
    assert daemon.lists.longest_batch < 0.5, f"one batch held the lock {daemon.lists.longest_batch:.2f} s"
    assert probe.longest < 1.0, f"a writer waited {probe.longest:.2f} s for the lock"


# --- 3. bodies are refused before they are read ----------------------------------------------------------


@pytest.fixture
def served(tmp_path):
    """The page served by waitress over HTTPS, as on the box, with an admin signed in (cookie) and the box."""
    import http.cookiejar
    import urllib.request

    from appliance.config import Config, ModemConfig, WebConfig
    from appliance.db import Database
    from smsgenie.box import RunningBox

    config = Config(data_dir=str(tmp_path / "data"), service_code="YL08",
                    modems=(ModemConfig(port=str(tmp_path / "no-modem")),),
                    web=WebConfig(listen="127.0.0.1:0", max_upload_mb=1))
    box = RunningBox(config)
    running = threading.Thread(target=box.run, daemon=True)
    running.start()
    db = Database.in_data_dir(config.data_dir)
    Accounts(db, box.daemon.clock).create("boss", PASSWORD, "admin")
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar),
                                          urllib.request.HTTPSHandler(context=trusting(box)))
    browser.addheaders = [("Referer", box.url + "/login")]  # a browser's, which CSRF over HTTPS checks
    csrf = token_of(browser.open(box.url + "/login", timeout=5).read().decode())
    browser.open(box.url + "/login", data=f"csrf_token={csrf}&username=boss&password={PASSWORD}".encode(),
                 timeout=5).read()
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    assert box.url.startswith("https://") and cookie
    yield box, cookie
    box.stop()
    running.join(timeout=20)
    db.close()


def raw(box, request: bytes, body_chunks=(), timeout: float = 5.0) -> tuple[bytes, int]:
    """Send ``request`` (headers) then chunks until the box answers or hangs up: (answer, body bytes sent)."""
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(box.url)
    sent = 0
    plain = socket.create_connection((where.hostname, where.port), timeout=timeout)
    with trusting(box).wrap_socket(plain, server_hostname=where.hostname) if where.scheme == "https" else plain as s:
        s.sendall(request)
        try:
            for chunk in body_chunks:
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:  # the server stopped reading and closed: what we want
            pass
        answer = b""
        try:
            while data := s.recv(65536):
                answer += data
        except OSError:
            pass
    return answer, sent


def test_a_gigabyte_declared_without_a_login_is_refused_unread(served):
    box, _ = served
    answer, _ = raw(box, b"POST /send HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n"
                             b"Content-Type: multipart/form-data; boundary=x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413")


def test_a_chunked_body_without_a_login_is_cut_off_early(served):
    box, _ = served
    chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
    answer, sent = raw(box, b"POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                       (chunk for _ in range(16 * 1024)))  # a gigabyte, if the box kept reading
    assert answer.startswith(b"HTTP/1.1 413")
    assert sent < 16 * 1024 * 1024, f"the box read {sent} bytes of a body it should have refused"


def test_signed_in_the_list_limit_holds_and_the_update_form_alone_gets_more(served):
    box, cookie = served
    over = 2 * 1024 * 1024
    refused, _ = raw(box, b"POST /send HTTP/1.1\r\nHost: x\r\nCookie: %s\r\nContent-Length: %d\r\n\r\n"
                     % (cookie.encode(), over))
    assert refused.startswith(b"HTTP/1.1 413")
    bundle, _ = raw(box, b"POST /admin/update HTTP/1.1\r\nHost: x\r\nCookie: %s\r\nContent-Length: %d\r\n"
                    b"Content-Type: application/x-www-form-urlencoded\r\n\r\n" % (cookie.encode(), over),
                    [b"a=" + b"x" * (over - 2)])
    assert not bundle.startswith(b"HTTP/1.1 413")  # through to the page (which wants its CSRF token)
    forged = cookie.split("=", 1)[0] + "=" + "x" * 40
    anonymous, _ = raw(box, b"POST /send HTTP/1.1\r\nHost: x\r\nCookie: %s\r\nContent-Length: 100000\r\n\r\n"
                       % forged.encode())
    assert anonymous.startswith(b"HTTP/1.1 413")  # a cookie the box did not sign counts for nothing


def test_one_address_cannot_take_all_the_connections(served):
    import socket
    from urllib.parse import urlsplit

    from web.gate import PER_CLIENT

    box, _ = served
    where = urlsplit(box.url)
    server = box.web.server
    # the fixture's own requests (signing in) leave channels that close a moment later: those count as this
    # address's too, so wait for them to go before counting
    wait_for(lambda: not server.active_channels, 10, message="the fixture's connections closed")
    held = [socket.create_connection((where.hostname, where.port), timeout=5) for _ in range(PER_CLIENT + 5)]
    try:
        import select
        import time

        def ended(s) -> bool:
            try:
                return s.recv(1) == b""
            except OSError:  # reset rather than closed: ended all the same
                return True

        closed, deadline = set(), time.monotonic() + 10
        while len(closed) < 5 and time.monotonic() < deadline:  # refused ones end at once; the others wait
            readable, _, _ = select.select([s for s in held if s not in closed], [], [], 0.5)
            closed |= {s for s in readable if ended(s)}
        time.sleep(0.5)
        readable, _, _ = select.select([s for s in held if s not in closed], [], [], 0)
        assert len(closed) == 5 and not readable, f"{len(closed)} of the connections past {PER_CLIENT} refused"
    finally:
        for s in held:
            s.close()


# --- 10. login and set-up resist guessing -------------------------------------------------------------


def _twenty_at_once(box, attempt):
    """Run ``attempt(accounts)`` from 20 threads at once, each on its own connection, as 20 requests would."""
    from appliance.db import Database

    def one():
        db = Database(box.db.path)
        try:
            attempt(Accounts(db, box.clock))
        except Exception:  # noqa: BLE001 - refused, as it should be
            pass
        finally:
            db.close()

    threads = [threading.Thread(target=one) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)


def test_simultaneous_wrong_passwords_get_no_more_tries_than_one_at_a_time(box, monkeypatch):
    from appliance import accounts as accmod

    Accounts(box.db, box.clock).create("clerk", PASSWORD, "staff")
    checked = []
    real = accmod.check_secret
    monkeypatch.setattr(accmod, "check_secret", lambda secret, stored: checked.append(1) or real(secret, stored))
    _twenty_at_once(box, lambda accounts: accounts.login("clerk", "wrong-password-x", address="10.0.0.9"))
    from appliance.attempts import FREE_TRIES

    assert len(checked) <= FREE_TRIES + 1, f"{len(checked)} passwords checked of 20 at once"


def test_an_address_that_keeps_guessing_waits_longer_while_the_admin_elsewhere_gets_in(tmp_path):
    from appliance.accounts import LoginRefused
    from appliance.clock import FakeClock
    from appliance.db import Database

    clock = FakeClock()
    db = Database.in_data_dir(tmp_path)
    accounts = Accounts(db, clock)
    accounts.create("boss", PASSWORD, "admin")
    waits = []
    for _ in range(12):
        try:
            accounts.login("boss", "not-the-password", address="10.0.0.66")
        except LoginRefused as exc:
            waits.append(str(exc))
        clock.advance(1)
    assert sum("wait" in w for w in waits) >= 6  # most of the tries were not even checked
    assert all(("wrong username or password" in w) or ("wait" in w) for w in waits)
    clock.advance(61)  # the account waits at most a minute: the shop's admin is never locked out for long
    assert accounts.login("boss", PASSWORD, address="192.168.1.10").username == "boss"
    with pytest.raises(LoginRefused, match="wrong username"):  # the guesser's address remembers its count ...
        accounts.login("boss", "guess-number-13", address="10.0.0.66")
    with pytest.raises(LoginRefused, match="wait 16 seconds"):  # ... and waits longer each time
        accounts.login("boss", "guess-number-14", address="10.0.0.66")
    db.close()


def test_a_refusal_never_says_whether_the_user_exists(app, box):
    Accounts(box.db, box.clock).create("boss", PASSWORD, "admin")
    known = post(app.test_client(), "/login", {"username": "boss", "password": "wrong-password-1"},
                 environ_base={"REMOTE_ADDR": "10.1.1.1"})
    unknown = post(app.test_client(), "/login", {"username": "nobody", "password": "wrong-password-1"},
                   environ_base={"REMOTE_ADDR": "10.1.1.2"})
    assert known.status_code == unknown.status_code == 401
    strip = lambda r: re.sub(r'value="[^"]+"', "", r.get_data(as_text=True))  # noqa: E731 - the CSRF token differs
    assert strip(known) == strip(unknown)


@pytest.mark.parametrize("password,why", [
    ("short-1", "at least 10"), ("password123", "guessers try first"), ("1234567890", "guessers try first"),
    ("qwertyuiop", "guessers try first"), ("aaaaaaaaaaaa", "guessers try first"), ("boss-is-here-1", "username"),
])
def test_passwords_guessers_try_first_are_refused(box, password, why):
    from appliance.accounts import AccountError

    with pytest.raises(AccountError, match=why):
        Accounts(box.db, box.clock).create("boss", password, "admin")


def test_the_technician_resets_a_password_and_unlocks_an_account(tmp_path):
    from click.testing import CliRunner

    from appliance.accounts import LoginRefused
    from appliance.db import Database
    from smsgenie.cli import cli
    from tests.conftest import make_box

    make_box(tmp_path)
    db = Database.in_data_dir(tmp_path)
    accounts = Accounts(db, __import__("appliance.clock", fromlist=["SystemClock"]).SystemClock())
    accounts.create("clerk", PASSWORD, "staff")
    for _ in range(6):
        with pytest.raises(LoginRefused):
            accounts.login("clerk", "wrong-password-x", address="10.0.0.1")
    runner = CliRunner()
    assert "may sign in again" in runner.invoke(cli, ["--data-dir", str(tmp_path), "users", "unlock", "clerk"]).output
    assert accounts.login("clerk", PASSWORD, address="10.0.0.2").username == "clerk"
    pw = tmp_path / "pw"
    pw.write_text("a-brand-new-secret\n")
    r = runner.invoke(cli, ["--data-dir", str(tmp_path), "users", "reset-password", "clerk", "--password-file",
                            str(pw)])
    assert r.exit_code == 0 and "new password" in r.output
    assert accounts.login("clerk", "a-brand-new-secret", address="10.0.0.3").username == "clerk"
    bad = runner.invoke(cli, ["--data-dir", str(tmp_path), "users", "unlock", "nobody"])
    assert bad.exit_code == 1 and "no user called 'nobody'" in bad.output
    db.close()


def test_simultaneous_wrong_set_up_pins_get_five_tries_in_all(box, monkeypatch):
    from appliance import accounts as accmod

    pin = Accounts(box.db, box.clock).new_setup_pin()
    wrong = "000000" if pin != "000000" else "111111"
    checked = []
    real = accmod.check_secret
    monkeypatch.setattr(accmod, "check_secret", lambda secret, stored: checked.append(1) or real(secret, stored))
    _twenty_at_once(box, lambda accounts: accounts.setup_admin(wrong, "mallory", PASSWORD))
    assert len(checked) <= 5 and Accounts(box.db, box.clock).setup_pin() is None  # and then the PIN is void


# --- 13. least privilege -------------------------------------------------------------------------------


def confirm_upload(client, name="l.csv"):
    r = upload(client, name, "phone\n13800138000\n13900139000\n".encode(), "周六开业")
    html = r.get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    done = client.post("/send/confirm", data={"csrf_token": token_of(html), "token": token, "name": name,
                                              "text": "周六开业", "kind": "marketing", "start_at": ""})
    assert done.status_code == 302
    return int(done.headers["Location"].split("/history/")[1].split("?")[0])


def test_staff_steer_only_their_own_lists_and_not_the_whole_box(app, admin, box):
    box.ledger.adjust(100, "credit")
    assert post(admin, "/admin/settings", {"approval": "none"}, form_page="/admin/").status_code == 200
    Accounts(box.db, box.clock).create("clerk", PASSWORD, "staff")
    Accounts(box.db, box.clock).create("cashier", PASSWORD, "staff")
    clerk, cashier = login(app, "clerk"), login(app, "cashier")
    mine, bosses = confirm_upload(clerk, "mine.csv"), confirm_upload(admin, "boss.csv")
    assert post(cashier, f"/lists/{mine}/cancel", {}, form_page="/history").status_code == 403
    assert post(clerk, f"/lists/{bosses}/pause", {}, form_page="/history").status_code == 403
    assert post(clerk, f"/lists/{mine}/pause", {}, form_page="/history").status_code == 302
    assert SendLists(box.db, box.clock).get(mine)["state"] == "paused"
    assert post(clerk, "/sending/pause", {}, form_page="/").status_code == 403
    from appliance.pause import SendingPause

    assert SendingPause(box.db, box.clock).current() is None
    assert post(admin, f"/lists/{mine}/cancel", {}, form_page="/history").status_code == 302  # an admin may
    assert post(admin, "/admin/settings", {"staff_may_steer": "on"}, form_page="/admin/").status_code == 200
    assert post(cashier, f"/lists/{bosses}/pause", {}, form_page="/history").status_code == 302
    assert post(clerk, "/sending/pause", {}, form_page="/").status_code == 302


def test_api_tokens_read_only_what_their_scope_allows(client, box):
    accounts = Accounts(box.db, box.clock)
    pos = accounts.new_token("POS")  # the default: send, and read its own messages
    booking = accounts.new_token("Booking")
    reader = accounts.new_token("Reports", scopes=("read-all",))

    def call(token, method, path, **kw):
        return getattr(client, method)(path, headers={"Authorization": f"Bearer {token}"}, **kw)

    own = call(pos, "post", "/api/v1/messages", json={"to": "13800138000", "text": "取件码 8842"}).get_json()
    mid = own["messages"][0]["id"]
    assert call(pos, "get", f"/api/v1/messages/{mid}").status_code == 200
    assert call(booking, "get", f"/api/v1/messages/{mid}").status_code == 404  # not its message: not there
    assert call(reader, "get", f"/api/v1/messages/{mid}").status_code == 200
    refused = call(reader, "post", "/api/v1/messages", json={"to": "13800138000", "text": "hi"})
    assert refused.status_code == 403 and "send" in refused.get_json()["error"]
    assert {t["name"]: t["scopes"] for t in accounts.tokens()}["Reports"] == ["read-all"]


# --- 4. a list too large or malformed is refused before it costs memory ---------------------------------


def test_an_xlsx_that_would_expand_far_past_its_size_is_refused_unopened(tmp_path, monkeypatch):
    import zipfile

    from appliance import sendlist
    from appliance.errors import SendListError

    monkeypatch.setattr(sendlist, "XLSX_MAX_EXPANDED", 5 * 1024 * 1024)
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", "<row><c t='s'><v>0</v></c></row>" * 300_000)  # ~10 MB
    assert bomb.stat().st_size < 200_000
    opened = []
    monkeypatch.setattr("openpyxl.load_workbook", lambda *a, **k: opened.append(1))
    with pytest.raises(SendListError, match="would expand to"):
        sendlist.open_table(bomb)
    assert not opened  # refused before a byte was unpacked


def test_a_list_past_the_row_limit_is_refused_and_nothing_is_queued(admin, box):
    from appliance.settings import save_setting

    save_setting(box.db.path.parent, "max_list_rows", 1000)
    rows = "".join(f"138{i:08d}\n" for i in range(1500))
    r = upload(admin, "big.csv", ("phone\n" + rows).encode(), "会员日")
    assert r.status_code == 400 and "more than 1,000 rows" in r.get_data(as_text=True)
    assert box.messages() == []


# --- 15. uncertain messages resolved by evidence ------------------------------------------------------------


def uncertain_to(q, number: str, text: str = "订单已到"):
    from appliance.plan import plan_message

    q.ledger.adjust(10, "credit")
    (mid,) = q.enqueue(None, [number], plan_message(text), "YL08")
    assert q.claim().id == mid
    q.recover_interrupted(None)  # the box stopped right after the modem took it
    assert q.get(mid).state == "uncertain"
    return mid


def test_a_report_that_can_only_be_its_own_resolves_an_uncertain_message(queue):
    from tests.conftest import report

    mid = uncertain_to(queue, "+8613800138000")
    sent_at = queue.get(mid).sending_at
    m = report(queue, 41, "8613800138000", "delivered", 0, "received by the phone", submitted_at=sent_at + 2)
    assert m is not None and m.id == mid and queue.get(mid).state == "delivered"
    last = list(queue.audit.rows(0, 2e10))[-1]
    assert last["event"] == "delivered" and "resolved from uncertain" in last["outcome"]
    assert queue.ledger.charged(mid) == 1  # it went: it stays paid for


def test_an_uncertain_message_stays_uncertain_when_the_report_could_be_anothers(queue):
    from appliance.plan import plan_message
    from tests.conftest import report

    first = uncertain_to(queue, "+8613800138000")
    sent_at = queue.get(first).sending_at
    # another message to the same number is awaiting its report: the report could be that one's
    (other,) = queue.enqueue(None, ["+8613800138000"], plan_message("另一条"), "YL08")
    queue.claim()
    queue.record_segment(other, 1, 99)
    queue.mark_sent(other)
    assert report(queue, 41, "8613800138000", "delivered", 0, "ok", submitted_at=sent_at + 2) is None
    assert queue.get(first).state == "uncertain"


def test_a_report_from_before_the_send_began_resolves_nothing(queue):
    from tests.conftest import report

    mid = uncertain_to(queue, "+8613900139000")
    assert report(queue, 7, "+8613900139000", "delivered", 0, "ok",
                  submitted_at=queue.get(mid).sending_at - 3600) is None
    assert queue.get(mid).state == "uncertain"


# --- 9. the record cannot lose its tail unnoticed ----------------------------------------------------------


def record_with_sends(queue, n=6):
    from appliance.plan import plan_message

    queue.ledger.adjust(100, "credit")
    ids = queue.enqueue(None, [f"+86138{i:08d}" for i in range(n)], plan_message("会员日"), "YL08")
    for mid in ids:
        queue.claim()
        queue.record_segment(mid, 1, mid)
        queue.mark_sent(mid)
    assert queue.audit.verify().ok
    return ids


def test_cutting_the_newest_rows_off_the_record_is_noticed(queue):
    record_with_sends(queue)
    queue.db.execute("DELETE FROM audit WHERE id > (SELECT MAX(id) - 2 FROM audit)")
    verdict = queue.audit.verify()
    assert not verdict.ok and "no row in the record" in verdict.problem


def test_emptying_the_record_is_noticed(queue):
    record_with_sends(queue)
    queue.db.execute("DELETE FROM audit")
    verdict = queue.audit.verify()
    assert not verdict.ok and "no row in the record" in verdict.problem


def test_a_forged_prune_inside_the_retention_is_noticed(queue):
    record_with_sends(queue)
    head = queue.db.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    queue.db.execute("DELETE FROM audit")
    queue.db.execute("INSERT INTO audit_anchor (id, pruned_to, hash, at) VALUES (1, ?, ?, ?)",
                     (head["id"], head["hash"], queue.clock.time()))
    verdict = queue.audit.verify()
    assert not verdict.ok and "no row in the record" in verdict.problem


def test_messages_deleted_with_their_rows_are_noticed_by_the_ledger(queue):
    ids = record_with_sends(queue)
    queue.db.execute("PRAGMA foreign_keys = OFF")
    queue.db.execute("DELETE FROM audit WHERE message_id = ?", (ids[-1],))
    queue.db.execute("DELETE FROM segment WHERE message_id = ?", (ids[-1],))
    queue.db.execute("DELETE FROM message WHERE id = ?", (ids[-1],))
    queue.db.execute("PRAGMA foreign_keys = ON")
    verdict = queue.audit.verify()
    assert not verdict.ok and "charged for" in verdict.problem


def test_a_real_prune_past_the_retention_stays_verifiable(tmp_path):
    from appliance.clock import FakeClock
    from appliance.db import Database
    from appliance.sendqueue import SendQueue

    clock = FakeClock()
    db = Database.in_data_dir(tmp_path)
    q = SendQueue(db, clock)
    record_with_sends(q, 3)
    clock.advance(200 * 86400)
    record_with_sends(q, 2)
    assert q.audit.prune(180) > 0
    verdict = q.audit.verify()
    assert verdict.ok, verdict.problem
    db.close()


# --- 8. disk full and damage fail clean ---------------------------------------------------------------


@pytest.fixture
def connections(monkeypatch):
    """Every database connection opened from here on, to fill the 'disk' under them (max_page_count)."""
    from appliance.db import Database

    made = []
    real = Database.__init__

    def tracking(self, *args, **kwargs):
        real(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Database, "__init__", tracking)
    return made


def fill(connections, full: bool) -> None:
    """Make the database full for every connection (no page left, and no room in the pages there are), or
    give it room again. max_page_count is each connection's own, so each is told."""
    import sqlite3

    live = []
    for db in list(connections):
        try:
            db.conn.execute("SELECT 1")
            live.append(db)
        except sqlite3.ProgrammingError:  # closed already
            pass
    if not full:
        for db in live:
            db.conn.execute("PRAGMA max_page_count = 1000000000")
        return
    first = live[0].conn
    first.execute("CREATE TABLE IF NOT EXISTS filler (x BLOB)")
    pages = first.execute("PRAGMA page_count").fetchone()[0]
    for db in live:
        db.conn.execute(f"PRAGMA max_page_count = {pages}")
    for size in (4000, 500, 50, 1):  # fill the room left in the pages there are
        while True:
            try:
                first.execute("INSERT INTO filler VALUES (zeroblob(?))", (size,))
            except sqlite3.OperationalError:
                break


def test_a_full_disk_makes_the_daemon_wait_and_lose_nothing(sim, config, queue, connections, caplog):
    from collections import Counter

    from appliance.plan import plan_message
    from tests.conftest import running_daemon, wait_for

    sim.send_latency = 0.05
    ids = queue.enqueue(None, [f"+86138{i:08d}" for i in range(20)], plan_message("会员日"), "YL08")
    balance = queue.ledger.balance()
    with running_daemon(config) as daemon:
        wait_for(lambda: len(sim.accepted) >= 3, 20)
        fill(connections, True)
        wait_for(lambda: "storage is full" in caplog.text, 20, message="the daemon saying the disk is full")
        stuck_at = len(sim.accepted)
        import time

        time.sleep(1.0)
        assert len(sim.accepted) <= stuck_at + 2  # it waits (the message in hand may finish)
        assert daemon.workers[0].stuck_for() < 0  # waiting, not dead
        fill(connections, False)  # space again
        wait_for(lambda: Counter(queue.get(i).state for i in ids) == Counter({"delivered": 20}), 60,
                 message="all sent once there is room again")
    assert len(sim.accepted) == 20  # none twice
    assert queue.ledger.balance() == balance - 20  # each charged once
    assert queue.audit.verify().ok


class FullDisk:
    """A connection whose every write fails as SQLite's do on a full disk (reads still work)."""

    WRITES = ("INSERT", "UPDATE", "DELETE", "COMMIT")

    def __init__(self, conn, room=None):
        self._conn = conn
        self._room = room  # an Event: set, the disk has room again

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def _check(self, sql: str) -> None:
        import sqlite3

        if sql.lstrip().upper().startswith(self.WRITES) and not (self._room and self._room.is_set()):
            raise sqlite3.OperationalError("database or disk is full")

    def execute(self, sql, *args):
        self._check(sql)
        return self._conn.execute(sql, *args)

    def executemany(self, sql, *args):
        self._check(sql)
        return self._conn.executemany(sql, *args)


def full_disk(monkeypatch, room=None):
    """Every database connection opened from here on finds the disk full (until ``room``, an Event, is set)."""
    from appliance.db import Database

    real = Database.__init__

    def full(self, *args, **kwargs):
        real(self, *args, **kwargs)
        self.conn = FullDisk(self.conn, room)

    monkeypatch.setattr(Database, "__init__", full)


def test_a_daemon_started_on_a_full_disk_is_up_and_waits_for_room(sim, config, queue, monkeypatch, tmp_path):
    """The boot test booted the box with its data partition full: the recovery at start could not write and
    the daemon exited, again and again (no page, no panel). Now systemd hears it is up, and it recovers and
    sends once there is room."""
    from appliance import daemon as daemon_module
    from appliance.plan import plan_message
    from appliance.sdnotify import Notifier
    from tests.conftest import running_daemon, wait_for
    from tests.test_service import NotifySocket

    monkeypatch.setattr(daemon_module, "FULL_WAIT", 0.05)
    [mid] = queue.enqueue(None, ["+8613800000001"], plan_message("会员日"), "YL08")
    queue.claim()  # claimed when the box last stopped
    room = threading.Event()
    full_disk(monkeypatch, room)
    systemd = NotifySocket(tmp_path / "notify")
    try:
        with running_daemon(config, notifier=Notifier(systemd.path)):
            wait_for(lambda: systemd.times("READY"), 10, message="READY while the disk is full")
            assert next(f for _, f in systemd.received if "READY" in f)["STATUS"].startswith("waiting for room")
            time.sleep(0.3)
            assert queue.get(mid).state == "sending" and sim.accepted == []
            room.set()
            wait_for(lambda: queue.get(mid).state == "delivered", 20, message="recovered and sent once there is room")
    finally:
        systemd.close()
    assert len(sim.accepted) == 1


def test_a_full_disk_is_one_clear_line_on_the_command_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from smsgenie.cli import cli
    from tests.conftest import make_box

    make_box(tmp_path)
    csv = tmp_path / "l.csv"
    csv.write_text("phone\n13800138000\n")
    full_disk(monkeypatch)
    r = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "send", str(csv), "--text", "hi"])
    assert r.exit_code == 1 and r.output.startswith("Error: the box's data storage is full"), r.output
    assert r.output.count("\n") == 1


def test_a_full_disk_on_the_page_is_a_clear_page(admin, box, monkeypatch):
    box.ledger.adjust(10, "credit")
    r = upload(admin, "l.csv", b"phone\n13800138000\n", "hi")
    html = r.get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    full_disk(monkeypatch)
    done = admin.post("/send/confirm", data={"csrf_token": token_of(html), "token": token, "name": "l.csv",
                                             "text": "hi", "kind": "marketing", "start_at": ""})
    assert done.status_code == 507 and "storage is full" in done.get_data(as_text=True)
    assert box.messages() == []
    monkeypatch.undo()  # room again: the same confirm goes through, once
    again = admin.post("/send/confirm", data={"csrf_token": token_of(html), "token": token, "name": "l.csv",
                                              "text": "hi", "kind": "marketing", "start_at": ""})
    assert again.status_code == 302 and len(box.messages()) == 1


def test_an_upload_onto_a_full_data_partition_is_the_clear_page_and_leaves_no_half_file(admin, box, monkeypatch):
    """The boot test found it: the list file is written before anything touches the database, and ENOSPC
    there was a 500."""
    import errno

    from werkzeug.datastructures import FileStorage

    def full(self, dst, *args, **kwargs):
        dst.write(b"phone\n")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FileStorage, "save", full)
    r = upload(admin, "l.csv", b"phone\n13800138000\n", "hi")
    assert r.status_code == 507 and "storage is full" in r.get_data(as_text=True)
    assert not any((box.db.path.parent / "uploads").iterdir())
    monkeypatch.undo()
    assert upload(admin, "l.csv", b"phone\n13800138000\n", "hi").status_code == 200


@pytest.mark.parametrize("damage", [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4000])
def test_a_damaged_database_stops_the_box_with_one_line_naming_the_file_and_the_restore(tmp_path, damage):
    from click.testing import CliRunner

    from smsgenie.cli import cli
    from tests.conftest import make_box

    make_box(tmp_path)
    (tmp_path / "smsgenie.db").write_bytes(damage)
    for command in (["run"], ["status"]):
        r = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), *command])
        assert r.exit_code == 1 and r.output.count("\n") == 1 and "Traceback" not in r.output, r.output
        assert str(tmp_path / "smsgenie.db") in r.output and "smsgenie restore" in r.output


def test_uploads_nobody_confirmed_within_an_hour_are_deleted(tmp_path):
    import os
    import time

    from appliance.uploads import forget_stale_uploads

    uploads = tmp_path / "uploads"
    uploads.mkdir()
    old, new = uploads / "old-token", uploads / "new-token"
    old.write_text("phone\n")
    new.write_text("phone\n")
    os.utime(old, (time.time() - 3700, time.time() - 3700))
    assert forget_stale_uploads(tmp_path) == 1
    assert not old.exists() and new.exists()


def test_bookkeeping_done_together_is_kept_whole_when_its_transaction_rolls_back(tmp_path):
    """A send's bookkeeping runs in one transaction: when a later write fails (a full disk) and the whole
    transaction rolls back, the writes before it must stay pending - not be taken for done and lost (a
    message left 'sending', delivery reports never stored and yet deleted from the modem)."""
    from appliance.db import Database
    from appliance.errors import StorageFull
    from appliance.worker.bookkeeping import Bookkeeping

    db = Database.in_data_dir(tmp_path)
    db.execute("CREATE TABLE t (x)")
    book, deleted, full = Bookkeeping(), [], [True]

    def store(x):
        with db.atomic() as conn:
            conn.execute("INSERT INTO t VALUES (?)", (x,))
        book.after_commit(lambda: deleted.append(x))

    def then_full():
        if full[0]:
            raise StorageFull("full")

    book.later(lambda: store(1))
    book.later(then_full)
    book.later(lambda: store(2))
    with pytest.raises(StorageFull):
        book.flush_together(db.atomic)
    assert db.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0 and deleted == [] and book
    full[0] = False
    book.flush_together(db.atomic)
    assert [r[0] for r in db.execute("SELECT x FROM t")] == [1, 2] and deleted == [1, 2] and not book
    book.later(lambda: store(3))
    book.flush()  # one by one: each effect once its own write committed
    assert deleted == [1, 2, 3]
    db.close()
