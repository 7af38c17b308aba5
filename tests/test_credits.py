"""Prepaid credit: the ledger, charging per part, and vendor-signed top-up codes."""

from __future__ import annotations

import binascii
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections import Counter
from datetime import date, timedelta

import pytest
from click.testing import CliRunner

from appliance import crockford, receipt, topup, vendor
from appliance.clock import SystemClock
from appliance.db import Database
from appliance.device import DeviceIdError, device_id, device_id_bytes, format_device_id, parse_device_id
from appliance.errors import (
    InsufficientCredit,
    TopUpAlreadyRedeemed,
    TopUpExpired,
    TopUpForged,
    TopUpTypo,
    TopUpUnsupported,
    TopUpWrongDevice,
    VendorKeyError,
)
from appliance.plan import plan_message
from appliance.sendqueue import RetryPolicy, SendQueue
from smsgenie.cli import cli
from tests.conftest import make_box, report, running_daemon, wait_for

BOX = device_id_bytes("pi:10000000abcdef01")
OTHER_BOX = device_id_bytes("pi:10000000abcdef02")
TODAY = date(2026, 11, 25)


@pytest.fixture
def keys(tmp_path):
    key_path, pub_path = vendor.keygen(tmp_path / "vendor")
    private = vendor.load_private_key(key_path)
    public, key_id = vendor.parse_public_key(pub_path.read_text())
    return private, public, key_id, pub_path.read_text().strip()


@pytest.fixture
def bare_queue(tmp_path, fake_clock):
    """A queue with no credit at all."""
    db = Database.in_data_dir(tmp_path / "credits")
    yield SendQueue(db, fake_clock)
    db.close()


def code_for(private, credits=100, device=BOX, expires=None, serial=None, issued=TODAY):
    return topup.sign(private, device=device, serial=serial or os.urandom(6), credits=credits, issued=issued,
                      expires=expires)


def enqueue(q, n, text="您好，您的订单已到店。", start=0):
    return q.enqueue(None, [f"+86137{start + i:08d}" for i in range(n)], plan_message(text), "YL08")


# --- the ledger --------------------------------------------------------------------------


def test_ledger_never_goes_negative_even_when_asked_directly(bare_queue):
    ledger = bare_queue.ledger
    assert ledger.adjust(5, "opening credit") == 5
    with pytest.raises(InsufficientCredit, match="6 credits needed, the balance is 5"):
        with bare_queue.db.atomic() as conn:
            ledger.record(conn, "debit", -6)
    with pytest.raises(sqlite3.IntegrityError):  # the database itself refuses, whatever the code does
        bare_queue.db.execute("INSERT INTO ledger (at, kind, credits, balance) VALUES (0, 'debit', -6, -1)")
    assert ledger.balance() == 5
    with pytest.raises(ValueError, match="needs a note"):
        ledger.adjust(1, " ")


def test_claim_pays_for_its_parts_in_the_same_transaction(bare_queue):
    q = bare_queue
    q.ledger.adjust(3, "credit")
    (mid,) = enqueue(q, 1, "x" * 200)  # two parts
    m = q.claim()
    assert (m.id, m.state, m.claim_charge) == (mid, "sending", 2)
    assert q.ledger.balance() == 1
    assert [(e.kind, e.credits, e.message_id, e.message_state) for e in q.ledger.history()][-1] == \
        ("debit", -2, mid, "sending")


def test_three_part_message_with_two_credits_does_not_go(bare_queue):
    q = bare_queue
    q.ledger.adjust(2, "credit")
    (mid,) = enqueue(q, 1, "y" * 400)  # three parts
    assert q.claim() is None
    assert str(q.shortfall) == f"out of credit: message {mid} needs 3 credits, the balance is 2. Top up to resume"
    assert q.get(mid).state == "queued" and q.ledger.balance() == 2
    assert q.waiting_for_credit() == q.shortfall


