"""Lists streamed in bounded memory (issue 14): the same answers as before, row for row, and fast paths that
agree with the authorities they stand in for (phonenumbers, the whole-text screen, the codec's split)."""

from __future__ import annotations

import os
import random
from importlib import resources

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import carrier as pn_carrier

from appliance import phones
from appliance.errors import AlreadyQueued, MessageTextError, SendListError
from appliance.forbidden import KeywordScreen
from appliance.intake import Intake
from appliance.loading import LOAD_BATCH, LOADING_STALE
from appliance.plan import cost, plan_message
from appliance.preview import prepare
from appliance.sendlist import open_table
from appliance.sendlists import SendLists
from appliance.template import Template
from tests import oracle_preview
from tests.test_sendlist import CHINESE_FORMATS, SCREEN, shop_rows, write_csv, write_xlsx

pytest_plugins = ["tests.test_web"]

TEMPLATES = ["{姓名}您好，您有{积分}积分。", "您好", "{姓名}{积分}", "发{姓名}票", "Hi {姓名}, €{积分} [VIP]"]


def both(path, template, opted_out=frozenset({"+8613912345678"})):
    """(the streamed preview with the rows it accepted, the oracle's preview) of one list."""
    accepted = []
    with open_table(path) as table:
        new = prepare(table, Template(template, "【小王】"), region="CN", screen=SCREEN, opted_out=set(opted_out),
                      balance=10_000, accept=accepted.append)
    with open_table(path) as table:
        old = oracle_preview.prepare(table, Template(template, "【小王】"), region="CN", screen=SCREEN,
                                     opted_out=set(opted_out), balance=10_000)
    return new, accepted, old


def assert_same(new, accepted, old):
    assert [(a.row, a.recipient, a.text, a.encoding, a.segments) for a in accepted] == \
        [(a.row, a.recipient, a.plan.text, a.plan.encoding, a.plan.segments) for a in old.accepted]
    assert [(r.row, r.value, r.reason, r.detail) for r in new.refused_rows] == \
        [(r.row, r.value, r.reason, r.detail) for r in old.refused]
    assert new.accepted == len(old.accepted) and new.refused == len(old.refused)
    assert new.refused_by_reason == old.refused_by_reason
    for name in ("messages_by_carrier", "credits_by_carrier", "by_encoding"):
        assert dict(getattr(new, name)) == dict(getattr(old, name)), name
    assert (new.credits_needed, new.forced_ucs2_by, new.ucs2_extra_credits, new.samples) == \
        (old.credits_needed, old.forced_ucs2_by, old.ucs2_extra_credits, old.samples)
    assert new.as_dict() == old.as_dict()


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("kind", ["gbk", "utf-8-sig", "xlsx"])
def test_the_streamed_preview_equals_the_old_one_row_for_row(tmp_path, kind, template):
    rows, _ = shop_rows(300, seed=11)
    rows += [[f, "格式", "1"] for f in CHINESE_FORMATS]
    rows += [["13700137000", "长" * 80, "2"], ["13700137002", "", "0"]]
    if kind != "xlsx":  # (a worksheet cannot hold a control character)
        rows.append(["13700137001", "\x07响铃", "3"])
    path = write_xlsx(tmp_path / "l.xlsx", rows) if kind == "xlsx" else write_csv(tmp_path / "l.csv", rows, kind)
    assert_same(*both(path, template))


@pytest.mark.parametrize("name", ["customers.csv", "orders.csv"])
def test_the_demo_lists_come_out_as_before(name):
    with resources.as_file(resources.files("smsgenie.demo") / name) as path:
        assert_same(*both(path, "{姓名}您好，本周六会员日全场九折。回复TD退订"
                          if name == "customers.csv" else "您好，订单已到店。"))


# --- the fast paths against their authorities -----------------------------------------------------------


def test_the_carrier_of_a_million_chinese_mobiles_is_what_phonenumbers_says():
    """Every number segment's carrier from the fast path, and random whole numbers (SMSGENIE_NUMBERS of them,
    a million in CI), against phonenumbers' own answer for that very number."""
    rng = random.Random(14)
    count = int(os.environ.get("SMSGENIE_NUMBERS", "100000"))
    numbers = [f"1{rng.randrange(3, 10)}{rng.randrange(10**9):09d}" for _ in range(count)]
    numbers += [f"{segment}{rng.randrange(10**7):07d}" for segment in range(1300, 2000)]
    differ = []
    for national in numbers:
        parsed = phonenumbers.PhoneNumber(country_code=86, national_number=int(national))
        valid = phonenumbers.is_valid_number(parsed) and phonenumbers.number_type(parsed) in phones.MOBILE_TYPES
        try:
            ours = phones.normalise(national)
        except phones.NumberProblem:
            ours = None
        if not valid:
            if ours is not None:
                differ.append((national, "valid to us"))
            continue
        name = pn_carrier.name_for_number(parsed, "en")
        if ours != phones.Number("+86" + national, phones.CARRIERS.get(name, name)):
            differ.append((national, ours))
    assert not differ[:10]


