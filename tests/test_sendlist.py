"""Send lists as shops really upload them, made by the tests: GBK CSV from Excel, UTF-8 with BOM, XLSX."""

from __future__ import annotations

import csv
import io
import random

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.errors import SendListError, TemplateError
from appliance.forbidden import KeywordScreen
from appliance.preview import DUPLICATE, FORBIDDEN, INVALID, NOT_MOBILE, OPTED_OUT, UNREADABLE, prepare
from appliance.sendlist import detect_encoding, open_table
from appliance.template import Template

#: The same customer written every way we have seen.
CHINESE_FORMATS = [
    "13800138000", "138 0013 8000", "138-0013-8000", "+86 138 0013 8000", "+86-138-0013-8000",
    "0086 13800138000", "8613800138000", "86 13800138000", "（+86）13800138000", "１３８００１３８０００",
    " 13800138000 ", "+86 (138) 0013-8000",
]
#: Mobile prefixes of the four carriers.
PREFIXES = ["138", "139", "150", "187", "130", "186", "166", "133", "189", "199", "192", "135", "158", "132",
            "155", "180", "181", "177", "173", "198"]
SCREEN = KeywordScreen([("发票", "vendor"), ("VIP专享", "local")])


def shop_rows(n=200, seed=7):
    """n customers: 10% duplicates, a few opted out, bad and landline numbers, one hidden forbidden word."""
    rng = random.Random(seed)
    rows, expected = [], {}
    for i in range(n):
        number = f"{rng.choice(PREFIXES)}{i:08d}"
        fmt = rng.choice([lambda n: n, lambda n: n + " ", lambda n: "+86 " + n,
                          lambda n: f"{n[:3]} {n[3:7]} {n[7:]}", lambda n: f"{n[:3]}-{n[3:7]}-{n[7:]}"])
        rows.append([fmt(number), f"顾客{i}", f"{rng.randrange(100)}"])
        expected[len(rows) + 1] = None
    for k in range(n // 10):  # 10% duplicates, written differently from the first time
        first = rows[k * 3][0].replace(" ", "").replace("-", "").replace("+86", "")
        rows.append([f"+86-{first}", f"重复{k}", "0"])
        expected[len(rows) + 1] = DUPLICATE
    rows.append(["010-62345678", "座机", "0"])
    expected[len(rows) + 1] = NOT_MOBILE
    rows.append(["12345", "错号", "0"])
    expected[len(rows) + 1] = INVALID
    rows.append(["13912345678", "退订的顾客", "0"])
    expected[len(rows) + 1] = OPTED_OUT
    rows.append(["13912345679", "发 票 代开", "0"])  # forbidden word hidden with spaces
    expected[len(rows) + 1] = FORBIDDEN
    rows.append(["13912345670", "ＶＩＰ 专享", "0"])  # ... and with full-width letters
    expected[len(rows) + 1] = FORBIDDEN
    return rows, expected


def write_csv(path, rows, encoding, header=("手机号", "姓名", "积分"), lineterminator="\r\n"):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=lineterminator)
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def write_xlsx(path, rows, header=("手机号", "姓名", "积分")):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(header))
    for row in rows:
        phone = row[0]
        # Excel keeps a plain 11-digit number as a number unless the column is Text
        value = int(phone) if phone.strip().isdigit() else phone
        sheet.append([value, row[1], int(row[2])])
    book.save(path)
    return path


class Run:
    """A preview and the rows it accepted (prepare keeps none: it hands each on as it is decided)."""

    def __init__(self, preview, accepted):
        self.preview, self.accepted, self.refused = preview, accepted, preview.refused_rows

    def __getattr__(self, name):
        return getattr(self.preview, name)


def run(path, template="{姓名}您好，您有{积分}积分。", opted_out=frozenset({"+8613912345678"})):
    accepted = []
    with open_table(path) as table:
        preview = prepare(table, Template(template, "【小王】"), region="CN", screen=SCREEN,
                          opted_out=set(opted_out), balance=10_000, accept=accepted.append)
    return Run(preview, accepted)


@pytest.mark.parametrize("kind", ["gbk", "gb18030", "utf-8-sig", "utf-8", "xlsx"])
def test_real_world_files_refuse_each_row_with_the_right_reason(tmp_path, kind):
    rows, expected = shop_rows()
    if kind == "xlsx":
        path = write_xlsx(tmp_path / "customers.xlsx", rows)
    else:
        path = write_csv(tmp_path / "customers.csv", rows, kind)
    preview = run(path)
    got = {r.row: r.reason for r in preview.refused}
    assert got == {row: reason for row, reason in expected.items() if reason}
    assert len(preview.accepted) == 200
    assert preview.phone_column == "手机号"
    assert preview.credits_needed == 200 and preview.by_encoding == {"ucs2": 200}
    assert sum(preview.messages_by_carrier.values()) == 200
    assert set(preview.messages_by_carrier) <= {"China Mobile", "China Unicom", "China Telecom", "China Broadnet"}
    first = preview.samples[0]
    assert first["text"] == "顾客0您好，您有" + rows[0][2] + "积分。【小王】"
    forbidden = [r for r in preview.refused if r.reason == FORBIDDEN]
    assert [r.detail for r in forbidden] == ["contains '发票' (vendor list)", "contains 'VIP专享' (shop list)"]
    if kind != "xlsx":
        assert preview.encoding == {"gbk": "gb18030"}.get(kind, kind)


def test_every_common_chinese_format_is_one_customer(tmp_path):
    path = write_csv(tmp_path / "formats.csv", [[f, "张伟", "1"] for f in CHINESE_FORMATS], "utf-8")
    preview = run(path, "您好")
    assert [a.recipient for a in preview.accepted] == ["+8613800138000"]
    assert [r.reason for r in preview.refused] == [DUPLICATE] * (len(CHINESE_FORMATS) - 1)


