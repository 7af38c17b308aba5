"""The daemon as a systemd service: READY, WATCHDOG and STOPPING over a real notify socket.

systemd's side is played by a unix datagram socket bound in the test, the
same kind of socket systemd passes in NOTIFY_SOCKET.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from appliance.sdnotify import Notifier
from tests.conftest import running_daemon, wait_for


class NotifySocket:
    """What systemd listens on: collects every datagram with the time it arrived."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.received: list[tuple[float, dict[str, str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.received.append((time.monotonic(), fields))

    def times(self, key: str, since: float = 0.0) -> list[float]:
        return [t for t, f in list(self.received) if key in f and t >= since]

    def close(self):
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path):
    s = NotifySocket(tmp_path / "notify")
    yield s
    s.close()


def test_notifier_is_silent_outside_systemd():
    n = Notifier.from_environ({})
    assert not n.active and n.watchdog_interval is None
    assert n.ready() is False and n.watchdog() is False


def test_notifier_reads_the_environment_and_ignores_another_process_watchdog(tmp_path):
    n = Notifier.from_environ({"NOTIFY_SOCKET": "@abstract", "WATCHDOG_USEC": "30000000"})
    assert n.active and n.watchdog_interval == 30.0
    assert Notifier.from_environ({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "30000000",
                                  "WATCHDOG_PID": "1"}).watchdog_interval is None


def test_notifier_survives_a_vanished_socket(tmp_path, caplog):
    n = Notifier(str(tmp_path / "gone"))
    assert n.ready() is False
    assert n.watchdog() is False
    assert caplog.text.count("cannot notify the service manager") == 1


@pytest.mark.system  # a real smsgenie process
def test_smsgenie_run_says_ready_pings_the_watchdog_and_says_stopping(tmp_path, sim, notify_socket):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "d"}"\n[modem]\nport = "{sim.port}"\n[web]\nlisten = ""\n')
    env = {"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": "400000", "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-m", "smsgenie", "--config", str(cfg), "run"],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_for(lambda: notify_socket.times("READY"), 20, message="READY=1")
        ready = notify_socket.times("READY")[0]
        wait_for(lambda: len(notify_socket.times("WATCHDOG", ready)) >= 5, 10, message="five watchdog pings")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    pings = notify_socket.times("WATCHDOG", ready)
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert max(gaps) < 0.4, f"a ping came later than WATCHDOG_USEC allows: {gaps}"
    assert notify_socket.times("STOPPING")
    ready_fields = next(f for _, f in notify_socket.received if "READY" in f)
    assert ready_fields["STATUS"] == "sending through 1 modem(s)"


def test_a_stuck_sending_loop_stops_the_pings_and_they_resume_when_it_moves(config, notify_socket, caplog):
    notifier = Notifier(notify_socket.path, watchdog_usec=200_000)
    stuck, release = threading.Event(), threading.Event()
    with running_daemon(config, notifier=notifier, stuck_after=1.0) as daemon:
        worker = daemon.workers[0]
        real_step = worker.step

        def step():
            if stuck.is_set():
                release.wait(30)  # a driver call that never returns, say
                stuck.clear()
            return real_step()

        worker.step = step
        wait_for(lambda: len(notify_socket.times("WATCHDOG")) >= 3, 10, message="pings while healthy")
        stuck.set()
        hung_at = time.monotonic()
        wait_for(lambda: notify_socket.times("STATUS", hung_at), 10, message="the stuck status")
        silent_from = time.monotonic()
        time.sleep(1.0)
        # stuck_after is at least 2 * send_timeout (1 s here): the last ping came before the loop was late
        assert not notify_socket.times("WATCHDOG", silent_from), "pings went on while the loop was stuck"
        assert notify_socket.times("WATCHDOG", hung_at)[-1:] <= [hung_at + 2.5]
        assert "sending loop stuck" in caplog.text
        release.set()
        wait_for(lambda: notify_socket.times("WATCHDOG", silent_from), 10, message="pings after recovery")
    assert "watchdog pings resume" in caplog.text
