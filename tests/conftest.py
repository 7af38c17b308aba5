"""Shared fixtures: a simulated modem on a real pty, configs, clocks, a running daemon."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import pytest

from appliance.clock import FakeClock, SystemClock
from appliance.config import Config, ModemConfig, QueueConfig, WebConfig
from appliance.daemon import Daemon
from appliance.db import Database, ensure_data_dir
from appliance.modemstatus import ModemStatusBoard
from appliance.policy import NO_CAPS
from appliance.reports import DeliveryReports
from appliance.sendqueue import SendQueue
from appliance.settings import ShopSettings as BoxSettings
from hw.modem.sim import SimulatedModem


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.01, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def modem_statuses(q: SendQueue) -> dict[str, dict]:
    """What the workers last published about their modems, by port."""
    return ModemStatusBoard(q.db, q.clock).all()


def report(q: SendQueue, reference: int, recipient: str, outcome: str, status_code: int, reason: str,
           submitted_at: float | None = None):
    """A delivery report arriving for the part with this reference."""
    return DeliveryReports(q.db, q.clock).apply(reference, recipient, outcome, status_code, reason,
                                                submitted_at=submitted_at)


@pytest.fixture
def sim(tmp_path):
    modem = SimulatedModem(directory=str(tmp_path / "sim"))
    modem.start()
    yield modem
    modem.close()


@pytest.fixture
def make_config(tmp_path, sim):
    def make(**queue) -> Config:
        q = {"max_attempts": 3, "retry_base_seconds": 0.05, "retry_cap_seconds": 0.2, **queue}
        return Config(data_dir=str(tmp_path / "data"), service_code="YL08", web=WebConfig(listen=""),
                      modems=(ModemConfig(port=sim.port, **NO_CAPS, command_timeout=1.0, send_timeout=1.0),),
                      queue=QueueConfig(**q))
    return make


@pytest.fixture
def config(make_config):
    return make_config()


@pytest.fixture
def fake_clock():
    return FakeClock()


@pytest.fixture
def queue(config, request):
    """The test's view of the daemon's queue, on the same clock as the daemon."""
    clock = request.getfixturevalue("fake_clock") if "fake_clock" in request.fixturenames else SystemClock()
    db = Database.in_data_dir(config.data_dir)
    give_vendor_list(db, clock)
    q = SendQueue(db, clock)
    q.ledger.adjust(1_000_000, "credit for tests that are not about credit")
    yield q
    db.close()


SIGNATURE = "【测试店】"


def sent_rows(q) -> list[dict]:
    """The record's rows about messages (not the rows that say how a list was screened), oldest first."""
    return [r for r in q.audit.rows(0, 1e12) if r["message_id"] is not None]


def give_vendor_list(db, clock=None, *, gate: str = "paper") -> None:
    """A box set up to send marketing: the vendor's forbidden words (the image installs them), the shop's
    【signature】 (asked at first-run set-up), and the consent gate relaxed to "paper", so the tests that are
    not about consent need no customer book (tests/test_customers.py tests the gate). Without the list or
    the signature a box refuses marketing lists; test_compliance.py tests a box without them."""
    from appliance.keywords import KeywordStore, VendorList
    from appliance.settings import ShopSettings

    KeywordStore(db, clock or SystemClock()).replace_vendor(VendorList(["代开发票", "赌博"], 1, "2026-11-01"))
    with ShopSettings(db.path.parent) as s:
        s.set("signature", SIGNATURE)
        s.set("consent_gate", gate)


@pytest.fixture
def q(tmp_path, fake_clock):
    """A box's queue on a fake clock, with 1,000 credits (test_queue.py has its own, with more)."""
    db = Database.in_data_dir(tmp_path / "data")
    give_vendor_list(db, fake_clock)
    queue = SendQueue(db, fake_clock)
    queue.ledger.adjust(1000, "credit")
    yield queue
    db.close()


def make_box(data_dir, service_code: str = "YL08"):
    """An existing box in ``data_dir`` (as 'smsgenie init' makes it) with its own config.toml, which the
    command line uses when given --data-dir alone (as for the demo's folder)."""
    db = Database.in_data_dir(data_dir)
    give_vendor_list(db)
    db.close()
    path = Path(data_dir) / "config.toml"
    path.write_text(f'data_dir = "{data_dir}"\nservice_code = "{service_code}"\n[web]\nlisten = ""\n',
                    encoding="utf-8")
    return path


def real_time_box(data_dir) -> None:
    """A test on the real clock cannot choose the time of day it runs at: unless it set quiet hours
    itself, its box has none, so marketing lists send at 22:00 as at noon. (The quiet hours are
    tested on a FakeClock set to the hour, in test_policy.py.)"""
    s = BoxSettings(ensure_data_dir(data_dir))
    try:
        if not s.is_set("quiet_hours"):
            s.set("quiet_hours", "")
    finally:
        s.close()


@contextlib.contextmanager
def running_daemon(config, clock=None, poll_interval=0.02, **kwargs):
    if clock is None or isinstance(clock, SystemClock):
        real_time_box(config.data_dir)
    daemon = Daemon(config, clock=clock, poll_interval=poll_interval, **kwargs)
    errors = []

    def target():
        try:
            daemon.run()
        except BaseException as exc:  # surfaced by the test below
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield daemon
    finally:
        daemon.stop()
        thread.join(timeout=15)
        assert not thread.is_alive(), "daemon did not stop"
        if errors:
            raise errors[0]


@pytest.fixture
def make_sims(tmp_path):
    """Several simulated modems, each on its own pty."""
    made = []

    def make(n, **kwargs):
        for _ in range(n):
            sim = SimulatedModem(directory=str(tmp_path / f"sim{len(made) + 1}"), **kwargs)
            sim.start()
            made.append(sim)
        return made[-n:]

    yield make
    for sim in made:
        sim.close()


def pool_config(tmp_path, sims, carriers=None, **modem):
    """A config with one [[modem]] per simulated modem; caps off unless given."""
    carriers = carriers or [""] * len(sims)
    settings = {**NO_CAPS, "command_timeout": 1.0, "send_timeout": 1.0, **modem}
    return Config(data_dir=str(tmp_path / "data"), service_code="YL08", web=WebConfig(listen=""),
                  modems=tuple(ModemConfig(port=s.port, label=f"m{i + 1}", carrier=c, **settings)
                               for i, (s, c) in enumerate(zip(sims, carriers))),
                  queue=QueueConfig(max_attempts=3, retry_base_seconds=0.05, retry_cap_seconds=0.2))


def trusting(box):
    """An SSL context that trusts ``box``'s own CA (a RunningBox whose page is HTTPS), as a shop's
    computer does once it has installed the CA; None when the page is plain HTTP."""
    import ssl

    certificates = box.web.certificates
    return ssl.create_default_context(cafile=str(certificates.ca)) if certificates else None
