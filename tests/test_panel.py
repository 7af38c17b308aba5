"""The counter panel: screens, the menu, the buttons' effects, alerts, dimming, golden images.

Buttons are gpiozero Buttons on its MockFactory, pressed by driving the mock
pins; the display is luma.emulator's capture device (hw.display.emulated).
Golden images need WenQuanYi Zen Hei (fonts-wqy-zenhei, which scripts/test
installs); regenerate them with scripts/golden after a deliberate change.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory
from PIL import Image, ImageChops

from appliance.clock import FakeClock
from appliance.config import Config, ModemConfig, PanelConfig, WebConfig
from appliance.db import Database
from appliance.lan import lan_address
from appliance.lock import DataDirLock
from appliance.modemstatus import ModemStatusBoard
from appliance.pause import SendingPause
from appliance.plan import plan_message
from appliance.policy import NO_CAPS
from appliance.sendlists import SendLists
from appliance.sendqueue import SendQueue
from appliance.settings import ShopSettings as Settings
from appliance.ui import screens
from appliance.ui.draw import CJK_FONTS, load_font, render
from appliance.ui.menu import Navigator, menu_items
from appliance.ui.panel import Panel
from appliance.ui.screens import ModemLine, Snapshot
from appliance.ui.text import SMS_TEXTS, ZH, tr
from hw.buttons import BOUNCE_TIME, mock_buttons
from hw.display.emulated import EmulatedOled
from tests.conftest import give_vendor_list, running_daemon, wait_for

GOLDEN = Path(__file__).parent / "golden" / "panel"
ZENHEI = CJK_FONTS[0][0]
BUSY = Snapshot(balance=1234, waiting=12, sending=1, sent_today=356, failed_today=2,
                modems=(ModemLine("modem1", "registered", "CHINA MOBILE", "4G", 22, "898600**********1234"),),
                active_list={"name": "会员日 promo", "done": 120, "total": 500, "eta_minutes": 18.2},
                address="192.168.1.23:8080", device_id="WERG-RZMA", setup_pin="123456",
                test_number="+8613800138000", low_credit_alert=50,
                box_key="ed25519:qU9k3Z1f6M0xR2bT7yV4nW8cE5hJ1sL3aD6gK9pQ0tY=", box_key_id="4XJ9M2QA")


APPROVAL = Snapshot(modems=(ModemLine("modem1", "registered", "CHINA MOBILE", "4G", 22),), awaiting=(
    __import__("appliance.approval", fromlist=["Waiting"]).Waiting(
        3, "周六会员日", "marketing", "user:2", 0.0, 1200, 2400, "周六会员日，全场八折，回T退订【小王便利店】"),))


def needs_zenhei():
    if not Path(ZENHEI).is_file():
        pytest.skip("WenQuanYi Zen Hei is not installed (apt install fonts-wqy-zenhei; scripts/test does)")
    return load_font()


# --- what the screens say ---------------------------------------------------------------------------------


def test_home_screen_in_both_languages():
    zh = screens.home(BUSY, "zh_CN")
    assert zh.title == "中国移动" and zh.lines == ("余额 1,234 条", "待发12 发送中1", "今日已发356 失败2")
    assert (zh.bars, zh.badge) == (4, "4G")  # like a phone: operator, network type, bars
    en = screens.home(BUSY, "en")
    assert en.title == "CHINA MOBILE" and en.lines == ("Balance 1,234", "Queue 12 Sending 1", "Today 356 Failed 2")
    paused = screens.home(Snapshot(paused_by="the counter panel"), "zh_CN")
    assert paused.title == "短信精灵" and paused.lines[1] == "发送已暂停"  # no network: the box's name


def test_home_lines_fit_with_big_numbers():
    font = needs_zenhei()
    from appliance.ui.draw import fit

    big = Snapshot(balance=123_456, waiting=9_999, sending=2, sent_today=1_000, failed_today=99,
                   modems=(ModemLine("modem1", "registered", "CHN-UNICOM", "4G", 12),))
    for lang in ("zh_CN", "en"):
        for line in screens.home(big, lang).lines:
            assert fit(line, font, 126) == line, (lang, line)


def test_list_address_and_modem_screens():
    lst = screens.current_list(BUSY, "zh_CN")
    assert lst.title == "会员日 promo" and lst.lines[0] == "已发 120/500" and lst.progress == pytest.approx(0.24)
    assert lst.lines[1] == "约剩 18 分钟"
    assert screens.current_list(Snapshot(), "en").lines[0] == "No list sending"
    first = screens.address(BUSY, "zh_CN")  # first run: the address and the set-up PIN
    assert first.title == "首次设置" and "192.168.1.23:8080" in first.lines and "再输入 PIN 123456" in first.lines
    done = screens.address(Snapshot(address="192.168.1.23:8080"), "en")
    assert done.lines == ("Open in a browser", "192.168.1.23:8080")
    assert screens.address(Snapshot(), "en").lines[0] == "No network address"
    info = screens.modem_info(BUSY, "en")
    assert info.lines == ("online CHINA MOBILE", "Signal 22/31 4G", "SIM 8986…1234")  # the ICCID masked
    assert screens.modem_info(BUSY, "zh_CN").lines[0] == "在线 中国移动"


def test_numbers_are_masked_on_the_panel():
    confirm = screens.test_sms_confirm(BUSY, "zh_CN")
    assert confirm.lines[0] == "发到 138****8000"
    assert "13800138000" not in repr(confirm)


def test_alerts_say_what_to_do():
    out = screens.alerts(Snapshot(shortfall="out of credit: 2 needed, 0 left", waiting=3), "zh_CN")
    assert [(a.key, a.title) for a in out] == [("credit-out", "余额不足")]
    assert out[0].lines == ("发送已停止", "请在网页上充值")
    low = screens.alerts(Snapshot(balance=20, low_credit_alert=50), "en")
    assert low[0].key == "credit-low" and low[0].lines[0] == "20 credits left"
    assert screens.alerts(Snapshot(balance=20, low_credit_alert=0), "en") == []  # 0: no low-credit alert
    assert screens.alerts(Snapshot(balance=60, low_credit_alert=50, modems=(ModemLine(state="no-sim"),)),
                          "en")[0].key == "no-sim"
    assert screens.alerts(Snapshot(balance=60, modems=(ModemLine(state="searching"),)), "en")[0].title == "No network"
    assert screens.alerts(Snapshot(balance=60, modems=(ModemLine(state="dead"),)), "en")[0].lines == \
        ("Call the technician",)
    disk = screens.alerts(Snapshot(balance=60, disk_free_mb=120, disk_free_fraction=0.01), "zh_CN")
    assert disk[0].key == "disk" and disk[0].lines[0] == "剩余 120 MB"


TWO_MODEMS = Snapshot(balance=60, modems=(
    ModemLine("移动卡", "registered", "CHINA MOBILE", "4G", 22, "898600**********1234"),
    ModemLine("联通卡", "no-sim", signal=99)))


def test_a_box_with_two_modems_shows_each_and_alerts_for_each():
    """Modem info leafs through the modems, the title naming the one shown; an alert names its modem and is
    acknowledged on its own; the title row's network is the first modem's."""
    first, second = (screens.modem_info(TWO_MODEMS, "zh_CN", i) for i in (0, 1))
    assert first.title == "移动卡 1/2" and first.lines[0] == "在线 中国移动" and first.bars == 4
    assert second.title == "联通卡 2/2" and second.lines == ("无SIM卡", "无信号", "无 SIM 信息") and second.bars == 0
    assert screens.modem_info(TWO_MODEMS, "zh_CN", 5).title == "联通卡 2/2"  # a modem gone since: the last
    alerts = screens.alerts(TWO_MODEMS, "zh_CN")
    assert [(a.key, a.title, a.lines) for a in alerts] == \
        [("no-sim:联通卡", "没有 SIM 卡", ("联通卡", "插入SIM卡后重启"))]
    assert screens.home(TWO_MODEMS, "zh_CN").title == "中国移动"
    held = Snapshot(balance=60, modems=(ModemLine("a", "registered"), ModemLine("b", "registered", held=True)))
    assert [(a.key, a.lines) for a in screens.alerts(held, "en")] == [("sim-held:b", ("b", "Check with the carrier"))]
    nav = Navigator()
    nav.button("ok", "press", TWO_MODEMS, 0)
    nav.index = menu_items(TWO_MODEMS).index("Modem info")
    nav.button("ok", "press", TWO_MODEMS, 0)
    assert nav.screen(TWO_MODEMS, "zh_CN", 0).title == "移动卡 1/2"
    nav.button("down", "press", TWO_MODEMS, 0)
    assert nav.screen(TWO_MODEMS, "zh_CN", 0).title == "联通卡 2/2"
    nav.button("down", "press", TWO_MODEMS, 0)
    assert nav.screen(TWO_MODEMS, "zh_CN", 0).title == "移动卡 1/2"  # round again
    nav.button("back", "press", TWO_MODEMS, 0)
    assert nav.mode == "menu"


SAMPLE_VALUES = {"n": "12,345", "done": "1,234", "total": "5,000", "pin": "123456", "number": "138****8000",
                 "mb": "150", "stamp": "11-25 14:30", "iccid": "8986…1234", "id": "4XJ9M2QA", "i": "2",
                 "parts": "2,468"}


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_every_panel_text_fits_the_glass(lang):
    """No word of the panel's is cut: each fits a 128-pixel line (titles leave room for the bars)."""
    font = needs_zenhei()
    for key in set(ZH) - SMS_TEXTS:
        text = tr(lang, key, **{k: v for k, v in SAMPLE_VALUES.items() if "{" + k + "}" in key})
        assert font.width(text) <= 126, (lang, key, text, font.width(text))


