"""How long a backup of six months' record takes, and what the encryption and checks cost.

A data dir with N messages (default 100,000: a busy shop's six months), each
with its two record rows (sent, delivered) in the hash chain, is backed up
with ``appliance.backup.make`` (SQLite online backup, the chain verified,
encryption, written, read back and checked) and restored into an empty dir
(decrypted, hashes, integrity check, chain verified). The reference is the
least any backup must do in the same run: SQLite's online backup of the same
database plus one plain copy of it to the destination. Reported: seconds,
MB, and the ratio reference / backup (1.0 = the checks and encryption cost
nothing).

    .venv/bin/python benchmarks/backup.py [--messages 100000]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance import backup  # noqa: E402
from appliance.audit import AuditLog  # noqa: E402
from appliance.clock import SystemClock  # noqa: E402
from appliance.db import DB_NAME, Database  # noqa: E402
from appliance.plan import plan_message  # noqa: E402
from appliance.sendqueue import SendQueue  # noqa: E402

TEXT = "【小王便利店】会员日：本周六全场9折，凭此短信到店再送小礼品。回复TD退订"


def build(data_dir: Path, count: int) -> None:
    db = Database.in_data_dir(data_dir)
    q = SendQueue(db, SystemClock())
    q.ledger.adjust(count * 2, "benchmark credit")
    plan = plan_message(TEXT)
    ids = q.enqueue_many(q.create_list("bench.csv", "YL08"), ((f"+86139{i:08d}", plan) for i in range(count)),
                        "YL08")
    audit = AuditLog(db, SystemClock())
    with db.atomic() as conn:
        for mid in ids:
            row = conn.execute("SELECT * FROM message WHERE id = ?", (mid,)).fetchone()
            audit.record(conn, "sent", row, "sent")
            audit.record(conn, "delivered", row, "delivered")
        conn.execute("UPDATE message SET state = 'delivered'")
    db.close()


def reference(data_dir: Path, dest: Path) -> float:
    start = time.perf_counter()
    snap = dest / "snapshot.db"
    src, dst = sqlite3.connect(data_dir / DB_NAME), sqlite3.connect(snap)
    src.backup(dst)
    dst.close()
    src.close()
    shutil.copyfile(snap, dest / "copy.db")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data, stick, plain, restored = (Path(tmp) / n for n in ("data", "stick", "plain", "restored"))
        for d in (stick, plain):
            d.mkdir()
        build(data, args.messages)
        db_mb = (data / DB_NAME).stat().st_size / 1e6
        ref = reference(data, plain)
        start = time.perf_counter()
        info = backup.make(data, stick, "benchmark-passphrase", device_id="BENC-HMRK", version="bench")
        made = time.perf_counter() - start
        start = time.perf_counter()
        backup.restore(info.path, restored, "benchmark-passphrase")
        back = time.perf_counter() - start
        result = {"machine": f"{platform.machine()} {platform.python_implementation()} {platform.python_version()}",
                  "messages": args.messages, "database_mb": round(db_mb, 1),
                  "backup_mb": round(info.path.stat().st_size / 1e6, 1), "reference_s": round(ref, 2),
                  "backup_s": round(made, 2), "restore_s": round(back, 2), "ratio": round(ref / made, 3)}
    if args.json:
        print(json.dumps(result))
        return
    print(f"machine: {result['machine']}; {args.messages} messages, database {result['database_mb']} MB, "
          f"backup file {result['backup_mb']} MB")
    print(f"reference (online backup + one copy): {result['reference_s']:.2f} s")
    print(f"smsgenie backup (+ chain check, encryption, read back): {result['backup_s']:.2f} s; "
          f"ratio {result['ratio']:.3f}")
    print(f"smsgenie restore (decrypt, hashes, integrity check, chain): {result['restore_s']:.2f} s")


if __name__ == "__main__":
    main()