#: Letters, marks that join what comes before, fillers, joiners, case-folding oddities (İ, final sigma).
PIECE_CHARS = "发票VIP专享 ,.ＡＶ發e\u0301ｶﾞ\u3099か한\u1161a€👍🏽\u302a\u200d\ufe0fİΣς"


@settings(max_examples=400, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list(PIECE_CHARS)), max_size=6), min_size=1, max_size=6))
def test_screening_a_text_by_its_pieces_finds_what_screening_it_whole_finds(pieces):
    screen = KeywordScreen([("发票", "vendor"), ("VIP专享", "local"), ("é", "local"), ("ガ", "local"),
                            ("가", "local"), ("a€", "local")])
    assert screen.find_pieces(pieces) == screen.find("".join(pieces))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(list("aé€[中👍\n ") + ["x" * 40, "中" * 30]), min_size=1, max_size=40).map("".join))
def test_pricing_without_splitting_agrees_with_the_split(text):
    try:
        plan = plan_message(text)
    except MessageTextError:
        with pytest.raises(MessageTextError):
            cost(text)
        return
    assert cost(text) == (plan.encoding, plan.segments, plan.forced_ucs2_by)


# --- queueing while reading -------------------------------------------------------------------------------


def big_list(tmp_path, n, *, broken=False):
    rows = [[f"138{i:08d}", f"顾客{i}", "1"] for i in range(n)]
    path = write_csv(tmp_path / "big.csv", rows, "utf-8")
    if broken:  # a last row that the CSV reader refuses (a cell past its field limit)
        with open(path, "a", encoding="utf-8") as f:
            f.write('13900139000,"' + "x" * 200_000 + '"\n')
    return path


def test_a_list_bigger_than_a_batch_loads_held_then_sends_whole(tmp_path, queue, config):
    intake = Intake(queue.db, queue.clock, config)
    n = LOAD_BATCH * 2 + 7
    queued, preview = intake.queue_file(big_list(tmp_path, n), "{姓名}您好")
    assert queued.count == preview.accepted == n
    lists = SendLists(queue.db, queue.clock)
    assert lists.get(queued.list_id)["state"] == "active"
    held = queue.db.execute("SELECT COUNT(*) FROM message WHERE held = 1").fetchone()[0]
    assert held == n  # held while it loaded: no modem took half a list
    lists.settle(budget=60)
    assert queue.db.execute("SELECT COUNT(*) FROM message WHERE held = 0 AND state = 'queued'").fetchone()[0] == n
    assert queue.claim() is not None


def test_a_list_that_breaks_part_way_queues_nothing(tmp_path, queue, config):
    intake = Intake(queue.db, queue.clock, config)
    with pytest.raises(SendListError, match="not a well-formed CSV"):
        intake.queue_file(big_list(tmp_path, LOAD_BATCH * 2, broken=True), "{姓名}您好")
    lists = SendLists(queue.db, queue.clock)
    assert [entry["state"] for entry in lists.recent()] == ["discarded"]
    assert queue.claim() is None  # none of its messages may go
    lists.settle(budget=60)
    assert lists.recent() == []
    assert queue.db.execute("SELECT COUNT(*) FROM message").fetchone()[0] == 0


def test_a_load_whose_process_died_is_discarded_later(tmp_path, fake_clock, queue, config, monkeypatch):
    from appliance import loading

    intake = Intake(queue.db, queue.clock, config)
    monkeypatch.setattr(loading.ListLoader, "abandon", lambda self: None)  # as if the power went
    with pytest.raises(SendListError):
        intake.queue_file(big_list(tmp_path, LOAD_BATCH + 10, broken=True), "{姓名}您好")
    lists = SendLists(queue.db, queue.clock)
    lists.settle(budget=5)
    assert [entry["state"] for entry in lists.recent()] == ["loading"]  # it may still be loading
    queue.clock.advance(LOADING_STALE + 1)
    lists.settle(budget=60)
    assert lists.recent() == [] and queue.db.execute("SELECT COUNT(*) FROM message").fetchone()[0] == 0


