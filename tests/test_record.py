"""The message record answers "who, what, when, from where" (issue 15.1), and proves itself off the box."""

from __future__ import annotations

import pytest

from appliance import shop
from appliance.accounts import Accounts
from appliance.audit import FIELDS, digest, template_id
from appliance.db import Database
from appliance.errors import SettingsError
from appliance.plan import plan_message
from appliance.sendqueue import SendQueue
from tests.conftest import running_daemon, wait_for

ICCID = "89860012345678901234"


def send_one(q, list_id, number="+8613800000001", text="您好", modem="counter", sim=ICCID):
    mid = q.enqueue(list_id, [number], plan_message(text), "YL08")[0]
    assert q.claim(modem=modem, sim=sim).id == mid
    q.record_segment(mid, 1, mid)
    q.mark_sent(mid)
    return mid


def test_a_row_says_who_queued_who_approved_which_sim_which_template_and_which_shop(q, fake_clock):
    shop.save(q.db, "小王便利店", "91310000MA1K000000")
    accounts = Accounts(q.db, fake_clock)
    alice = accounts.create("alice", "a long password 1", "staff")
    boss = accounts.create("boss", "a long password 2", "admin")
    list_id = q.create_list("会员日", "YL08", "{name}您好", created_by=f"user:{alice.id}")
    q.db.execute("UPDATE send_list SET approved_by = ?, approved_at = 1 WHERE id = ?", (f"user:{boss.id}", list_id))
    send_one(q, list_id)
    row = list(q.audit.rows(0, 1e12))[0]
    assert row["form"] == 2
    assert row["queued_by"] == f"user:{alice.id} alice" and row["approved_by"] == f"user:{boss.id} boss"
    assert (row["modem"], row["sim_iccid"]) == ("counter", ICCID)
    assert row["template_id"] == template_id("{name}您好") and len(row["template_id"]) == 16
    assert row["basis"] == "marketing" and row["send_list_id"] == list_id
    assert (row["shop_name"], row["shop_licence"]) == ("小王便利店", "91310000MA1K000000")
    assert q.audit.verify().ok


def test_an_api_token_is_named_and_a_list_of_ready_texts_has_no_template(q, fake_clock):
    token = Accounts(q.db, fake_clock).new_token("POS")
    token_id = q.db.execute("SELECT id FROM api_tokens").fetchone()[0]
    assert token
    list_id = q.create_list("订单", "YL08", None, kind="transactional", created_by=f"api:{token_id}")
    send_one(q, list_id)
    row = list(q.audit.rows(0, 1e12))[0]
    assert row["queued_by"] == f"api:{token_id} POS" and row["approved_by"] == ""
    assert row["template_id"] == "" and row["basis"] == "transactional"


@pytest.mark.parametrize("tamper", [
    "UPDATE audit SET queued_by = 'user:9 mallory'", "UPDATE audit SET approved_by = ''",
    "UPDATE audit SET sim_iccid = '89860000000000000000'", "UPDATE audit SET modem = 'other'",
    "UPDATE audit SET shop_licence = ''", "UPDATE audit SET template_id = 'x'", "UPDATE audit SET basis = 'x'",
    "UPDATE audit SET form = 1",  # passing a new row off as an old one (whose hash covers less)
])
def test_every_new_field_is_covered_by_the_chain(q, tamper):
    shop.save(q.db, "小王便利店", "L-1")
    list_id = q.create_list("会员日", "YL08", "t", created_by="cli")
    q.db.execute("UPDATE send_list SET approved_by = 'panel' WHERE id = ?", (list_id,))
    send_one(q, list_id)
    assert q.audit.verify().ok
    q.db.execute(tamper + " WHERE id = 1")
    verdict = q.audit.verify()
    assert not verdict.ok and "row 1 was changed" in verdict.problem


def test_the_chain_verifies_across_the_migration(tmp_path, fake_clock, monkeypatch):
    """A box upgraded with rows in the old form: they verify as written and the new rows chain on."""
    import appliance.db
    from appliance.schema import MIGRATIONS
    before = [m for m in MIGRATIONS if m[0] < "0014"]
    monkeypatch.setattr(appliance.db, "MIGRATIONS", before)
    db = Database.in_data_dir(tmp_path / "data")
    prev = "0" * 64
    for i in range(3):  # rows as the old code wrote them
        row = {"at": 1000.0 + i, "event": "sent", "message_id": i + 1, "send_list_id": None,
               "recipient": f"+861380000000{i}", "content": "旧", "service_code": "YL08", "outcome": "sent"}
        link = digest(prev, row)
        db.execute(f"INSERT INTO audit ({', '.join(FIELDS)}, prev_hash, hash) VALUES"
                   f" ({', '.join('?' * (len(FIELDS) + 2))})", (*row.values(), prev, link))
        prev = link
    db.close()
    monkeypatch.setattr(appliance.db, "MIGRATIONS", MIGRATIONS)
    db = Database.in_data_dir(tmp_path / "data")
    q = SendQueue(db, fake_clock)
    q.ledger.adjust(10, "credit")
    shop.save(db, "小王便利店", "")
    send_one(q, q.create_list("新", "YL08", created_by="cli"))
    forms = [r["form"] for r in q.audit.rows(0, 1e12)]
    assert forms == [1, 1, 1, 2]
    verdict = q.audit.verify()
    assert verdict.ok and verdict.rows == 4
    db.execute("UPDATE audit SET content = '改' WHERE id = 2")
    assert "row 2 was changed" in q.audit.verify().problem
    db.close()