def test_excel_scientific_notation_is_explained(tmp_path):
    path = write_csv(tmp_path / "sci.csv", [["1.38001E+10", "张伟", "1"]], "utf-8")
    (refusal,) = run(path, "您好").refused
    assert refusal.reason == INVALID and "format the phone column as Text" in refusal.detail


def test_a_list_without_a_header_row(tmp_path):
    path = tmp_path / "bare.csv"
    path.write_text("13800138000,张伟\n13900139000,王芳\n", encoding="utf-8")
    with open_table(path) as table:
        assert table.columns == ["phone", "column 2"]
        assert [r for _, r in table.rows] == [["13800138000", "张伟"], ["13900139000", "王芳"]]


def test_header_names_are_matched_forgivingly(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("Name, Mobile Number ,City\n张伟,13800138000,北京\n", encoding="utf-8")
    with open_table(path) as table:
        assert table.columns[table.phone_column] == "Mobile Number"
        assert table.merge_fields == ["Name", "City"]


def test_semicolon_and_tab_separated_files(tmp_path):
    for sep in (";", "\t"):
        path = tmp_path / f"sep{ord(sep)}.csv"
        path.write_text(f"手机{sep}姓名\n13800138000{sep}张伟\n", encoding="utf-8")
        assert [a.recipient for a in run(path, "{姓名}").accepted] == ["+8613800138000"]


def test_utf16_unicode_text_from_excel(tmp_path):
    path = tmp_path / "unicode.txt"
    path.write_bytes("手机\t姓名\r\n13800138000\t张伟\r\n".encode("utf-16"))
    preview = run(path, "{姓名}")
    assert [a.recipient for a in preview.accepted] == ["+8613800138000"]


def test_mixed_encodings_mark_the_unreadable_rows(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes("手机,姓名\n13800138000,张伟伟伟伟伟\n".encode("utf-8") + "13900139000,王芳\n".encode("gbk"))
    preview = run(path, "{姓名}")
    assert [a.recipient for a in preview.accepted] == ["+8613800138000"]
    assert [(r.row, r.reason) for r in preview.refused] == [(3, UNREADABLE)]


def test_template_field_the_list_lacks_is_named(tmp_path):
    path = write_csv(tmp_path / "t.csv", [["13800138000", "张伟", "5"]], "utf-8")
    expected = r"uses \{生日\}, which the list does not have; its columns are: 姓名, 积分"
    with pytest.raises(TemplateError, match=expected):
        run(path, "{姓名}生日快乐 {生日}")


@pytest.mark.parametrize("text,message", [
    ("{姓名", "unmatched brace"), ("{0}", None), ("{a.b}", "is not a merge field"), ("{x:>10}", "is not a merge"),
    ("   ", "empty"),
])
def test_bad_templates(text, message):
    if message is None:
        with pytest.raises(TemplateError, match="the template uses"):
            Template(text).check(["姓名"])
        return
    with pytest.raises(TemplateError, match=message):
        Template(text)


def test_literal_braces_and_signature_once():
    t = Template("{{活动}} {姓名}", "【小王】")
    assert t.render({"姓名": "张伟"}) == "{活动} 张伟【小王】"
    assert Template("【小王】今天开业", "【小王】").render({}) == "【小王】今天开业"


@pytest.mark.parametrize("content,message", [
    (b"", "is empty"), (b"\n\n  \n", "is empty"), (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "old Excel .xls"),
    (b"PK\x03\x04garbage", "not a readable Excel file"), (b"\x00\x01\x02\x03binary", r"not a text \(CSV\)"),
])
def test_unreadable_files_say_what_to_do(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(SendListError, match=message):
        open_table(path)


def test_a_missing_file():
    with pytest.raises(SendListError, match="cannot read"):
        open_table("/nonexistent/list.csv")


def test_detect_encoding_cuts_the_sample_at_a_line_end():
    text = "手机号,姓名\n" + "13800138000,张伟伟\n" * 10000
    sample = text.encode("gbk")[:64 * 1024]  # cut in the middle of a character
    assert detect_encoding(sample) == "gb18030"
    assert detect_encoding(text.encode("utf-8")[:64 * 1024]) == "utf-8"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash_the_reader(tmp_path, data):
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    try:
        with open_table(path) as table:
            prepare(table, Template("您好"), region="CN", screen=SCREEN, opted_out=set(), balance=0)
    except SendListError:
        pass


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.text(max_size=20), min_size=1, max_size=4), max_size=20))
def test_arbitrary_rows_never_crash_the_preview(tmp_path, rows):
    path = tmp_path / "rows.csv"
    buf = io.StringIO()
    csv.writer(buf).writerows([["手机", "姓名"], *rows])
    path.write_text(buf.getvalue(), encoding="utf-8")
    try:
        with open_table(path) as table:
            preview = prepare(table, Template("{姓名}"), region="CN", screen=SCREEN, opted_out=set(), balance=0)
    except (SendListError, TemplateError):
        return
    assert preview.accepted + preview.refused <= len(rows)


def test_the_same_text_to_many_numbers_is_flagged(tmp_path):
    rows = [[f"138{i:08d}", f"顾客{i}", "1"] for i in range(60)]
    path = write_csv(tmp_path / "many.csv", rows, "utf-8")
    plain = run(path, "周六全场9折")
    assert "the same text goes to 60 numbers without any merge field" in plain.identical_text_warning
    assert "{姓名}" in plain.identical_text_warning
    assert run(path, "{姓名}您好，周六全场9折").identical_text_warning is None
    few = write_csv(tmp_path / "few.csv", rows[:10], "utf-8")
    assert run(few, "周六全场9折").identical_text_warning is None
