"""One daemon per data dir: the lock, and "is it running?" asked without ever getting in its way."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from appliance.errors import DaemonAlreadyRunning
from appliance.lock import LOCK_NAME, DataDirLock


def test_held_while_a_daemon_holds_the_lock_here_or_in_another_process(tmp_path):
    assert not DataDirLock.held(tmp_path)
    with DataDirLock(tmp_path):
        assert DataDirLock.held(tmp_path)
        with pytest.raises(DaemonAlreadyRunning, match=r"pid \d+"):
            DataDirLock(tmp_path).acquire()
    assert not DataDirLock.held(tmp_path)  # the file stays, with the old pid: not running
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from appliance.lock import DataDirLock; "
                               f"DataDirLock({str(tmp_path)!r}).acquire(); print('locked', flush=True); "
                               "time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert DataDirLock.held(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert not DataDirLock.held(tmp_path)  # the kernel dropped the lock with the process


def test_asking_never_makes_a_starting_daemon_refuse_to_start(tmp_path):
    """status, the dashboard and the panel ask "running?" often; a daemon starting meanwhile must start."""
    stop = threading.Event()

    def ask():
        while not stop.is_set():
            DataDirLock.held(tmp_path)

    askers = [threading.Thread(target=ask) for _ in range(4)]
    for t in askers:
        t.start()
    refused = 0
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            lock = DataDirLock(tmp_path)
            try:
                lock.acquire()
            except DaemonAlreadyRunning:
                refused += 1
            else:
                lock.release()
    finally:
        stop.set()
        for t in askers:
            t.join()
    assert refused == 0, f"a daemon was refused {refused} times only because someone asked whether it ran"


def test_without_the_kernel_table_the_holder_pid_answers(tmp_path):
    no_table = str(tmp_path / "no-proc-locks")
    (tmp_path / LOCK_NAME).write_text("999999999\n")  # a pid no process has
    assert not DataDirLock.held(tmp_path, proc_locks=no_table)
    with DataDirLock(tmp_path):
        assert DataDirLock.held(tmp_path, proc_locks=no_table)