def test_refunds_follow_what_did_not_go(bare_queue):
    q = bare_queue
    q.ledger.adjust(100, "credit")
    refused, retried = enqueue(q, 2)
    (partial,) = enqueue(q, 1, "z" * 300, 10)
    uncertain, reported = enqueue(q, 2, start=20)
    q.claim()
    q.fail(refused, "the number is not assigned")  # never reached the network: refunded
    q.claim()
    q.retry_later(retried, "congestion", RetryPolicy())  # back in the queue: refunded until it goes
    q.claim()
    q.record_segment(partial, 1, 7)
    q.fail(partial, "part 2 of 2: barred")  # part 1 went: it stays paid, part 2 refunded
    q.claim()
    q.mark_uncertain(uncertain, "modem went quiet")  # most likely went out: stays paid
    q.claim()
    q.record_segment(reported, 1, 9)
    q.mark_sent(reported)
    report(q, 9, q.get(reported).recipient, "failed", 0x41, "incompatible destination")  # network took it
    charged = {m: q.ledger.charged(m) for m in (refused, retried, partial, uncertain, reported)}
    assert charged == {refused: 0, retried: 0, partial: 1, uncertain: 1, reported: 1}
    assert q.ledger.balance() == 100 - 3
    q.clock.advance(60)  # past the retry's backoff
    again = q.claim()
    assert again.id == retried and q.ledger.charged(retried) == 1  # paid again when it is sent


def test_the_ledger_shows_an_uncertain_message_stays_charged(bare_queue, tmp_path):
    q = bare_queue
    q.ledger.adjust(5, "opening credit")
    (mid,) = enqueue(q, 1)
    q.claim()
    q.mark_uncertain(mid, "the modem went quiet")
    config = tmp_path / "c.toml"
    config.write_text(f'data_dir = "{q.db.path.parent}"\n')
    out = CliRunner().invoke(cli, ["--config", str(config), "ledger"]).output
    assert f"message {mid} (uncertain) - stays charged, it most likely went out" in out
    assert "correction" in out and "opening credit" in out


def test_put_back_and_crash_recovery_refund_unsent_claims(bare_queue):
    q = bare_queue
    q.ledger.adjust(10, "credit")
    a, b, c = enqueue(q, 3)
    q.claim()
    q.unclaim(a)
    assert q.ledger.balance() == 10
    mb = q.claim()
    q.claim()  # c: claimed, never handed over
    assert q.ledger.balance() == 8
    assert q.recover_interrupted({(b, mb.sending_at)}) == (1, 1)
    assert q.get(b).state == "uncertain" and q.ledger.charged(b) == 1
    assert q.get(c).state == "queued" and q.ledger.charged(c) == 0
    assert q.ledger.balance() == 9


def test_exactly_as_many_go_as_the_credit_covers_then_the_rest_after_a_top_up(sim, make_config, tmp_path, keys):
    private, public, key_id, _line = keys
    config = make_config()
    db = Database.in_data_dir(config.data_dir)
    q = SendQueue(db, SystemClock())
    q.ledger.adjust(10, "credit for 10 parts")
    ids = enqueue(q, 20)
    with running_daemon(config):
        wait_for(lambda: q.waiting_for_credit() is not None and q.counts()["sending"] == 0, 15,
                 message="sending to stop at zero credit")
        assert len(sim.accepted) == 10
        assert Counter(q.get(i).state for i in ids)["queued"] == 10
        assert q.ledger.balance() == 0
        assert "out of credit" in str(q.waiting_for_credit())
        status = CliRunner().invoke(cli, ["--data-dir", config.data_dir, "status", "--json"]).output
        assert '"balance": 0' in status and "out of credit" in status
        verified = topup.verify(code_for(private, 10), public, key_id, BOX, TODAY)
        topup.redeem(q, verified)  # the daemon resumes by itself
        wait_for(lambda: all(q.get(i).state in ("sent", "delivered") for i in ids), 15,
                 message="resume after top-up")
    assert len(sim.accepted) == 20 and q.ledger.balance() == 0
    db.close()


