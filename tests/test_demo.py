"""The README's demo command, end to end, as a new user runs it (faster network)."""

import json
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.system


def test_demo_sends_the_list_and_status_shows_it(tmp_path):
    data = tmp_path / "demo"
    run = subprocess.run([sys.executable, "-m", "smsgenie", "--data-dir", str(data), "demo", "--until-idle",
                          "--latency", "0.01", "--port", "0"], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Queued 24 x 会员日 promo (demo): 24 SMS parts." in run.stdout
    assert "Queued 5 x order ready (demo): 10 SMS parts." in run.stdout
    assert "The customer book: 25 members imported, their consent on record" in run.stdout
    assert "138****0099 replied Y: consent recorded (at the counter, confirmed by SMS" in run.stdout
    assert "refused row 28: blocked by a forbidden word - contains '代开发票' (vendor list)" in run.stdout
    assert "redeemed: +20 credits, balance 20" in run.stdout
    assert "sending paused, out of credit" in run.stdout  # 34 parts on 20 credits ...
    assert "redeemed: +100 credits" in run.stdout  # ... until the demo buys more
    assert "refused row 26: duplicate" in run.stdout and "refused row 27: invalid" in run.stdout
    assert f"--data-dir {data} status --json" in run.stdout
    assert "The shop's page: open http://127.0.0.1:" in run.stdout and "set-up PIN" in run.stdout
    status = subprocess.run([sys.executable, "-m", "smsgenie", "--data-dir", str(data), "status", "--json"],
                            capture_output=True, text=True, timeout=60)
    result = json.loads(status.stdout)
    q = result["queue"]
    assert q["queued"] == q["sending"] == q["sent"] == q["uncertain"] == 0
    # one phone rejects, one number is unassigned, and the customer who had replied 退订 gets neither text;
    # the walk-in customer gets the consent question
    assert q["delivered"] == 26 and q["failed"] == 4
    assert result["sent_total"] == 27 >= 20
    assert result["balance"] == 120 - 31 and result["paused"] is None  # refused and skipped ones cost nothing
    assert result["modem"]["state"] == "stopped" and result["modem"]["operator"] == "CHINA MOBILE"
    assert (data / "config.toml").exists()
    assert "The counter panel (simulated OLED)" in run.stdout and (data / "oled.png").exists()
    assert re.search(r"http://127\.0\.0\.1:\d+/device \(as the admin\)", run.stdout)
    pin = re.search(r"set-up PIN (\d{6})", run.stdout).group(1)
    assert (run.stdout + run.stderr).count(pin) == 1


def test_running_the_demo_again_in_its_folder_buys_and_queues_nothing_again(tmp_path):
    data = tmp_path / "demo"
    demo = [sys.executable, "-m", "smsgenie", "demo", "--data-dir", str(data), "--until-idle", "--latency", "0.01",
            "--port", "0"]
    first = subprocess.run(demo, capture_output=True, text=True, timeout=180)
    assert first.returncode == 0, first.stdout + first.stderr
    before = json.loads(subprocess.run([sys.executable, "-m", "smsgenie", "--data-dir", str(data), "status",
                                        "--json"], capture_output=True, text=True, timeout=60).stdout)
    again = subprocess.run(demo, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "set up by an earlier demo" in again.stdout
    assert "redeemed" not in again.stdout and "Queued" not in again.stdout
    after = json.loads(subprocess.run([sys.executable, "-m", "smsgenie", "--data-dir", str(data), "status",
                                       "--json"], capture_output=True, text=True, timeout=60).stdout)
    assert after["balance"] == before["balance"] and after["queue"] == before["queue"]


def test_the_demo_opens_the_page_only_where_there_is_a_desktop(monkeypatch):
    from smsgenie import demo

    opened = []
    monkeypatch.setattr(demo.webbrowser, "open_new_tab", lambda url: opened.append(url) or True)
    monkeypatch.setattr(demo.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    # headless (an SSH session, CI): a text browser would take over the terminal, so nothing opens
    assert demo._open_page("http://127.0.0.1:8080/") is False and opened == []
    monkeypatch.setenv("DISPLAY", ":0")
    assert demo._open_page("http://127.0.0.1:8080/") is True and opened == ["http://127.0.0.1:8080/"]