def test_a_second_confirm_while_the_first_still_loads_queues_nothing(tmp_path, queue, config, monkeypatch):
    from appliance import loading

    intake = Intake(queue.db, queue.clock, config)
    path = big_list(tmp_path, LOAD_BATCH + 10)
    seen = []
    real_write = loading.ListLoader._write

    def write_then_confirm_again(self, *, final, **more):
        real_write(self, final=final, **more)
        if not final and not seen:  # the first batch is in: the same preview is confirmed again
            with pytest.raises(AlreadyQueued) as again:
                intake.queue_file(path, "{姓名}您好", key="upload:t")
            seen.append(again.value.list_id)

    monkeypatch.setattr(loading.ListLoader, "_write", write_then_confirm_again)
    queued, _ = intake.queue_file(path, "{姓名}您好", key="upload:t")
    assert seen == [queued.list_id]
    assert queue.db.execute("SELECT COUNT(*) FROM message").fetchone()[0] == LOAD_BATCH + 10


# --- Excel files: two readers, one answer; and files made to hurt -----------------------------------------


def test_calamine_and_openpyxl_read_a_workbook_alike(tmp_path):
    import datetime

    import openpyxl

    from appliance.sendlist import _open_xlsx_calamine, _open_xlsx_openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet["B3"], sheet["C3"], sheet["D3"] = "手机", "姓名", "日期"
    sheet["B4"], sheet["C4"], sheet["D4"] = 13800138000, "张伟", datetime.datetime(2026, 11, 30, 9, 30)
    sheet["B6"], sheet["C6"], sheet["D6"] = "139 0013 9000", 1.5, True
    sheet["B7"] = 13800138001.0
    rows, _ = shop_rows(50, seed=3)
    for row in rows:
        sheet.append([None, int(row[0]) if row[0].isdigit() else row[0], row[1], int(row[2])])
    path = tmp_path / "offset.xlsx"
    book.save(path)
    with _open_xlsx_calamine(path, "offset.xlsx") as fast, _open_xlsx_openpyxl(path, "offset.xlsx") as slow:
        assert (fast.columns, fast.phone_column) == (slow.columns, slow.phone_column)
        assert [(n, cells) for n, cells in fast.rows] == [(n, cells) for n, cells in slow.rows]


def test_a_zip_bomb_is_refused_before_it_unpacks(tmp_path):
    import zipfile

    from appliance.sendlist import XLSX_MAX_EXPANDED

    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as member:
            zeros = b"\0" * (1 << 24)
            for _ in range(XLSX_MAX_EXPANDED // len(zeros) + 2):
                member.write(zeros)
    assert path.stat().st_size < 2 * 2**20
    with pytest.raises(SendListError, match="would expand to"):
        open_table(path)


def test_a_billion_laughs_is_refused(tmp_path):
    import zipfile

    laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
              + "".join(f'<!ENTITY lol{i} "{"&lol%s;" % (i - 1 if i > 1 else "") * 10}">' for i in range(1, 10))
              + ']><worksheet><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row>'
              + "</sheetData></worksheet>")
    path = tmp_path / "laughs.xlsx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("xl/worksheets/sheet1.xml", laughs)
    with pytest.raises(SendListError, match="declares XML entities"):
        open_table(path)


def test_a_zip_whose_index_lies_about_its_sizes_never_reaches_calamine(tmp_path, monkeypatch):
    """Python's zipfile reads no more than the index claims (and then finds the CRC wrong); calamine, which
    is not ours, is given only files that unpacked as they claimed."""
    import zipfile

    from appliance import sendlist

    path = tmp_path / "liar.xlsx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"<row/>" * 400_000)  # 2.4 MB
    data = bytearray(path.read_bytes())
    real = (2_400_000).to_bytes(4, "little")
    for at in [i for i in range(len(data) - 3) if data[i:i + 4] == real]:
        data[at:at + 4] = (1000).to_bytes(4, "little")  # the index (local and central) claims 1,000 bytes
    path.write_bytes(bytes(data))
    called = []
    monkeypatch.setattr(sendlist, "_open_xlsx_calamine", lambda *a: called.append(a))
    with pytest.raises(SendListError, match="not a readable Excel file"):
        open_table(path)
    assert not called