# --- top-up codes -----------------------------------------------------------------------------


def test_a_valid_code_credits_exactly_once(bare_queue, keys):
    private, public, key_id, _ = keys
    code = code_for(private, 250)
    verified = topup.verify(code, public, key_id, BOX, TODAY)
    assert (verified.credits, verified.device, verified.issued) == (250, BOX, TODAY)
    assert topup.redeem(bare_queue, verified) == 250
    with pytest.raises(TopUpAlreadyRedeemed, match="already redeemed on .* \\(\\+250 credits\\)"):
        topup.redeem(bare_queue, topup.verify(code, public, key_id, BOX, TODAY))
    assert bare_queue.ledger.balance() == 250


def test_a_code_is_forgiving_about_how_it_is_typed(keys):
    private, public, key_id, _ = keys
    code = code_for(private)
    sloppy = code.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert topup.verify(sloppy, public, key_id, BOX, TODAY).credits == 100


def tamper(code: str, position: int) -> str:
    raw = crockford.normalise(code)
    ch = raw[position]
    return raw[:position] + ("Z" if ch != "Z" else "Y") + raw[position + 1:]


def test_each_refusal_has_its_own_reason(bare_queue, keys, tmp_path):
    private, public, key_id, _ = keys
    other_key = vendor.load_private_key(vendor.keygen(tmp_path / "forger")[0])
    good = code_for(private)
    messages: dict[str, set[str]] = {}

    def refused(exc_type, code, today=TODAY, device=BOX):
        with pytest.raises(exc_type) as info:
            topup.verify(code, public, key_id, device, today)
        messages.setdefault(exc_type.__name__, set()).add(str(info.value))
        return str(info.value)

    assert "typo" in refused(TopUpTypo, tamper(good, 40))  # a mistyped character
    assert "too short" in refused(TopUpTypo, good[:-6])  # truncated
    assert "too long" in refused(TopUpTypo, good + "7")
    assert "'U' is not used" in refused(TopUpTypo, "U" + crockford.normalise(good)[1:])
    assert "not issued by your vendor" in refused(TopUpForged, code_for(other_key))
    # a flipped bit with a matching checksum (someone editing the credits) still fails the signature
    raw = bytearray(crockford.decode(crockford.normalise(good)))
    raw[16] ^= 0x01
    body = bytes(raw[:-2])
    edited = crockford.encode(body + binascii.crc_hqx(body, 0xFFFF).to_bytes(2, "big"))
    assert "not issued by your vendor" in refused(TopUpForged, edited)
    assert f"for box {format_device_id(OTHER_BOX)}" in refused(TopUpWrongDevice, code_for(private, device=OTHER_BOX))
    expired = code_for(private, expires=TODAY, issued=TODAY - timedelta(days=30))
    assert topup.verify(expired, public, key_id, BOX, TODAY).expires == TODAY  # valid through its last day
    assert f"expired on {TODAY.isoformat()}" in refused(TopUpExpired, expired, today=TODAY + timedelta(days=1))
    topup.redeem(bare_queue, topup.verify(good, public, key_id, BOX, TODAY))
    with pytest.raises(TopUpAlreadyRedeemed) as info:
        topup.redeem(bare_queue, topup.verify(good, public, key_id, BOX, TODAY))
    messages["TopUpAlreadyRedeemed"] = {str(info.value)}
    # five reasons, and no message of one reason is the message of another
    assert len(messages) == 5
    for reason, texts in messages.items():
        for other, other_texts in messages.items():
            assert other == reason or not texts & other_texts


