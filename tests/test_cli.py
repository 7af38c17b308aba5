"""The smsgenie command line, through click's CliRunner and as a real process."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from appliance.clock import SystemClock
from appliance.db import Database
from appliance.sendqueue import SendQueue
from smsgenie.cli import cli
from tests.conftest import make_box, modem_statuses, running_daemon, wait_for


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.setenv("SMSGENIE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SMSGENIE_CONFIG", raising=False)
    make_box(tmp_path / "data")
    return CliRunner()


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return str(path)


def test_send_queues_every_good_row_and_reports_the_rest(runner, tmp_path):
    csv = write(tmp_path / "list.csv", "\ufeff姓名,手机号\n张伟,138 0013 8000\n王芳,+86-139-0013-9000\n"
                                       "重复,13800138000\n错号,12345\n空,\n")
    result = runner.invoke(cli, ["send", csv, "--text", "您好，订单已到店。"])
    assert result.exit_code == 0, result.output
    assert "Queued 2 messages from list.csv (2 SMS parts in all; numbers from column '手机号')" in result.output
    assert "by carrier: China Mobile 2 (2 credits)" in result.output
    assert "row 4: 138****8000: duplicate" in result.output
    assert "row 5: 12345: invalid" in result.output
    assert "row 6: (empty): invalid - no phone number" in result.output
    assert "daemon is not running" in result.output
    q = SendQueue(Database.in_data_dir(tmp_path / "data"), SystemClock())
    assert [m.recipient for m in q.messages()] == ["+8613800138000", "+8613900139000"]


def test_the_shop_s_commands_speak_chinese_to_a_chinese_terminal(runner, tmp_path, monkeypatch):
    """Under LANG=zh_CN.UTF-8, send, status, pause and resume say everything in Chinese (the page's
    catalogue): only names, numbers, codes and commands stay as they are."""
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    csv = write(tmp_path / "list.csv", "姓名,手机号\n张伟,13800138000\n错号,12345\n")
    sent = runner.invoke(cli, ["send", csv, "--text", "您好，订单已到店。", "--transactional"])
    assert sent.exit_code == 0, sent.output
    lines = sent.output.splitlines()
    assert lines[0] == "已从 list.csv 排队 1 条短信（共 1 条计费短信；号码取自“手机号”列）。"
    assert "按运营商：中国移动 1 条（1 点）" in lines[1] and "需要 1 点，余额" in lines[2]
    assert "1 行被拒（号码无效 1）：" in sent.output and "第 3 行：12345：号码无效" in sent.output
    assert "注意：smsgenie 后台服务未运行" in sent.output
    status = runner.invoke(cli, ["status"]).output
    assert status.startswith("队列：  等待中 1  发送中 0  已发送 0  已送达 0  失败 0")
    for start in ("速度：", "今日：", "余额：", "GPIO：  未使用引脚"):
        assert f"\n{start}" in status, (start, status)
    assert "已停止" in status  # the modem: the daemon is not running
    assert "余额：  0 —— 发送已暂停，余额不足：短信 1 需要 1 点，余额只有 0 点。充值后继续发送" in status
    assert runner.invoke(cli, ["pause"]).output == "发送已暂停。运行“smsgenie resume”恢复发送。\n"
    assert "整机发送已由 命令行 于 " in runner.invoke(cli, ["status"]).output
    assert runner.invoke(cli, ["resume"]).output == "已恢复发送。\n"
    english = re.compile(r"[A-Za-z]{2,} [A-Za-z]{2,} [A-Za-z]{2,}")  # three English words in a row: a sentence
    assert not english.findall(sent.output + status), english.findall(sent.output + status)
    monkeypatch.setenv("LANG", "C.UTF-8")
    assert runner.invoke(cli, ["resume"]).output == "Sending was not paused.\n"


def test_the_record_the_book_and_the_lists_speak_chinese_too(runner, tmp_path, monkeypatch):
    """The opt-out list, the keyword lists, the record, the customer book and the shop under LANG=zh_CN.UTF-8:
    Chinese, and one of the command's own refusals too."""
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    said = {
        "optout": runner.invoke(cli, ["optout", "add", "13800138000", "--reason", "来电要求"]).output,
        "optout list": runner.invoke(cli, ["optout", "list"]).output,
        "keywords": runner.invoke(cli, ["keywords", "list"]).output,
        "audit": runner.invoke(cli, ["audit", "verify"]).output,
        "customers": runner.invoke(cli, ["customers", "list"]).output,
        "shop": runner.invoke(cli, ["shop"]).output,
        "inbox": runner.invoke(cli, ["inbox"]).output,
    }
    assert said["optout"] == "138****8000 已加入退订名单。\n"
    assert "店铺录入" in said["optout list"] and "供应商名单：第 " in said["keywords"]
    assert said["audit"].startswith("短信记录完好：") and said["customers"].startswith("1 位顾客")
    assert said["shop"].startswith("店铺：") and said["inbox"] == "还没有收到短信。\n"
    english = re.compile(r"[A-Za-z]{2,} [A-Za-z]{2,} [A-Za-z]{2,}")
    assert not {k: v for k, v in said.items() if english.search(v)}, said
    refused = runner.invoke(cli, ["keywords", "remove", "没有这个词"])
    assert refused.exit_code == 1 and "不在店铺自己的名单上" in refused.output