# --- the menu ----------------------------------------------------------------------------------------


def test_menu_navigation():
    nav, s = Navigator(), Snapshot()
    assert nav.screen(s, "en", 0).title == "SMS Genie"
    nav.button("down", "press", s, 0)
    assert nav.screen(s, "en", 0).progress is None and nav.page == 1  # the list page
    nav.button("up", "repeat", s, 0)
    nav.button("ok", "press", s, 0)
    menu = nav.screen(s, "en", 0)
    assert menu.title == "Menu" and menu.lines[menu.selected] == "Pause sending"
    nav.button("up", "press", s, 0)  # wraps to the last item
    menu = nav.screen(s, "en", 0)
    assert menu.lines[menu.selected] == "Screen off"
    assert nav.button("ok", "press", s, 0) == "screen_off"
    for _ in range(4):  # Pause, Web address, Device ID, Send a test SMS (no set-up PIN: already set up)
        nav.button("down", "press", s, 0)
    assert menu_items(s)[nav.index] == "Send a test SMS"
    nav.button("ok", "press", s, 0)
    assert nav.screen(s, "en", 0).lines == ("No test number", "Set it on the web page")
    assert nav.button("ok", "press", s, 0) is None  # nothing to send to
    with_number = Snapshot(test_number="+8613800138000")
    nav.button("ok", "press", with_number, 0)
    assert nav.button("back", "press", with_number, 0) is None and nav.mode == "menu"  # Back: no
    nav.button("ok", "press", with_number, 0)
    assert nav.button("ok", "press", with_number, 0) == "test_sms"
    nav.button("back", "long", s, 0)
    assert nav.mode == "home" and nav.page == 0