def test_a_newer_format_is_named_as_such(keys):
    private, public, key_id, _ = keys
    raw = bytearray(crockford.decode(crockford.normalise(code_for(private))))
    raw[0] = 3
    body = bytes(raw[:-2])
    newer = crockford.encode(body + binascii.crc_hqx(body, 0xFFFF).to_bytes(2, "big"))
    with pytest.raises(TopUpUnsupported, match="format 3; this box reads formats up to 2"):
        topup.verify(newer, public, key_id, BOX, TODAY)


def test_a_code_that_needs_a_newer_keyword_list_waits_for_it(bare_queue, keys):
    """Format 2 carries the oldest vendor keyword list the box must have: new words come with the credit."""
    from appliance.errors import TopUpNeedsKeywords
    from appliance.keywords import KeywordStore, VendorList

    private, public, key_id, _ = keys
    code = topup.sign(private, device=BOX, serial=os.urandom(6), credits=80, issued=TODAY, expires=None,
                      min_keywords=7)
    assert len(crockford.normalise(code)) == topup.CHARS[2] == 141
    verified = topup.verify(code, public, key_id, BOX, TODAY)
    assert verified.min_keywords == 7 and verified.credits == 80
    with pytest.raises(TopUpNeedsKeywords, match="needs the vendor's keyword list version 7 or newer, and this box "
                                                 "has no vendor list"):
        topup.redeem(bare_queue, verified)
    store = KeywordStore(bare_queue.db, bare_queue.clock)
    store.replace_vendor(VendorList(["发票"], 6, "2026-11-01"))
    with pytest.raises(TopUpNeedsKeywords, match="has version 6.*Nothing was spent"):
        topup.redeem(bare_queue, verified)
    assert bare_queue.ledger.balance() == 0
    store.replace_vendor(VendorList(["发票", "套现"], 7, "2026-12-01"))
    assert topup.redeem(bare_queue, verified) == 80
    tampered = tamper(code, 40)
    with pytest.raises((TopUpTypo, TopUpForged)):
        topup.verify(tampered, public, key_id, BOX, TODAY)
    assert topup.verify(code_for(private), public, key_id, BOX, TODAY).min_keywords == 0  # format 1 still reads


def test_vendor_mint_asks_for_a_keyword_list(tmp_path, keys):
    runner = CliRunner()
    out = tmp_path / "v"
    runner.invoke(cli, ["vendor", "keygen", "--out", str(out)])
    result = runner.invoke(cli, ["vendor", "mint", "--key", str(out / "vendor.key"), "--device",
                                 format_device_id(BOX), "--credits", "50", "--min-keywords", "3"])
    public, key_id = vendor.parse_public_key((out / "vendor.pub").read_text())
    assert topup.verify(result.output.strip(), public, key_id, BOX, date.today()).min_keywords == 3


def test_replay_is_refused_after_a_restart(tmp_path, keys, fake_clock):
    private, public, key_id, _ = keys
    code = code_for(private, 40)
    db = Database.in_data_dir(tmp_path / "box")
    topup.redeem(SendQueue(db, fake_clock), topup.verify(code, public, key_id, BOX, TODAY))
    db.close()
    db = Database.in_data_dir(tmp_path / "box")  # the box restarted
    with pytest.raises(TopUpAlreadyRedeemed):
        topup.redeem(SendQueue(db, fake_clock), topup.verify(code, public, key_id, BOX, TODAY))
    db.close()


