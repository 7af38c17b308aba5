"""The front door's manners, found by trying the box as a newcomer: one clear line for every refusal."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner

from smsgenie.cli import cli


def config_file(tmp_path, listen: str, port: str | None = None) -> str:
    path = tmp_path / "c.toml"
    path.write_text(f'data_dir = "{tmp_path / "d"}"\nservice_code = "YL08"\n[modem]\n'
                    f'port = "{port or tmp_path / "no-modem"}"\n[web]\nlisten = "{listen}"\n', encoding="utf-8")
    return str(path)


@pytest.fixture
def busy_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output
    return result.output


def test_run_on_a_port_in_use_is_one_line_saying_what_to_change(tmp_path, busy_port):
    cfg = config_file(tmp_path, f"127.0.0.1:{busy_port}")
    out = one_line_error(CliRunner().invoke(cli, ["--config", cfg, "run"]))
    assert f"the page cannot listen on 127.0.0.1:{busy_port}: the port is in use" in out
    assert f"Change [web] listen in {cfg}" in out


@pytest.mark.parametrize("listen,why", [
    ("192.0.2.1:8080", "that address is not one of this machine's"),
    ("999.1.1.1:8080", "the host is not known"),
])
def test_run_on_an_address_it_cannot_have_is_one_line(tmp_path, listen, why):
    out = one_line_error(CliRunner().invoke(cli, ["--config", config_file(tmp_path, listen), "run"]))
    assert why in out


def test_a_port_out_of_range_is_refused_by_the_config_check(tmp_path):
    out = one_line_error(CliRunner().invoke(cli, ["--config", config_file(tmp_path, "127.0.0.1:80800"), "run"]))
    assert "'web.listen' has the port 80800" in out


@pytest.mark.system  # a real smsgenie process
def test_run_never_logs_the_set_up_pin_and_setup_pin_prints_it(tmp_path):
    cfg = config_file(tmp_path, "127.0.0.1:0")
    proc = subprocess.Popen([sys.executable, "-m", "smsgenie", "--config", cfg, "run"], stderr=subprocess.PIPE,
                            text=True)
    lines = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if "first run" in line:
                break
        pin = CliRunner().invoke(cli, ["--config", cfg, "setup-pin"]).output.strip()
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=20)
    log = "".join(lines) + (rest or "")
    assert re.fullmatch(r"\d{6}", pin), pin
    assert "set-up PIN on the counter panel" in log and "smsgenie setup-pin" in log
    assert pin not in log  # the journal outlives the set-up: the PIN is never in it
    assert proc.returncode == 0


def test_the_demo_on_a_port_in_use_fails_before_making_anything(tmp_path, busy_port):
    folder = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--data-dir", str(folder), "--port", str(busy_port), "--until-idle"])
    out = one_line_error(result)
    assert "the port is in use" in out and "--port" in out
    assert not folder.exists()


def test_commands_are_listed_by_concern():
    out = CliRunner().invoke(cli, ["--help"]).output
    headings = [line.strip() for line in out.splitlines() if line.strip().endswith(":") and not line.startswith(" ")]
    assert headings[-7:] == ["Sending:", "Credits:", "Compliance:", "People:", "Customers:", "The box's upkeep:",
                             "Vendor:"], out