def plain_signature(tmp_path):
    """A shop whose signature and footer are plain GSM-7 (the tests of the GSM-7 price need one)."""
    from appliance.settings import ShopSettings

    with ShopSettings(tmp_path / "data") as s:
        s.set("signature", "[Shop]")
        s.set("unsubscribe_footer", "STOP=TD")


def test_send_reads_gbk_from_excel_and_takes_the_first_column_without_a_phone_header(runner, tmp_path):
    plain_signature(tmp_path)
    csv = write(tmp_path / "gbk.csv", "号码,名字\r\n13800138000,张伟\r\n", encoding="gbk")
    result = runner.invoke(cli, ["send", csv, "--text", "hi " * 60])
    assert result.exit_code == 0, result.output
    assert "Queued 1 message from gbk.csv (2 SMS parts in all; numbers from column '号码')" in result.output
    assert "encoding: 1 GSM-7" in result.output


def test_send_warns_about_one_character_forcing_ucs2(runner, tmp_path):
    plain_signature(tmp_path)
    csv = write(tmp_path / "l.csv", "phone\n13800138000\n")
    result = runner.invoke(cli, ["send", csv, "--text", "Don’t miss our sale: everything half price " * 4])
    assert "the character '’' makes these texts UCS-2" in result.output
    assert "it costs 1 extra credit:" in result.output  # 3 parts in UCS-2, 2 in GSM-7