def test_a_crash_mid_redeem_neither_loses_nor_doubles_the_code(tmp_path, keys):
    """The process is SIGKILLed inside the redeem transaction, after the ledger entry was written."""
    private, public, key_id, line = keys
    code = code_for(private, 70)
    data = tmp_path / "box"
    child = textwrap.dedent(f"""
        import os, signal, sys
        from datetime import date
        from appliance import topup, vendor
        from appliance.clock import SystemClock
        from appliance.db import Database
        from appliance.ledger import Ledger
        from appliance.sendqueue import SendQueue
        record = Ledger.record
        def record_then_die(self, *a, **k):
            record(self, *a, **k)
            os.kill(os.getpid(), signal.SIGKILL)
        Ledger.record = record_then_die
        public, key_id = vendor.parse_public_key({line!r})
        q = SendQueue(Database.in_data_dir({str(data)!r}), SystemClock())
        topup.redeem(q, topup.verify({code!r}, public, key_id, {BOX!r}, date({TODAY.year}, {TODAY.month}, {TODAY.day})))
    """)
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    db = Database.in_data_dir(data)
    q = SendQueue(db, SystemClock())
    assert q.ledger.balance() == 0  # not credited ...
    assert db.execute("SELECT COUNT(*) FROM spent_code").fetchone()[0] == 0  # ... and not spent
    assert topup.redeem(q, topup.verify(code, public, key_id, BOX, TODAY)) == 70
    with pytest.raises(TopUpAlreadyRedeemed):
        topup.redeem(q, topup.verify(code, public, key_id, BOX, TODAY))
    db.close()


# --- device id ------------------------------------------------------------------------------------


def test_device_id_sources_and_format(tmp_path):
    tree, cpuinfo, mid = tmp_path / "serial-number", tmp_path / "cpuinfo", tmp_path / "machine-id"
    mid.write_text("0123456789abcdef0123456789abcdef\n")
    from_machine = device_id(device_tree=str(tree), cpuinfo=str(cpuinfo), machine_id=str(mid))
    cpuinfo.write_text("processor\t: 0\nSerial\t\t: 10000000abcdef01\nModel\t: Raspberry Pi 4\n")
    from_cpuinfo = device_id(device_tree=str(tree), cpuinfo=str(cpuinfo), machine_id=str(mid))
    tree.write_bytes(b"10000000abcdef01\x00")
    from_tree = device_id(device_tree=str(tree), cpuinfo=str(cpuinfo), machine_id=str(mid))
    assert from_tree == from_cpuinfo == BOX != from_machine  # the Pi's serial wins, wherever it is read
    text = format_device_id(BOX)
    assert len(text) == 9 and text[4] == "-" and not set(text) & set("ILOU")
    assert parse_device_id(text.lower().replace("0", "o")) == BOX
    with pytest.raises(DeviceIdError, match="looks like"):
        parse_device_id("ABC")
    with pytest.raises(DeviceIdError, match="cannot tell which box"):
        device_id(device_tree=str(tmp_path / "x"), cpuinfo=str(tmp_path / "y"), machine_id=str(tmp_path / "z"))


# --- the command line ---------------------------------------------------------------------------------


@pytest.fixture
def box_cli(tmp_path, keys, monkeypatch):
    _, _, _, line = keys
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[vendor]\npublic_key = "{line}"\n')
    make_box(tmp_path / "data")
    monkeypatch.setattr("smsgenie.cli.common.this_device_id", lambda *_: BOX)
    monkeypatch.delenv("SMSGENIE_DATA_DIR", raising=False)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, ["--config", str(config), *args])


