"""The README's demo command, end to end, as a new user runs it (faster network)."""

import json
import subprocess
import sys


def test_demo_sends_the_list_and_status_shows_it(tmp_path):
    data = tmp_path / "demo"
    run = subprocess.run([sys.executable, "-m", "appliance", "--data-dir", str(data), "demo", "--until-idle",
                          "--latency", "0.01"], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Queued 29 demo messages" in run.stdout
    assert "redeemed: +20 credits, balance 20" in run.stdout
    assert "sending paused, out of credit" in run.stdout  # 34 parts on 20 credits ...
    assert "redeemed: +100 credits" in run.stdout  # ... until the demo buys more
    assert "refused row 26: duplicate" in run.stdout
    assert f"--data-dir {data} status --json" in run.stdout
    status = subprocess.run([sys.executable, "-m", "appliance", "--data-dir", str(data), "status", "--json"],
                            capture_output=True, text=True, timeout=60)
    result = json.loads(status.stdout)
    q = result["queue"]
    assert q["queued"] == q["sending"] == q["sent"] == q["uncertain"] == 0
    assert q["delivered"] == 27 and q["failed"] == 2  # one phone rejects, one number is unassigned
    assert result["sent_total"] == 28 >= 20
    assert result["balance"] == 120 - 33 and result["paused"] is None  # the unassigned number was refunded
    assert result["modem"]["state"] == "stopped" and result["modem"]["operator"] == "CHINA MOBILE"
    assert (data / "config.toml").exists()