def test_the_box_key_screen_shows_the_whole_public_key():
    key = "ed25519:" + "Ab3+" * 10 + "xyz="
    s = Snapshot(box_key=key, box_key_id="7K3M9QAZ", device_id="WERG-RZMA")
    nav = Navigator()
    nav.button("ok", "press", s, 0)
    while menu_items(s)[nav.index] != "Box key":
        nav.button("down", "press", s, 0)
    nav.button("ok", "press", s, 0)
    shown = nav.screen(s, "zh_CN", 0)
    assert shown.title.startswith("本机签名公钥") or "本机签名公钥" in shown.title
    assert "".join(shown.lines) == key.removeprefix("ed25519:")
    assert "密钥 7K3M9QAZ" in screens.device(s, "zh_CN").lines


def test_menu_offers_resume_when_paused_and_the_pin_only_on_first_run():
    assert menu_items(Snapshot(paused_by="x"))[0] == "Resume sending"
    assert "Set-up PIN" in menu_items(Snapshot(setup_pin="123456"))
    assert "Set-up PIN" not in menu_items(Snapshot())
    nav = Navigator()
    nav.button("ok", "press", Snapshot(), 0)
    nav.show_message("Done", (), 10.0)
    assert nav.mode == "message"
    nav.screen(Snapshot(), "en", 14.0)  # a result shows for a few seconds, then the menu
    assert nav.mode == "menu"