CAPPED = r"""
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
sys.path.insert(0, {root!r})
from appliance.clock import SystemClock
from appliance.config import Config
from appliance.db import Database
from appliance.errors import SendListError
from appliance.intake import Intake
from appliance.keywords import KeywordStore, VendorList
from appliance.settings import ShopSettings
shop = ShopSettings({data!r})
shop.set("max_list_rows", 5_000_000)
shop.set("signature", "【小王】")
shop.set("consent_gate", "paper")  # the rows are not in a customer book: tests/test_customers.py gates them
shop.close()
db = Database.in_data_dir({data!r})
KeywordStore(db, SystemClock()).replace_vendor(VendorList(["代开发票"], 1, "2026-11-01"))
intake = Intake(db, SystemClock(), Config(data_dir={data!r}, service_code="YL08"))
try:
    queued, preview = intake.queue_file({path!r}, "{{姓名}}您好，会员日九折")
    answer = {{"queued": queued.count, "refused": preview.refused}}
except SendListError as exc:
    answer = {{"refused_file": str(exc)}}
answer["peak_rss_mb"] = next(int(line.split()[1]) for line in open("/proc/self/status")
                            if line.startswith("VmHWM:")) / 1024  # this program's own peak, not its parent's
print(json.dumps(answer))
"""