def test_the_shop_identity_is_checked(q):
    with pytest.raises(SettingsError, match="needed"):
        shop.save(q.db, "  ", "x")
    with pytest.raises(SettingsError, match="at most 40"):
        shop.save(q.db, "店" * 41, "")
    with pytest.raises(SettingsError, match="control character"):
        shop.save(q.db, "店", "a\x00b")
    assert shop.save(q.db, " 小王  便利店 ", "") == shop.Shop("小王 便利店", "")
    assert shop.read(q.db.conn).name == "小王 便利店"


def test_the_daemon_records_the_modem_and_the_sim_that_sent(config, queue):
    with running_daemon(config):
        mid = queue.enqueue(queue.create_list("l", "YL08", created_by="cli"), ["+8613800000002"],
                            plan_message("到店有礼"), "YL08")[0]
        wait_for(lambda: queue.get(mid).state in ("sent", "delivered"))
    row = [r for r in queue.audit.rows(0, 1e12) if r["event"] == "sent"][0]
    assert row["modem"] == config.modems[0].label != "" and row["sim_iccid"] == ICCID
    assert queue.get(mid).sim_iccid == ICCID


# --- the lawful-query export ------------------------------------------------------------------------------

import csv  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import stat  # noqa: E402
import zipfile  # noqa: E402
from datetime import datetime  # noqa: E402

from click.testing import CliRunner  # noqa: E402

from appliance import boxkey, export  # noqa: E402
from appliance.errors import ExportCheckFailed  # noqa: E402
from smsgenie.cli import cli  # noqa: E402


def a_box_with_a_record(tmp_path, fake_clock, n=4):
    data = tmp_path / "data"
    db = Database.in_data_dir(data)
    q = SendQueue(db, fake_clock)
    q.ledger.adjust(100, "credit")
    shop.save(db, "小王便利店", "91310000MA1K000000")
    list_id = q.create_list("会员日", "YL08", "=SUM(A1) {name}", created_by="cli")
    for i in range(n):
        send_one(q, list_id, number=f"+8613800000{i:03d}", text=f"=SUM(A1) 您好 {i}")
    config = tmp_path / "c.toml"
    config.write_text(f'data_dir = "{data}"\nservice_code = "YL08"\n')
    return q, config


