"""The daemon as a real process, killed without warning.

``smsgenie run`` runs in a subprocess against the simulated modem (which
lives in this test process, so it outlives every daemon). SIGKILL at random
moments during a 200-message send, 20 times, then a clean run to the end.
After every kill and at the end: no message lost, no part handed to the
network twice, whatever was in flight is ``uncertain``, and the ledger
balances exactly: the top-up less what each message cost by its state.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from appliance import config as configmod
from appliance.clock import SystemClock
from appliance.config import Config, ModemConfig, WebConfig
from appliance.db import Database
from appliance.plan import plan_message
from appliance.policy import NO_CAPS
from appliance.sendqueue import SendQueue
from hw.modem.sim import SimulatedModem
from tests.conftest import modem_statuses, real_time_box, wait_for

pytestmark = pytest.mark.system

TOTAL = 200
KILLS = 20
TOPUP = 1000


def start_daemon(config_file, log):
    return subprocess.Popen([sys.executable, "-m", "smsgenie", "--config", str(config_file), "run"],
                            stdout=log, stderr=subprocess.STDOUT)


def check_ledger(q):
    """Every credit is accounted for: what each message cost matches what became of it."""
    assert q.ledger.balance() == q.db.execute("SELECT COALESCE(SUM(credits), 0) FROM ledger").fetchone()[0] >= 0
    expected_total = 0
    for m in q.messages(limit=TOTAL + 10):
        if m.state == "queued":
            expected = 0  # never claimed, or claimed and refunded when put back
        elif m.state == "failed":
            expected = len(m.accepted)  # only what the network took
        else:  # sending, sent, delivered, expired, uncertain: every part is paid for
            expected = m.segments
        assert q.ledger.charged(m.id) == expected, f"message {m.id} ({m.state}) cost {q.ledger.charged(m.id)}"
        expected_total += expected
    assert q.ledger.balance() == TOPUP - expected_total


def check_no_double_send(sim, q):
    """No part of any message reached the network twice."""
    parts = Counter((a.recipient, a.concat.sequence if a.concat else 1) for a in sim.accepted)
    doubled = {k: n for k, n in parts.items() if n > 1}
    assert not doubled, f"sent twice: {doubled}"
    by_recipient = {m.recipient: m for m in q.messages(limit=TOTAL + 10)}
    for (recipient, _seq), _n in parts.items():
        assert recipient in by_recipient, "the network got a message the queue does not know"


@pytest.fixture
def setup(tmp_path):
    sim = SimulatedModem(directory=str(tmp_path / "sim"), send_latency=0.04, report_delay=0.01)
    sim.start()
    config = Config(data_dir=str(tmp_path / "data"), service_code="YL08", web=WebConfig(listen=""),
                    modems=(ModemConfig(port=sim.port, **NO_CAPS, command_timeout=2.0, send_timeout=2.0),))
    config_file = tmp_path / "config.toml"
    config_file.write_text(configmod.dump(config))
    real_time_box(config.data_dir)  # smsgenie run on the real clock: no quiet hours
    db = Database.in_data_dir(config.data_dir)
    q = SendQueue(db, SystemClock())
    q.ledger.adjust(TOPUP, "credit for the crash trial")
    list_id = q.create_list("crash.csv", "YL08")
    short, long_ = plan_message("您好，会员日全场9折。【小王便利店】"), plan_message("Order ready. " * 15)
    recipients = [f"+86139{i:08d}" for i in range(TOTAL)]
    ids = []
    for i, r in enumerate(recipients):  # every 5th message has two parts
        ids += q.enqueue(list_id, [r], long_ if i % 5 == 0 else short, "YL08")
    yield sim, config, config_file, q, ids, tmp_path
    db.close()
    sim.close()


def test_sigkill_at_random_moments_loses_nothing_and_sends_nothing_twice(setup):
    sim, config, config_file, q, ids, tmp_path = setup
    rng = random.Random(int(os.environ.get("SMSGENIE_CRASH_SEED", "20261125")))
    in_flight: set[int] = set()
    log = open(tmp_path / "daemon.log", "ab")
    for kill in range(KILLS):
        proc = start_daemon(config_file, log)
        if kill % 2:  # any moment from the start on
            time.sleep(rng.uniform(0.2, 0.7))
        else:  # a moment while it sends: a loaded machine may take longer than 0.7 s to start sending
            before = len(sim.accepted)
            wait_for(lambda before=before, proc=proc: len(sim.accepted) > before or proc.poll() is not None, 30,
                     interval=0.01, message="the daemon sending")
            time.sleep(rng.uniform(0, 0.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        counts = q.counts()
        assert sum(counts.values()) == TOTAL, "a message vanished"
        in_flight |= {m.id for m in q.messages("sending")}
        check_no_double_send(sim, q)
        check_ledger(q)
    progress = q.counts()
    assert 0 < progress["queued"] < TOTAL, "the kills should land while the list is being sent"
    assert in_flight, "no kill caught a message in flight"

    proc = start_daemon(config_file, log)
    try:
        wait_for(lambda: (lambda c: c["queued"] == c["sending"] == c["sent"] == 0)(q.counts()), 120,
                 interval=0.1, message="the queue to drain")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, "SIGTERM did not stop the daemon cleanly"
    log.close()

    final = q.counts()
    check_ledger(q)
    assert sum(final.values()) == TOTAL
    assert final["queued"] == final["sending"] == 0
    check_no_double_send(sim, q)
    accepted = Counter(a.recipient for a in sim.accepted)
    for m in q.messages(limit=TOTAL):
        if m.state == "delivered":
            assert accepted[m.recipient] == m.segments
        else:
            assert m.state == "uncertain", f"message {m.id} ended {m.state}: {m.error}"
            assert accepted[m.recipient] <= m.segments
    for mid in in_flight:  # in flight at a kill: uncertain, unless the network confirmed every part
        m = q.get(mid)
        assert m.state == "uncertain" or len(m.accepted) == m.segments
    assert final["uncertain"] == len([m for m in q.messages("uncertain")])
    assert modem_statuses(q)[sim.port]["state"] == "stopped"
