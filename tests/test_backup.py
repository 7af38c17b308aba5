"""Backups to a USB stick and restoring them: encrypted, checked, and never losing what was there."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from appliance import backup
from appliance.audit import AuditLog
from appliance.backup import BackupError, WrongPassphrase
from appliance.clock import SystemClock
from appliance.db import DB_NAME, Database
from appliance.errors import DaemonAlreadyRunning, DataDirError
from appliance.lock import DataDirLock
from appliance.sendqueue import SendQueue
from appliance.settings import ShopSettings as BoxSettings
from smsgenie.cli import cli
from tests.conftest import running_daemon, wait_for
from tests.test_daemon import enqueue

PASS = "counter-box-7"


def fill(data_dir, n=5, credit=300):
    db = Database.in_data_dir(data_dir)
    q = SendQueue(db, SystemClock())
    q.ledger.adjust(credit, "bought")
    enqueue(q, [f"+86138001380{i:02d}" for i in range(n)], "hello, the parcel is in")
    db.close()
    s = BoxSettings(data_dir)
    s.set("signature", "【小店】")
    s.close()


def snapshot(data_dir):
    db = Database.in_data_dir(data_dir)
    try:
        q = SendQueue(db, SystemClock())
        verdict = AuditLog(db, SystemClock()).verify()
        rows = db.conn.execute("SELECT recipient, state FROM message ORDER BY id").fetchall()
        return q.ledger.balance(), verdict.head, [tuple(r) for r in rows]
    finally:
        db.close()


def test_a_backup_restores_onto_a_new_card_exactly(tmp_path):
    old, new, stick = tmp_path / "old", tmp_path / "new", tmp_path / "stick"
    stick.mkdir()
    fill(old)
    info = backup.make(old, stick, PASS, device_id="7K3M-9QAZ", version="0.1.0")
    assert info.messages == 5 and info.path.parent == stick
    assert info.path.name.startswith("smsgenie-backup-7K3M9QAZ-")
    raw = info.path.read_bytes()
    assert b"8613800138001" not in raw and b"parcel" not in raw  # a lost stick gives nothing away
    restored, aside = backup.restore(info.path, new, PASS)
    assert aside is None
    assert restored.device_id == "7K3M-9QAZ"
    assert snapshot(new) == snapshot(old)
    s = BoxSettings(new)
    assert s.get("signature") == "【小店】"
    s.close()


def test_a_backup_made_while_the_daemon_sends_is_consistent(tmp_path, config, queue):
    stick = tmp_path / "stick"
    stick.mkdir()
    enqueue(queue, [f"+86138001{i:05d}" for i in range(60)])
    with running_daemon(config):
        wait_for(lambda: queue.counts()["sent"] + queue.counts()["delivered"] >= 5, 20, message="sending")
        info = backup.make(config.data_dir, stick, PASS, device_id="AAAA-BBBB", version="0.1.0")
    restored, _ = backup.restore(info.path, tmp_path / "restored", PASS)
    balance, head, rows = snapshot(tmp_path / "restored")
    assert len(rows) == 60 and head == info.audit_head
    db = Database.in_data_dir(tmp_path / "restored")
    charged = {r[0] for r in db.conn.execute("SELECT message_id FROM ledger WHERE kind = 'debit'")}
    claimed = {r[0] for r in db.conn.execute(
        "SELECT id FROM message WHERE state IN ('sending', 'sent', 'delivered', 'uncertain')")}
    db.close()
    assert len(claimed) >= 5 and claimed <= charged  # each debit and the state it paid for: one snapshot
    assert balance < 1_000_000


def test_the_wrong_passphrase_opens_nothing(tmp_path):
    fill(tmp_path / "d")
    (tmp_path / "s").mkdir()
    info = backup.make(tmp_path / "d", tmp_path / "s", PASS, device_id="7K3M-9QAZ", version="0.1.0")
    with pytest.raises(WrongPassphrase):
        backup.restore(info.path, tmp_path / "new", "not-the-passphrase")
    assert not (tmp_path / "new" / DB_NAME).exists()


@pytest.mark.parametrize("damage, reason", [
    (lambda b: b[:-100], "cut short"),
    (lambda b: b[: len(b) // 2] + bytes([b[len(b) // 2] ^ 1]) + b[len(b) // 2 + 1:], "changed or damaged"),
    (lambda b: b + b"\x00\x00\x00\x10" + b"x" * 16, "after its end|cut short"),
    (lambda b: b"PK\x03\x04" + b[4:], "not an SMS Genie backup"),
])
def test_a_damaged_backup_is_refused_and_nothing_changes(tmp_path, damage, reason):
    fill(tmp_path / "d")
    fill(tmp_path / "target", n=2, credit=7)
    before = snapshot(tmp_path / "target")
    (tmp_path / "s").mkdir()
    info = backup.make(tmp_path / "d", tmp_path / "s", PASS, device_id="7K3M-9QAZ", version="0.1.0")
    info.path.write_bytes(damage(info.path.read_bytes()))
    with pytest.raises(BackupError, match=reason):
        backup.restore(info.path, tmp_path / "target", PASS, force=True)
    assert snapshot(tmp_path / "target") == before
    assert not list((tmp_path / "target").glob("before-restore-*"))
    assert not list((tmp_path / "target").glob(".restore-*"))


def test_restoring_over_data_needs_force_and_keeps_the_old_files_aside(tmp_path):
    fill(tmp_path / "d", n=4)
    fill(tmp_path / "target", n=2, credit=7)
    before = snapshot(tmp_path / "target")
    (tmp_path / "s").mkdir()
    info = backup.make(tmp_path / "d", tmp_path / "s", PASS, device_id="7K3M-9QAZ", version="0.1.0")
    with pytest.raises(BackupError, match="already holds messages or credit"):
        backup.restore(info.path, tmp_path / "target", PASS)
    assert snapshot(tmp_path / "target") == before
    _, aside = backup.restore(info.path, tmp_path / "target", PASS, force=True)
    assert snapshot(tmp_path / "target") == snapshot(tmp_path / "d")
    assert snapshot(aside) == before  # the old database, whole, beside


def test_restore_waits_for_the_daemon_to_stop(tmp_path, config, queue):
    fill(tmp_path / "d")
    (tmp_path / "s").mkdir()
    info = backup.make(tmp_path / "d", tmp_path / "s", PASS, device_id="7K3M-9QAZ", version="0.1.0")
    with running_daemon(config):
        wait_for(lambda: DataDirLock.held(config.data_dir), message="the daemon's lock")
        with pytest.raises(DaemonAlreadyRunning):
            backup.restore(info.path, config.data_dir, PASS, force=True)


def test_clear_messages_for_the_technician(tmp_path):
    fill(tmp_path / "d")
    with pytest.raises(BackupError, match="mount the USB stick first"):
        backup.make(tmp_path / "d", tmp_path / "no-stick", PASS, device_id="X", version="0")
    (tmp_path / "s").mkdir()
    with pytest.raises(BackupError, match="at least 8 characters"):
        backup.make(tmp_path / "d", tmp_path / "s", "short", device_id="X", version="0")
    with pytest.raises(BackupError, match="no SMS Genie database"):
        backup.make(tmp_path / "empty", tmp_path / "s", PASS, device_id="X", version="0")


def test_backup_and_restore_on_the_command_line(tmp_path):
    fill(tmp_path / "d")
    (tmp_path / "s").mkdir()
    pw = tmp_path / "pw"
    pw.write_text(PASS + "\n")
    runner = CliRunner()
    made = runner.invoke(cli, ["--data-dir", str(tmp_path / "d"), "backup", str(tmp_path / "s"),
                               "--passphrase-file", str(pw)])
    assert made.exit_code == 0, made.output
    assert "Backed up 5 messages" in made.output and "read back and checked" in made.output
    file = next((tmp_path / "s").glob("*.sgbk"))
    done = runner.invoke(cli, ["--data-dir", str(tmp_path / "new"), "restore", str(file), "--passphrase-file",
                               str(pw)])
    assert done.exit_code == 0, done.output
    assert "Restored 5 messages" in done.output
    refused = runner.invoke(cli, ["--data-dir", str(tmp_path / "new"), "restore", str(file)], input="wrong-one\n")
    assert refused.exit_code == 1 and "already holds messages" in refused.output
    wrong = runner.invoke(cli, ["--data-dir", str(tmp_path / "new"), "restore", "--force", str(file)],
                          input="wrong-one\n")
    assert wrong.exit_code == 1 and "passphrase does not open" in wrong.output


def test_restore_as_root_never_writes_through_a_lock_file_link(tmp_path):
    fill(tmp_path / "d")
    (tmp_path / "s").mkdir()
    info = backup.make(tmp_path / "d", tmp_path / "s", PASS, device_id="7K3M-9QAZ", version="0.1.0")
    target = tmp_path / "target"
    target.mkdir()
    victim = tmp_path / "shadow"
    victim.write_text("root:$6$...\n")
    (target / "daemon.lock").symlink_to(victim)  # planted by whoever owns the data dir
    with pytest.raises(DataDirError, match="symbolic link"):
        backup.restore(info.path, target, PASS)
    assert victim.read_text() == "root:$6$...\n"