def test_vendor_keygen_and_mint(tmp_path):
    runner = CliRunner()
    out = tmp_path / "v"
    result = runner.invoke(cli, ["vendor", "keygen", "--out", str(out)])
    assert result.exit_code == 0 and 'public_key = "ed25519:' in result.output
    assert stat.S_IMODE(os.stat(out / "vendor.key").st_mode) == 0o600
    again = runner.invoke(cli, ["vendor", "keygen", "--out", str(out)])
    assert again.exit_code == 1 and "never overwritten" in again.output
    result = runner.invoke(cli, ["vendor", "mint", "--key", str(out / "vendor.key"), "--device",
                                 format_device_id(BOX), "--credits", "50", "--count", "3", "--expires", "2027-06-30"])
    codes = result.output.split()
    assert result.exit_code == 0 and len(codes) == 3 and len(set(codes)) == 3
    public, key_id = vendor.parse_public_key((out / "vendor.pub").read_text())
    assert all(topup.verify(c, public, key_id, BOX, TODAY).expires == date(2027, 6, 30) for c in codes)
    csv_path = tmp_path / "codes.csv"
    result = runner.invoke(cli, ["vendor", "mint", "--key", str(out / "vendor.key"), "--device",
                                 format_device_id(BOX), "--credits", "5", "--count", "2", "--csv", str(csv_path)])
    assert "Wrote 2 codes" in result.output
    assert stat.S_IMODE(os.stat(csv_path).st_mode) == 0o600
    assert csv_path.read_text().splitlines()[0] == "serial,device,credits,expires,code"
    bad = runner.invoke(cli, ["vendor", "mint", "--key", str(tmp_path / "nope"), "--device", "ABCD-EFGH",
                              "--credits", "5"])
    assert bad.exit_code == 1 and "cannot read the vendor key" in bad.output


def test_topup_balance_and_ledger_commands(box_cli, keys):
    private = keys[0]
    code = code_for(private, 30, issued=date.today())
    result = box_cli("topup", *code.split("-"))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Added 30 credits") and "Balance: 30 credits." in result.output
    printed = result.output.split("\n")[2]
    key = box_cli("box-key").output.split()[0]
    assert "Receipt for your vendor" in result.output and receipt.read(printed, key).balance == 30
    again = box_cli("topup", code)
    assert again.exit_code == 1 and "already redeemed" in again.output
    typo = box_cli("topup", tamper(code, 3))
    assert typo.exit_code == 1 and "typo" in typo.output
    assert box_cli("balance", "--json").output.strip() == '{"balance": 30, "paused": null}'
    entries = json.loads(box_cli("ledger", "--json").output)
    assert [(e["kind"], e["credits"], e["balance"]) for e in entries] == [("topup", 30, 30)]
    assert "top-up code" in box_cli("ledger").output and "  top-up  " in box_cli("ledger").output
    assert '"balance": 30' in box_cli("status", "--json").output
    assert box_cli("device-id").output.strip() == format_device_id(BOX)


def test_topup_without_a_vendor_key_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr("smsgenie.cli.common.this_device_id", lambda *_: BOX)
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "topup", "ABC"])
    assert result.exit_code == 1 and "no vendor key" in result.output and "[vendor] public_key" in result.output


def test_a_damaged_vendor_key_in_the_config_is_refused_at_start(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[vendor]\npublic_key = "ed25519:AAAA"\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "status"])
    assert result.exit_code == 1 and "'vendor.public_key' is not usable" in result.output
    with pytest.raises(VendorKeyError, match="must start with"):
        vendor.parse_public_key("AAAA")


def test_cli_errors_speak_chinese_to_a_chinese_terminal(box_cli, keys, monkeypatch):
    """Under LANG=zh_CN.UTF-8 the command line's errors come through the same catalogue as the page's."""
    private = keys[0]
    code = code_for(private, 30, issued=date.today())
    assert box_cli("topup", code).exit_code == 0
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    again = box_cli("topup", code)
    assert again.exit_code == 1 and again.output.startswith("Error: 此充值码已于 ")
    assert "（+30 条）；每个充值码只能用一次" in again.output and again.output.count("\n") == 1
    typo = box_cli("topup", tamper(code, 3))
    assert "充值码有输入错误（校验位不符）" in typo.output
    ledger = box_cli("ledger").output  # and what it prints when all is well
    assert "  充值  " in ledger and "余额       30  充值码 " in ledger
    assert box_cli("balance").output == "余额：30 点。\n"
    fresh = code_for(private, 5, issued=date.today())
    assert box_cli("topup", fresh).output.startswith("已充值 5 点（充值码 ")
    monkeypatch.setenv("LANG", "C.UTF-8")
    assert "already redeemed" in box_cli("topup", code).output