# --- the panel in the daemon, with buttons ------------------------------------------------------------


@pytest.fixture
def panel_box(sim, tmp_path):
    """A daemon sending to the simulated modem, with an emulated OLED and mock buttons."""
    sim.send_latency = 0.05
    config = Config(data_dir=str(tmp_path / "data"), service_code="YL08", web=WebConfig(listen=""),
                    modems=(ModemConfig(port=sim.port, send_timeout=2.0, **NO_CAPS),),
                    panel=PanelConfig(display="emulator", buttons="mock"))
    db = Database.in_data_dir(config.data_dir)
    give_vendor_list(db)
    q = SendQueue(db, __import__("appliance.clock", fromlist=["SystemClock"]).SystemClock())
    s = Settings(config.data_dir)
    s.set("quiet_hours", "")
    s.set("low_credit_alert", 0)
    s.close()
    yield config, q
    db.close()


def press(daemon, *names, hold=0.0):
    for name in names:
        daemon.buttons.press(name, hold=hold)
        time.sleep(0.06)  # past the debounce


def selected(daemon):
    screen = daemon.panel.screen
    return screen.lines[screen.selected] if screen is not None and screen.selected is not None else None


def on_screen(daemon, text, timeout=5.0):
    wait_for(lambda: daemon.panel.screen is not None and (
        text == daemon.panel.screen.title or text in daemon.panel.screen.lines), timeout,
        message=f"{text!r} on the panel")


def test_pause_from_the_panel_really_pauses_the_queue(panel_box, sim):
    config, q = panel_box
    q.ledger.adjust(100, "credit")
    q.enqueue(None, [f"+86138{i:08d}" for i in range(40)], plan_message("周六大促"), "YL08")
    with running_daemon(config) as daemon:
        wait_for(lambda: len(sim.accepted) >= 2, 10)
        on_screen(daemon, "中国移动")
        press(daemon, "ok")
        on_screen(daemon, "菜单")
        press(daemon, "ok")  # the first item: 暂停发送
        on_screen(daemon, "发送已暂停")
        assert SendingPause(q.db, q.clock).current()["by"] == "the counter panel"
        time.sleep(0.3)  # the message in hand finishes
        held = len(sim.accepted)
        time.sleep(1.0)
        assert len(sim.accepted) == held < 40  # nothing more goes out
        assert q.counts()["queued"] > 0
        press(daemon, "back")  # the result message -> the menu, which now offers 继续发送
        wait_for(lambda: selected(daemon) == "继续发送", 5)
        press(daemon, "ok")
        wait_for(lambda: len(sim.accepted) == 40, 20, message="the rest sent after resuming")
    assert SendingPause(q.db, q.clock).current() is None


def test_test_sms_from_the_panel_really_queues_one_message(panel_box, sim):
    config, q = panel_box
    q.ledger.adjust(5, "credit")
    s = Settings(config.data_dir)
    s.set("test_number", "138 0013 8000")
    s.set("signature", "【小王便利店】")
    s.close()
    with running_daemon(config) as daemon:
        on_screen(daemon, "中国移动")
        press(daemon, "ok", "down", "down", "down")  # 暂停发送, 网页地址, 本机编号, 发送测试短信
        wait_for(lambda: selected(daemon) == "发送测试短信", 5)
        press(daemon, "ok")
        on_screen(daemon, "发到 138****8000")
        press(daemon, "ok")
        on_screen(daemon, "测试短信已排队")
        wait_for(lambda: len(sim.accepted) == 1, 10)
    (msg,) = q.messages()
    assert msg.recipient == "+8613800138000" and msg.text.startswith("短信精灵测试短信 ")
    assert msg.text.endswith("【小王便利店】")
    assert q.ledger.balance() == 4  # it cost one part
    assert SendLists(q.db, q.clock).get(msg.send_list_id)["kind"] == "transactional"  # not held by quiet hours