@pytest.mark.parametrize("content,text,message", [
    (None, "hi", "cannot read"),
    ("", "hi", "is empty"),
    ("phone\nabc\n", "hi", "no row of bad.csv can be sent"),
    ("phone\n13800138000\n", "  ", "the message text is empty"),
])
def test_send_refuses_bad_input_clearly(runner, tmp_path, content, text, message):
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_text(content)
    result = runner.invoke(cli, ["send", str(path), "--text", text])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_status_json_contract(runner, tmp_path):
    result = runner.invoke(cli, ["status", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data["queue"]) >= {"queued", "sending", "sent", "delivered", "failed", "uncertain"}
    assert isinstance(data["modem"]["state"], str) and data["modem"]["state"] == "stopped"
    assert isinstance(data["modem"]["operator"], str)
    assert isinstance(data["modem"]["signal"], int)


def test_status_while_the_daemon_runs(sim, config, tmp_path):
    with running_daemon(config):
        q = SendQueue(Database.in_data_dir(config.data_dir), SystemClock())
        wait_for(lambda: modem_statuses(q).get(sim.port, {}).get("state") == "registered", 10)
        result = CliRunner().invoke(cli, ["--data-dir", config.data_dir, "status", "--json"])
        data = json.loads(result.output)
        assert (data["modem"]["state"], data["modem"]["operator"], data["modem"]["signal"]) == \
            ("registered", "CHINA MOBILE", 24)
        assert data["daemon"]["running"] is True
        human = CliRunner().invoke(cli, ["--data-dir", config.data_dir, "status"]).output
        assert "modem1:  online" in human and "CHINA MOBILE" in human and "0 last hour" in human


def test_requeue_uncertain(runner, tmp_path):
    q = SendQueue(Database.in_data_dir(tmp_path / "data"), SystemClock())
    q.ledger.adjust(10, "credit for the test")
    from appliance.plan import plan_message
    ids = q.enqueue(None, ["+8613800138000", "+8613800138001"], plan_message("x"), "YL08")
    q.claim()
    q.claim()
    q.recover_interrupted(None)
    assert runner.invoke(cli, ["requeue"]).exit_code == 2
    result = runner.invoke(cli, ["requeue", "--uncertain", "--id", str(ids[0])])
    assert "Requeued 1 uncertain message." in result.output
    assert runner.invoke(cli, ["requeue", "--uncertain"]).output.strip() == "Requeued 1 uncertain message."
    assert q.counts()["queued"] == 2


def test_config_errors_name_the_key(runner, tmp_path):
    cfg = write(tmp_path / "c.toml", '[modem]\nport = "/dev/x"\nbaud = 9600\n')
    result = runner.invoke(cli, ["--config", cfg, "status"])
    assert result.exit_code == 1
    assert "unknown key 'modem.baud' (did you mean 'modem.baudrate'?)" in result.output
    result = runner.invoke(cli, ["--config", str(tmp_path / "nope.toml"), "status"])
    assert "config file" in result.output and "does not exist" in result.output


def test_data_dir_flag_overrides_the_config(runner, tmp_path, monkeypatch):
    cfg = write(tmp_path / "c.toml", f'data_dir = "{tmp_path / "from-config"}"\n')
    monkeypatch.setenv("SMSGENIE_DATA_DIR", str(tmp_path / "env"))
    assert runner.invoke(cli, ["--config", cfg, "init"]).exit_code == 0
    assert (tmp_path / "env" / "smsgenie.db").exists()  # $SMSGENIE_DATA_DIR wins
    runner.invoke(cli, ["--config", cfg, "--data-dir", str(tmp_path / "flag"), "init"])
    assert (tmp_path / "flag" / "smsgenie.db").exists() and not (tmp_path / "from-config").exists()


def test_unwritable_data_dir_is_a_clear_error(runner, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = runner.invoke(cli, ["--data-dir", str(blocker / "sub"), "init"])
    assert result.exit_code == 1
    assert "cannot create the data directory" in result.output


@pytest.mark.parametrize("command", [["status"], ["balance"], ["pause"], ["settings", "set", "signature", "x"],
                                     ["optout", "list"], ["send", "l.csv", "--text", "hi"], ["audit", "verify"]])
def test_a_mistyped_data_dir_is_refused_and_never_made(runner, tmp_path, command):
    typo = tmp_path / "smsgenie-dmeo"
    write(tmp_path / "l.csv", "phone\n13800138000\n")
    result = runner.invoke(cli, ["--data-dir", str(typo), *[str(tmp_path / c) if c == "l.csv" else c
                                                            for c in command]])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert f"{typo} does not exist: check --data-dir" in result.output
    assert not typo.exists()


@pytest.mark.system  # a real smsgenie process
def test_run_with_a_missing_modem_keeps_trying_and_stops_on_sigterm(tmp_path):
    import signal
    cfg = write(tmp_path / "c.toml", f'data_dir = "{tmp_path / "d"}"\n[modem]\nport = "{tmp_path / "none"}"\n'
                                     f'[web]\nlisten = ""\n')
    proc = subprocess.Popen([sys.executable, "-m", "smsgenie", "--config", cfg, "run"],
                            stderr=subprocess.PIPE, text=True)
    try:
        q = SendQueue(Database.in_data_dir(tmp_path / "d"), SystemClock())
        wait_for(lambda: "does not exist" in modem_statuses(q).get(str(tmp_path / "none"), {}).get("detail", ""), 15)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert "does not exist: check the modem is plugged in" in err
    assert modem_statuses(q)[str(tmp_path / "none")]["state"] == "stopped"


def test_pause_and_resume_the_whole_box(runner, tmp_path):
    base = ["--data-dir", str(tmp_path / "data")]
    assert "Sending paused" in runner.invoke(cli, [*base, "pause"]).output
    data = json.loads(runner.invoke(cli, [*base, "status", "--json"]).output)
    assert data["sending_paused"]["by"] == "the command line"
    assert "'smsgenie resume' sends again" in runner.invoke(cli, [*base, "status"]).output
    assert runner.invoke(cli, [*base, "resume"]).output.strip() == "Sending resumed."
    assert runner.invoke(cli, [*base, "resume"]).output.strip() == "Sending was not paused."
    assert json.loads(runner.invoke(cli, [*base, "status", "--json"]).output)["sending_paused"] is None


def test_reading_a_long_list_shows_a_bar_on_a_terminal_and_nothing_when_piped(tmp_path):
    import io

    from smsgenie.cli.sending import RowProgress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    path = tmp_path / "big.csv"
    path.write_text("phone\n" + "".join(f"138{i:08d}\n" for i in range(5000)))
    shown = Terminal()
    with RowProgress(str(path), stream=shown) as bar:
        for rows in range(1000, 5001, 1000):
            bar._shown_at = 0.0  # as if 0.2 s had passed since the last redraw
            bar.update(rows)
    text = shown.getvalue()
    assert "Reading [" in text and "1,000/5,000 rows" in text and "5,000/5,000 rows" in text
    assert text.endswith("\r")  # the line is cleared for what the command prints next
    piped = io.StringIO()
    with RowProgress(str(path), stream=piped) as bar:
        bar.update(1000)
    assert piped.getvalue() == ""