def export_file(tmp_path, config, q, *extra, name="export.zip"):
    out = tmp_path / name
    today = datetime.fromtimestamp(q.clock.time()).strftime("%Y-%m-%d")
    result = CliRunner().invoke(cli, ["--config", str(config), "audit", "export", "--from", today, "--to", today,
                                      "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return out, result.output


def rewrite(src, dst, change):
    """Copy an export, letting ``change(name, data) -> data`` alter its members."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, change(name, zin.read(name)))
    return dst


def test_an_export_is_signed_private_and_checks_anywhere(tmp_path, fake_clock):
    q, config = a_box_with_a_record(tmp_path, fake_clock)
    out, said = export_file(tmp_path, config, q)
    key = boxkey.load(q.db.path.parent)
    assert "Wrote 4 rows" in said and key.key_id in said
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(q.db.path.parent / "box.key").st_mode) == 0o600
    manifest = export.check(out, key.public_line)
    assert manifest["rows"] == 4 and manifest["shop"] == {"name": "小王便利店", "licence": "91310000MA1K000000"}
    assert manifest["record"]["rows_written"] == 4 and manifest["head_after"] == q.audit.state()[1]
    # off the box: no config, no data dir
    checked = CliRunner().invoke(cli, ["audit", "verify-export", str(out), "--key", key.public_line])
    assert checked.exit_code == 0 and "The export is intact: 4 rows" in checked.output
    assert "小王便利店" in checked.output and "Signed by the box key you gave" in checked.output
    unkeyed = CliRunner().invoke(cli, ["audit", "verify-export", str(out)])
    assert "compare it with the key the vendor recorded" in unkeyed.output


def test_the_spreadsheet_escapes_formulas_and_the_machine_file_keeps_everything(tmp_path, fake_clock):
    q, config = a_box_with_a_record(tmp_path, fake_clock)
    out, _ = export_file(tmp_path, config, q)
    with zipfile.ZipFile(out) as zf:
        rows = list(csv.DictReader(io.StringIO(zf.read("record.csv").decode("utf-8-sig"))))
        lines = [json.loads(x) for x in zf.read("record.jsonl").decode("utf-8").splitlines()]
    assert rows[0]["content"] == "'=SUM(A1) 您好 0"  # a spreadsheet shows it, never runs it
    assert rows[0]["recipient"] == "+8613800000000"  # a number is left as it is
    assert rows[0]["shop_licence"] == "91310000MA1K000000" and rows[0]["queued_by"] == "cli"
    assert lines[0]["content"] == "=SUM(A1) 您好 0" and lines[0]["sim_iccid"] == ICCID


def test_one_number_s_export(tmp_path, fake_clock):
    q, config = a_box_with_a_record(tmp_path, fake_clock)
    out, said = export_file(tmp_path, config, q, "--number", "138 0000 0002")
    assert "Wrote 1 row " in said
    assert export.check(out)["range"]["number"] == "+8613800000002"


@pytest.mark.parametrize("change,problem", [
    (lambda n, d: d.replace("您好 1".encode(), "您好 X".encode()) if n == "record.jsonl" else d, "record.jsonl is not"),
    (lambda n, d: d.replace(b"'=SUM", b"=SUM") if n == "record.csv" else d, "record.csv is not the file"),
    (lambda n, d: d.replace(b'"rows": 4', b'"rows": 3') if n == "manifest.json" else d, "signature does not match"),
    (lambda n, d: b"" if n == "manifest.sig" else d, "signature .manifest.sig. is missing or damaged"),
    (lambda n, d: b"{" if n == "manifest.json" else d, "manifest is damaged"),
])
def test_a_changed_export_is_refused(tmp_path, fake_clock, change, problem):
    q, config = a_box_with_a_record(tmp_path, fake_clock)
    out, _ = export_file(tmp_path, config, q)
    with pytest.raises(ExportCheckFailed, match=problem):
        export.check(rewrite(out, tmp_path / "changed.zip", change))
    said = CliRunner().invoke(cli, ["audit", "verify-export", str(tmp_path / "changed.zip")])
    assert said.exit_code == 1 and said.output.startswith("Error: ") and "Traceback" not in said.output


def test_a_re_signed_export_with_rows_removed_is_not_the_box_s(tmp_path, fake_clock):
    """Whoever removes a row and signs again with a key of their own is caught by the box's key."""
    q, config = a_box_with_a_record(tmp_path, fake_clock)
    out, _ = export_file(tmp_path, config, q)
    real_key = boxkey.load(q.db.path.parent).public_line
    q.db.execute("DELETE FROM audit WHERE id = 2")
    forger = tmp_path / "forger"
    forger.mkdir()
    forged = tmp_path / "forged.zip"
    with open(forged, "wb") as f:
        export.write(f, q.audit, boxkey.load(forger), export.Range("a", "b", 0, 1e12), device="x",
                     shop=shop.Shop("小王便利店"), software="0", timestamps=str, now=datetime.now())
    with pytest.raises(ExportCheckFailed, match="did not come from that box"):
        export.check(forged, real_key)
    assert export.check(out, real_key)["rows"] == 4


def test_rows_cut_from_the_middle_are_caught_even_with_a_valid_signature(tmp_path, fake_clock):
    q, config = a_box_with_a_record(tmp_path, fake_clock)
    q.db.execute("DELETE FROM audit WHERE id = 2")  # the box's own record was cut, then exported
    forged = tmp_path / "cut.zip"
    with open(forged, "wb") as f:
        export.write(f, q.audit, boxkey.load(q.db.path.parent), export.Range("a", "b", 0, 1e12), device="x",
                     shop=shop.Shop("小王便利店"), software="0", timestamps=str, now=datetime.now())
    with pytest.raises(ExportCheckFailed, match="rows 2 to 2 are missing"):
        export.check(forged)


def test_not_an_export(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"hello")
    with pytest.raises(ExportCheckFailed, match="not a readable zip"):
        export.check(junk)
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as zf:
        zf.writestr("x", "y")
    with pytest.raises(ExportCheckFailed, match="manifest.json, manifest.sig, record.jsonl, record.csv missing"):
        export.check(tmp_path / "empty.zip")


def test_the_box_key_is_made_once_and_kept(tmp_path):
    first = boxkey.load(tmp_path)
    assert boxkey.load(tmp_path).public_line == first.public_line and len(first.key_id) == 8
    (tmp_path / "box.key").write_text("junk")
    with pytest.raises(Exception, match="damaged; restore it from a backup"):
        boxkey.load(tmp_path)


# --- receipts: the record anchored off the box -----------------------------------------------------------

from datetime import date  # noqa: E402

from appliance import receipt, topup, vendor  # noqa: E402
from appliance.device import device_id_bytes  # noqa: E402

BOX = device_id_bytes("pi:10000000abcdef01")


def top_up(q, key, credits=10):
    vendor_dir = q.db.path.parent.parent / "vendor"
    if not (vendor_dir / "vendor.key").exists():
        vendor.keygen(vendor_dir)
    private = vendor.load_private_key(vendor_dir / "vendor.key")
    public, key_id = vendor.parse_public_key((vendor_dir / "vendor.pub").read_text())
    (_, code), = vendor.mint(private, BOX, credits, issued=date.fromtimestamp(q.clock.time()))
    verified = topup.verify(code, public, key_id, BOX, date.fromtimestamp(q.clock.time()))
    topup.redeem(q, verified, key)
    return topup.receipt_of(q, verified)


def test_a_receipt_says_the_record_s_state_signed_by_the_box(q, tmp_path):
    key = boxkey.load(tmp_path / "data")
    list_id = q.create_list("l", "YL08", created_by="cli")
    send_one(q, list_id)
    code = top_up(q, key, 25)
    assert len(code.replace("-", "")) == receipt.CODE_CHARS
    got = receipt.read(code, key.public_line)
    rows, head = q.audit.state()
    assert (got.rows, got.head, got.balance) == (rows, head[:16], 1000 - 1 + 25)
    (tmp_path / "other").mkdir()
    with pytest.raises(ExportCheckFailed, match="not signed by this box's key"):
        receipt.read(code, boxkey.load(tmp_path / "other").public_line)
    typo = code[:10] + ("0" if code[10] != "0" else "1") + code[11:]
    with pytest.raises(ExportCheckFailed, match="typo"):
        receipt.read(typo, key.public_line)


def test_receipts_that_go_backwards_prove_a_rollback(q, tmp_path, fake_clock):
    key = boxkey.load(tmp_path / "data")
    list_id = q.create_list("l", "YL08", created_by="cli")
    first = top_up(q, key)
    for i in range(3):
        send_one(q, list_id, number=f"+861380000010{i}")
    backup = tmp_path / "backup.db"
    q.db.conn.execute(f"VACUUM INTO '{backup}'")
    fake_clock.advance(3600)
    second = top_up(q, key)
    send_one(q, list_id, number="+8613800000200")
    fake_clock.advance(3600)
    third = top_up(q, key)
    runner = CliRunner()
    ok = runner.invoke(cli, ["vendor", "check-receipt", "--box-key", key.public_line, first, second, third])
    assert ok.exit_code == 0 and "only grew across these 3 receipts" in ok.output, ok.output
    # the shop puts an old copy of the database back and carries on
    q.db.close()
    os.replace(backup, q.db.path)
    for extra in ("-wal", "-shm"):
        (q.db.path.parent / f"{q.db.path.name}{extra}").unlink(missing_ok=True)
    q.db = Database(q.db.path)
    q.ledger.db = q.audit.db = q.db
    fake_clock.advance(3600)
    after = top_up(q, key)
    rolled = runner.invoke(cli, ["vendor", "check-receipt", "--box-key", key.public_line, first, third, after])
    assert rolled.exit_code == 1 and "rolled back or wiped" in rolled.output, rolled.output
    file = tmp_path / "receipts.txt"
    file.write_text(f"{first}\n\n{second}\n")
    assert runner.invoke(cli, ["vendor", "check-receipt", "--box-key", key.public_line, str(file)]).exit_code == 0


def test_a_rewritten_record_with_as_many_rows_shows_too():
    a = receipt.Receipt("X", "S1", 1.0, 10, 5, "aa" * 8)
    b = receipt.Receipt("X", "S2", 2.0, 10, 5, "bb" * 8)
    assert "rewritten" in receipt.rollbacks([a, b])[0]
    assert "clock went back" in receipt.rollbacks([b, a])[-1]


def test_the_shop_and_box_key_commands(tmp_path, fake_clock):
    q, config = a_box_with_a_record(tmp_path, fake_clock, n=1)
    runner = CliRunner()
    shown = runner.invoke(cli, ["--config", str(config), "shop"])
    assert "Shop: 小王便利店; licence: 91310000MA1K000000" in shown.output
    changed = runner.invoke(cli, ["--config", str(config), "shop", "--licence", ""])
    assert "licence: (none)" in changed.output and shop.read(q.db.conn).name == "小王便利店"
    bad = runner.invoke(cli, ["--config", str(config), "shop", "--name", " "])
    assert bad.exit_code == 1 and bad.output.startswith("Error: the shop's name is needed")
    key = runner.invoke(cli, ["--config", str(config), "box-key"])
    assert key.output.startswith(boxkey.load(tmp_path / "data").public_line)