def test_a_list_approved_at_the_counter_goes_out(panel_box, sim):
    from appliance.accounts import Accounts
    from appliance.intake import Intake

    config, q = panel_box
    q.ledger.adjust(5, "credit")
    clerk = Accounts(q.db, q.clock).create("clerk", "a long password 1", "staff")
    text = "周六会员日八折"
    answer = Intake(q.db, q.clock, config).queue_messages([("13800138000", text), ("13900139000", text)],
                                                          name="会员日", by=f"user:{clerk.id}")
    with running_daemon(config) as daemon:
        on_screen(daemon, "中国移动")
        press(daemon, "ok", "down")  # 暂停发送, 审批名单 (1)
        wait_for(lambda: selected(daemon) == "审批名单 (1)", 5)
        press(daemon, "ok")
        on_screen(daemon, "1/1 会员日")
        assert daemon.panel.screen.title == "OK发送 返回拒绝" and sim.accepted == []
        press(daemon, "ok")
        on_screen(daemon, "已批准，开始发送")
        wait_for(lambda: len(sim.accepted) == 2, 10)
    assert SendLists(q.db, q.clock).get(answer.list_id)["approved_by"] == "panel"
    assert q.ledger.balance() == 3


def test_restart_modem_from_the_panel(panel_box, sim):
    config, q = panel_box
    with running_daemon(config) as daemon:
        on_screen(daemon, "中国移动")
        wait_for(lambda: daemon.workers[0].modem.state.ready, 10)
        press(daemon, "ok", "up", "up")  # from the first item up past 关闭屏幕 to 重启短信猫
        wait_for(lambda: selected(daemon) == "重启短信猫", 5)
        press(daemon, "ok")
        on_screen(daemon, "确定? 按OK确认")
        press(daemon, "ok")
        on_screen(daemon, "短信猫正在重启")
        wait_for(lambda: "AT+CFUN=1,1" in sim.commands, 5)


def test_long_press_back_goes_home(panel_box):
    config, q = panel_box
    with running_daemon(config) as daemon:
        on_screen(daemon, "中国移动")
        press(daemon, "ok", "down", "ok")  # into 网页地址
        on_screen(daemon, "网页地址")
        press(daemon, "back", hold=1.0)
        on_screen(daemon, "中国移动")


def test_the_emulated_oled_shows_the_frames(panel_box):
    config, q = panel_box
    with running_daemon(config) as daemon:
        on_screen(daemon, "中国移动")
        display = daemon.panel.display
        frames = display.frames
        press(daemon, "down")
        assert display.wait_for_frame(frames, 5) > frames
        png = Path(config.data_dir) / "oled.png"
        assert Image.open(png).size == (384, 192)  # scaled up for people
        assert display.image.size == (128, 64) and display.image.mode == "1"


# --- alerts and the screen's light, in simulated time ---------------------------------------------------


@pytest.fixture
def bare_panel(tmp_path):
    config = Config(data_dir=str(tmp_path / "data"), service_code="YL08", web=WebConfig(listen=""),
                    panel=PanelConfig(display="emulator", dim_seconds=60, off_seconds=600))
    clock = FakeClock()
    display = EmulatedOled(tmp_path / "oled.png", scale=1)
    panel = Panel(config, display, clock=clock, address=lambda: "192.168.1.23:8080")
    panel.open()
    yield panel, clock, display
    panel.close()


def test_an_alert_takes_over_until_ok_and_comes_back_with_its_cause(bare_panel):
    panel, clock, display = bare_panel
    q = panel.queue
    q.enqueue(None, ["+8613800138000"], plan_message("hi"), "YL08")  # no credit: sending waits
    panel.step()
    assert panel.screen.framed and panel.screen.title == "余额不足"
    panel.button("down")
    panel.step()
    assert panel.screen.title == "余额不足"  # other buttons do not dismiss it
    panel.button("ok")
    panel.step()
    assert panel.screen.title == "短信精灵" and not panel.screen.framed
    q.ledger.adjust(100, "top-up")
    panel.step()
    assert "credit-out" not in panel.acknowledged  # the cause went away ...
    q.ledger.adjust(-100, "spent elsewhere")
    panel.step()
    assert panel.screen.title == "余额不足"  # ... and came back: it alerts again


def test_modem_alerts_wait_until_the_state_lasts(bare_panel):
    panel, clock, display = bare_panel
    panel.queue.ledger.adjust(100, "credit")
    with DataDirLock(panel.config.data_dir):  # a daemon is running
        ModemStatusBoard(panel.queue.db, panel.queue.clock).publish(panel.config.modem.port,
                                                                    {"state": "searching", "signal": 3})
        panel.step()
        assert not panel.screen.framed  # a modem finding the network at start is normal
        clock.advance(31)
        panel.step()
        assert panel.screen.title == "没有网络" and panel.screen.lines[0] == "检查天线和SIM卡"