def run_capped(tmp_path, path, cap_mb=700):
    """Queue ``path`` in a fresh process that may not map more than ``cap_mb`` MB (a kill, not a slowdown,
    past it); its answer and peak RSS."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    data = tmp_path / "capped-box"
    data.mkdir()
    code = CAPPED.format(cap=cap_mb * 2**20, root=str(Path(__file__).resolve().parents[1]), data=str(data),
                         path=str(path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


@pytest.mark.system  # SMSGENIE_BIG_LIST rows (CI: a million)
@pytest.mark.timeout(900)
def test_a_million_row_csv_queues_within_a_fixed_memory_budget(tmp_path):
    size = int(os.environ.get("SMSGENIE_BIG_LIST", "100000"))
    path = tmp_path / "million.csv"
    with open(path, "w", encoding="utf-8") as f:
        f.write("手机号,姓名\n")
        for i in range(size):
            f.write(f"1{38 + i % 2}{i:08d},顾客{i}\n")
    answer = run_capped(tmp_path, path)
    assert answer["queued"] == size and answer["refused"] == 0
    assert answer["peak_rss_mb"] < 150, answer


@pytest.mark.system
def test_a_zip_bomb_is_refused_within_a_fixed_memory_budget(tmp_path):
    import zipfile

    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as member:
            for _ in range(40):
                member.write(b"<row>" * (1 << 22))
    answer = run_capped(tmp_path, path)
    assert "would expand to" in answer["refused_file"] and answer["peak_rss_mb"] < 150, answer


def test_two_processes_queueing_one_key_at_once_queue_it_once(tmp_path, queue, config, monkeypatch):
    """The key's second line of defence, below the page's: two readers (two processes, say) that both read
    the list before either writes it; the one that writes second finds the key and queues nothing."""
    import threading

    from appliance import intake as intake_module
    from appliance.db import Database

    path = write_csv(tmp_path / "l.csv", [["13800138000", "张伟", "1"], ["13900139000", "王芳", "2"]], "utf-8")
    both_read = threading.Barrier(2)
    real = intake_module.prepare

    def read_then_wait(*args, **kwargs):
        preview = real(*args, **kwargs)
        both_read.wait(timeout=10)
        return preview

    monkeypatch.setattr(intake_module, "prepare", read_then_wait)
    answers = []

    def confirm():
        db = Database(queue.db.path)
        try:
            answers.append(Intake(db, queue.clock, config).queue_file(path, "{姓名}您好", key="upload:x")[0])
        except AlreadyQueued as exc:
            answers.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=confirm) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    first = next(a for a in answers if not isinstance(a, AlreadyQueued))
    assert [a.list_id for a in answers if isinstance(a, AlreadyQueued)] == [first.list_id]
    assert queue.db.execute("SELECT COUNT(*) FROM message").fetchone()[0] == 2


# --- the page: a long read or queueing shows its progress, and the page stays free meanwhile -------------------


def test_a_list_that_takes_a_while_shows_its_progress_then_its_preview_then_queues(admin, box, monkeypatch):
    import re
    import threading
    import time

    from appliance import intake as intake_module
    from tests.test_web import token_of, upload
    from web import send

    monkeypatch.setattr(send, "WAIT_SECONDS", 0.05)
    go_on = threading.Event()
    real = intake_module.prepare

    def slow(table, *args, **kwargs):
        original = table.rows

        def rows():
            for i, row in enumerate(original):
                if i == 1500:
                    kwargs["progress"](i, 0)
                    go_on.wait(10)  # the list is "big": held here until the test has seen the progress
                yield row
        table.rows = rows()
        return real(table, *args, **kwargs)

    monkeypatch.setattr(intake_module, "prepare", slow)
    rows = "".join(f"138{i:08d},顾客{i}\n" for i in range(3000))
    r = upload(admin, "big.csv", ("手机号,姓名\n" + rows).encode(), "{姓名}您好")
    assert r.status_code == 202
    html = r.get_data(as_text=True)
    poll = re.search(r'data-poll="([^"]+)"', html).group(1)
    following = re.search(r'data-next="([^"]+)"', html).group(1)
    progress = admin.get(poll).get_json()
    assert progress["state"] == "running" and progress["total"] == 3000 and progress["rows"] >= 1000
    assert admin.get("/api/v1/status").status_code in (200, 401)  # the page answers meanwhile
    assert admin.get("/").status_code == 200
    go_on.set()
    for _ in range(100):
        if admin.get(poll).get_json()["state"] == "done":
            break
        time.sleep(0.05)
    page = admin.get(following)
    assert page.status_code == 200
    preview = page.get_data(as_text=True)
    assert "顾客0您好" in preview and "3000" in preview
    token = re.search(r'name="token" value="([^"]+)"', preview).group(1)
    go_on.clear()
    form = {"csrf_token": token_of(preview), "token": token, "name": "big.csv", "text": "{姓名}您好",
            "kind": "marketing", "start_at": ""}
    confirm = admin.post("/send/confirm", data=form)
    assert confirm.status_code == 202 and "data-poll" in confirm.get_data(as_text=True)
    again = admin.post("/send/confirm", data=form)  # a second click while it queues: nothing more
    assert again.status_code == 409
    go_on.set()
    done = re.search(r'data-next="([^"]+)"', confirm.get_data(as_text=True)).group(1)
    for _ in range(100):
        answer = admin.get(done)
        if answer.status_code == 302:
            break
        time.sleep(0.05)
    assert answer.status_code == 302 and "/history/" in answer.headers["Location"]
    assert box.db.execute("SELECT COUNT(*) FROM message").fetchone()[0] == 3000


def count_to(progress, n, gate=None):
    """A job for the worker-process test: counts, reporting as it goes."""
    import time

    for i in range(1, n + 1):
        progress.update(i, i // 10)
        if gate and i == n // 2:
            deadline = time.monotonic() + 20
            while not os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.01)
    return n


def already(progress, list_id):
    raise AlreadyQueued("this list was already sent", list_id)


def test_jobs_in_worker_processes_report_progress_and_errors(tmp_path):
    """The running box reads big lists in worker processes (benchmarks/busy_preview.py shows why): their
    progress crosses over as it happens, their answers and the errors a person acts on come back whole."""
    import time

    from appliance.jobs import Jobs

    jobs = Jobs(processes=True)
    try:
        gate = tmp_path / "go"
        job = jobs.start("count", count_to, 1000, str(gate), total=1000)
        deadline = time.monotonic() + 60
        while job.progress.rows < 500 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert job.as_dict()["state"] == "running" and job.progress.rows == 500 and job.progress.refused == 50
        gate.touch()
        assert job.wait(60) and (job.state, job.result) == ("done", 1000)
        assert jobs.start("count", count_to, 1) is None  # one job per key
        failed = jobs.start("already", already, 7)
        assert failed.wait(60) and failed.state == "failed"
        assert isinstance(failed.exception, AlreadyQueued) and failed.exception.list_id == 7
    finally:
        jobs.shutdown()


def test_where_there_are_no_worker_processes_jobs_run_on_threads(monkeypatch, caplog):
    """A bare chroot (the image's smoke test) has no /dev/shm: the box still starts, and says so."""
    from appliance.jobs import Jobs

    def no_semaphores(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("appliance.jobs.ProcessPoolExecutor", no_semaphores)
    jobs = Jobs(processes=True)
    try:
        job = jobs.start("count", count_to, 10)
        assert job.wait(30) and job.result == 10
        assert "long jobs run on threads" in caplog.text
    finally:
        jobs.shutdown()


def test_messages_of_an_api_call_keep_every_refusal_whatever_a_preview_keeps(queue, config):
    """A preview shows the first REFUSED_KEPT refused rows; an API call answers for each of its messages."""
    from appliance.preview import REFUSED_KEPT

    n = REFUSED_KEPT + 5
    preview = Intake(queue.db, queue.clock, config).check_messages([("12345", "您好")] * n, name="api").preview
    assert preview.refused == len(preview.refused_rows) == n