def test_the_second_modem_s_problem_reaches_the_panel(tmp_path):
    """What the daemon publishes for each modem of the config reaches the screens, each by its label."""
    config = Config(data_dir=str(tmp_path / "data"), service_code="YL08", web=WebConfig(listen=""),
                    modems=(ModemConfig(port="/dev/m1", label="移动卡"), ModemConfig(port="/dev/m2", label="联通卡")),
                    panel=PanelConfig(display="emulator"))
    clock = FakeClock()
    panel = Panel(config, None, clock=clock, address=lambda: None)
    panel.open()
    try:
        panel.queue.ledger.adjust(100, "credit")
        board = ModemStatusBoard(panel.queue.db, panel.queue.clock)
        with DataDirLock(config.data_dir):
            board.publish("/dev/m1", {"state": "registered", "label": "移动卡", "operator": "CHINA MOBILE",
                                      "signal": 20, "access": "4G"})
            board.publish("/dev/m2", {"state": "searching", "label": "联通卡", "signal": 2})
            panel.step()
            assert [m.label for m in panel.snapshot.modems] == ["移动卡", "联通卡"] and not panel.screen.framed
            clock.advance(31)
            panel.step()
            assert panel.screen.title == "没有网络" and panel.screen.lines[:2] == ("联通卡", "检查天线和SIM卡")
    finally:
        panel.close()


def test_the_screen_dims_goes_dark_and_the_waking_press_does_nothing_else(bare_panel):
    panel, clock, display = bare_panel
    panel.queue.ledger.adjust(100, "credit")
    panel.step()
    assert display.brightness == 1.0
    clock.advance(61)
    panel.step()
    assert panel.brightness == "dim" and display.brightness < 0.1
    clock.advance(600)
    panel.step()
    assert panel.brightness == "off" and display.brightness == 0.0
    panel.button("ok")
    panel.step()
    assert panel.brightness == "full" and display.brightness == 1.0
    assert panel.nav.mode == "home"  # the press only woke the screen
    panel.button("ok")
    panel.step()
    assert panel.nav.mode == "menu"


def test_a_new_alert_wakes_a_dark_screen(bare_panel):
    panel, clock, display = bare_panel
    panel.queue.ledger.adjust(100, "credit")
    clock.advance(700)
    panel.step()
    assert panel.brightness == "off"
    panel.queue.ledger.adjust(-100, "spent")
    panel.queue.enqueue(None, ["+8613800138000"], plan_message("hi"), "YL08")
    panel.step()
    assert panel.brightness == "full" and panel.screen.title == "余额不足"


def test_screen_off_from_the_menu(bare_panel):
    panel, clock, display = bare_panel
    panel.queue.ledger.adjust(100, "credit")
    panel.step()
    for name in ("ok", "up", "ok"):  # the menu, up to 关闭屏幕, choose it
        panel.button(name)
        panel.step()
    assert panel.brightness == "off" and display.brightness == 0.0
    clock.advance(3600)
    panel.step()
    assert panel.brightness == "off"
    panel.button("back")
    panel.step()
    assert panel.brightness == "full"


def test_lan_address():
    assert lan_address("") is None
    assert lan_address("127.0.0.1:8080") == "127.0.0.1:8080"
    assert lan_address("192.168.1.23:80") == "192.168.1.23"  # the image's page, on the usual port
    found = lan_address("0.0.0.0:8080")
    assert found is None or (found.endswith(":8080") and not found.startswith("127."))


# --- the buttons themselves ------------------------------------------------------------------------------


def test_buttons_debounce_repeat_and_long_press():
    events = []
    pins = {"up": 17, "down": 27, "ok": 22, "back": 23}
    with mock_buttons(pins, lambda n, k: events.append((n, k)), hold_time=0.2) as buttons:
        buttons.press("ok")
        time.sleep(0.06)
        buttons.press("down", hold=0.55)
        time.sleep(0.06)
        buttons.press("back", hold=0.45)
        time.sleep(0.06)
        assert all(b.pin.bounce == BOUNCE_TIME for b in buttons._buttons.values())  # contact bounce ignored
        assert all(b.pin.pull == "up" for b in buttons._buttons.values())  # buttons to ground
    assert events[0] == ("ok", "press")
    assert events[1] == ("down", "press") and events.count(("down", "repeat")) >= 2
    assert ("back", "press") in events and events.count(("back", "long")) == 1
    assert ("back", "repeat") not in events and ("ok", "repeat") not in events
    assert buttons.closed


def test_real_buttons_cannot_be_pressed_from_software():
    from hw.buttons import Buttons
    from hw.errors import ButtonsError

    b = Buttons({"up": 17, "down": 27, "ok": 22, "back": 23}, lambda n, k: None, pin_factory=MockFactory())
    b._mock = False  # as if on real pins
    with pytest.raises(ButtonsError, match="only simulated buttons"):
        b.press("ok")
    b.close()


def test_no_i2c_bus_says_what_to_do():
    from hw.display.oled import open_oled
    from hw.errors import DisplayNotFound

    with pytest.raises(DisplayNotFound, match="enable I2C"):
        open_oled("ssd1306", port=99)


# --- golden images ---------------------------------------------------------------------------------------

GOLDEN_SCREENS = {
    "home": lambda lang: screens.home(BUSY, lang),
    "list": lambda lang: screens.current_list(BUSY, lang),
    "address": lambda lang: screens.address(BUSY, lang),
    "menu": lambda lang: screens.menu(BUSY, lang, menu_items(BUSY), 4, 3),
    "modem": lambda lang: screens.modem_info(BUSY, lang),
    "test-sms": lambda lang: screens.test_sms_confirm(BUSY, lang),
    "alert": lambda lang: screens.alert_screen(screens.alerts(Snapshot(shortfall="x", waiting=3), lang)[0], lang),
    "device": lambda lang: screens.device(BUSY, lang),
    "box-key": lambda lang: screens.box_key(BUSY, lang),
    "approval": lambda lang: screens.approval(APPROVAL, lang, 0),
}


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
@pytest.mark.parametrize("name", sorted(GOLDEN_SCREENS))
def test_golden_screens(name, lang, tmp_path):
    """What the capture device wrote matches the reviewed image (at most 1% of pixels differ)."""
    font = needs_zenhei()
    display = EmulatedOled(tmp_path / "frame.png", scale=1)
    display.display(render(GOLDEN_SCREENS[name](lang), font))
    drawn = Image.open(tmp_path / "frame.png").convert("1")
    golden = GOLDEN / f"{name}-{lang}.png"
    if os.environ.get("SMSGENIE_REGENERATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        drawn.save(golden)
    assert golden.exists(), f"no golden image {golden}: run scripts/golden"
    diff = ImageChops.difference(drawn, Image.open(golden).convert("1"))
    differing = diff.convert("L").histogram()[255]
    assert differing <= 0.01 * 128 * 64, f"{differing} pixels differ from {golden.name}"
    assert drawn.convert("L").histogram()[255] > 200  # something was drawn
    other = Image.open(GOLDEN / f"{'list' if name != 'list' else 'home'}-{lang}.png").convert("1")
    assert ImageChops.difference(drawn, other).convert("L").histogram()[255] > 0.01 * 128 * 64  # and it can fail


def test_the_demo_keyboard_presses_the_buttons(monkeypatch):
    """The demo's terminal keys go to the buttons (a pty stands in for the terminal)."""
    import termios

    from smsgenie.demo.keyboard import KeyboardButtons

    master, slave = os.openpty()
    terminal = os.fdopen(slave, "r")
    monkeypatch.setattr("sys.stdin", terminal)
    before = termios.tcgetattr(slave)
    pressed = []

    class Recorder:
        def press(self, name, hold=False):
            pressed.append((name, hold))

    keys = KeyboardButtons(Recorder())
    assert keys.start()
    try:
        for key in (b"\x1b[A", b"\x1b[B", b"\r", b"h"):
            os.write(master, key)
            time.sleep(0.15)  # each key on its own, as typed
        os.write(master, b"\x1b")
        wait_for(lambda: len(pressed) == 5, 5)
    finally:
        keys.stop()
        assert termios.tcgetattr(slave) == before  # the terminal is given back as it was
        terminal.close()
        os.close(master)
    assert pressed == [("up", False), ("down", False), ("ok", False), ("back", True), ("back", False)]
