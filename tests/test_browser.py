"""The whole shop journey in a real browser (Debian's Chromium through Playwright).

Set-up with the PIN, top up, upload a GBK CSV, preview, send, watch the
dashboard reach "delivered" against the simulated modem, export the list.
With SMSGENIE_SCREENSHOTS=DIR set, the main pages are saved there as PNGs
(scripts/screenshots regenerates docs/screenshots/ this way).
"""

from __future__ import annotations

import os
import shutil
import threading
from datetime import date
from pathlib import Path

import pytest

from appliance import keywords, topup, vendor
from appliance.config import Config, ModemConfig, PanelConfig, VendorConfig, WebConfig
from appliance.device import this_device_id
from appliance.policy import NO_CAPS
from hw.modem.sim import SimulatedModem
from smsgenie.box import RunningBox
from tests.conftest import real_time_box, wait_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.system,
              pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/test "
                                                          "installs it when run as root)")]
PASSWORD = "counter-2026"
SHOTS = os.environ.get("SMSGENIE_SCREENSHOTS")


@pytest.fixture
def box(tmp_path):
    sim = SimulatedModem(directory=str(tmp_path / "sim"), send_latency=0.05, report_delay=0.2).start()
    key_path, pub_path = vendor.keygen(tmp_path / "vendor")
    version, words = keywords.baseline()  # the vendor's list, signed, as the image installs it
    signed = tmp_path / "vendor-keywords.txt"
    signed.write_text(keywords.sign_list(vendor.load_private_key(key_path), words, date.today(), version),
                      encoding="utf-8")
    config = Config(data_dir=str(tmp_path / "data"), service_code="YL08",
                    modems=(ModemConfig(port=sim.port, carrier="China Mobile", **NO_CAPS),),
                    vendor=VendorConfig(public_key=pub_path.read_text().strip(), keywords=str(signed)),
                    web=WebConfig(listen="127.0.0.1:0"), panel=PanelConfig(display="emulator", buttons="mock"))
    real_time_box(config.data_dir)
    running = RunningBox(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    yield running, vendor.load_private_key(key_path), tmp_path
    running.stop()
    thread.join(timeout=20)
    sim.close()


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        context = browser.new_context(locale="zh-CN", viewport={"width": 1100, "height": 800}, accept_downloads=True,
                                      ignore_https_errors=True)  # the box's CA is not installed in this browser
        yield context.new_page()
        browser.close()


def set_up(page, running, licence=""):
    """The first-run set-up page, filled in as a shop owner does (the page is open on it)."""
    page.fill("input[name=pin]", running.setup_pin)
    page.fill("input[name=shop_name]", "小王便利店")
    page.fill("input[name=shop_licence]", licence)
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("form button")
    page.wait_for_url(running.url + "/")


def shot(page, name):
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def test_the_shop_journey(box, page):
    from playwright.sync_api import expect

    running, vendor_key, tmp_path = box
    url = running.url
    assert url.startswith("https://")  # HTTPS, the box's default: the session cookie is Secure
    page.goto(url)
    assert page.url.endswith("/setup")
    assert "设置本机" in page.inner_text("h1")
    shot(page, "1-setup")
    set_up(page, running, licence="91310000MA1K000000")
    assert "概览" in page.inner_text("h1")

    page.goto(url + "/topup")
    device = this_device_id(running.config.data_dir)
    code = topup.sign(vendor_key, device=device, serial=os.urandom(6), credits=500, issued=date.today(),
                      expires=None)
    page.fill("textarea[name=code]", code)
    page.click("form.card button")
    page.wait_for_selector("text=已充值 500 条")
    shot(page, "2-topup")


    csv_path = tmp_path / "顾客.csv"
    csv_path.write_bytes("手机号,姓名\r\n138 0013 8000,张伟\r\n13900139000,王芳\r\n13300133000,李娜\r\n12345,错号\r\n"
                         .encode("gbk"))
    page.goto(url + "/send")
    page.set_input_files("input[name=file]", str(csv_path))
    page.fill("textarea[name=text]", "{姓名}您好，您的订单已到店。")
    page.check("input[name=kind][value=transactional]")  # a customer's own order: no consent needed
    page.click("#upload-form button")
    page.wait_for_selector("text=将要发送的内容")
    body = page.inner_text("main")
    assert "张伟您好，您的订单已到店。" in body and "138****8000" in body
    assert "号码无效 — '12345' 不是有效的电话号码" in body and "中国移动" in body  # the domain's words, in Chinese
    shot(page, "3-preview")
    page.click("text=发送 3 条短信")
    page.wait_for_selector("text=已加入队列 3 条短信。")
    list_url = page.url
    shot(page, "4-list")

    page.goto(url + "/")  # the page's own script, under its Content-Security-Policy, keeps the figures live
    expect(page.locator('[data-field="queue.delivered"]')).to_have_text("3", timeout=20_000)
    shot(page, "5-dashboard")

    page.goto(list_url)
    with page.expect_download() as download:
        page.click("text=导出 CSV")
    exported = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert exported.count("delivered") == 3 and "138****8000" in exported

    page.goto(url + "/admin/")
    shot(page, "6-admin")

    # the counter panel, mirrored: its frame refreshes and its buttons work from the browser
    page.goto(url + "/device/")
    expect(page.locator("#oled")).to_have_js_property("naturalWidth", 384)  # the frame drew
    panel_title = lambda: page.context.request.get(url + "/device/state.json").json()["screen"]["title"]  # noqa: E731
    assert panel_title() == "中国移动"  # the operator, as on a phone
    page.click("button[data-button=ok]")
    wait_for(lambda: panel_title() == "菜单", 10, message="the menu on the panel")
    page.keyboard.press("Escape")  # the keyboard too
    wait_for(lambda: panel_title() == "中国移动", 10, message="home again on the panel")
    shot(page, "7-panel")
    page.click("text=English")
    assert "Dashboard" in page.inner_text("nav")


def test_a_clerk_s_list_approved_on_the_page_and_at_the_counter(box, page):
    """Approval (issue 15.3) as an admin sees it: the dashboard's card, then the counter panel's screen."""
    from playwright.sync_api import expect

    from appliance.accounts import Accounts
    from appliance.clock import SystemClock
    from appliance.consent import Consent
    from appliance.db import Database
    from appliance.intake import Intake
    from appliance.sendlists import SendLists
    from appliance.sendqueue import SendQueue

    running, _, _ = box
    url = running.url
    page.goto(url)
    set_up(page, running)
    db = Database.in_data_dir(running.config.data_dir)
    clock = SystemClock()
    SendQueue(db, clock).ledger.adjust(100, "the shop's credit")  # no "out of credit" alert on the panel
    clerk = Accounts(db, clock).create("clerk", PASSWORD + "-x", "staff")
    for number in ("+8613800138000", "+8613900139000"):
        Consent(db, clock).give(number, "paper", "会员登记表", by="user:1")
    intake = Intake(db, clock, running.config)
    lists = [intake.queue_messages([("13800138000", text), ("13900139000", text)], name=name,
                                   by=f"user:{clerk.id}").list_id
             for name, text in (("周六会员日", "周六会员日全场八折，回T退订"), ("新品试吃", "新品试吃，周日下午三点"))]
    page.goto(url + "/")
    expect(page.locator(".approval")).to_have_count(2)
    assert "2 条短信，扣 2 条余额" in page.inner_text("main")
    shot(page, "8-approval")
    page.locator(".approval").first.locator("text=批准并发送").click()
    expect(page.locator(".approval")).to_have_count(1)
    assert SendLists(db, clock).get(lists[0])["state"] == "active"

    page.goto(url + "/device/")
    expect(page.locator("#oled")).to_have_js_property("naturalWidth", 384)
    state = lambda: page.context.request.get(url + "/device/state.json").json()["screen"]  # noqa: E731
    page.click("button[data-button=ok]")
    wait_for(lambda: state()["title"] == "菜单", 10, message="the menu on the panel")
    page.click("button[data-button=down]")
    page.click("button[data-button=ok]")
    wait_for(lambda: state()["title"] == "OK发送 返回拒绝", 10, message="the approval screen")
    assert state()["lines"][0] == "1/1 新品试吃"
    if SHOTS:
        page.wait_for_timeout(2500)  # the mirror's picture follows the panel at its own pace
    shot(page, "9-panel-approval")
    page.click("button[data-button=back]")
    page.click("button[data-button=ok]")  # declined
    wait_for(lambda: SendLists(db, clock).get(lists[1])["state"] == "declined", 10, message="declined at the counter")
    assert SendLists(db, clock).get(lists[1])["approved_by"] == "panel"
    db.close()


def test_the_customer_book_in_the_browser(box, page):
    """Issue 16 as a shop owner does it: import the members with the shop's attestation, look at one, send to
    a group through the consent gate, and see it delivered."""
    from playwright.sync_api import expect

    from appliance.clock import SystemClock
    from appliance.db import Database
    from appliance.sendqueue import SendQueue

    running, _, tmp_path = box
    url = running.url
    page.goto(url)
    set_up(page, running)
    db = Database.in_data_dir(running.config.data_dir)
    SendQueue(db, SystemClock()).ledger.adjust(100, "the shop's credit")
    book = tmp_path / "会员.csv"
    book.write_bytes("手机号,姓名,生日,标签,积分\r\n13800138000,张伟,1990-03-05,VIP,120\r\n13900139000,王芳,3月5日,VIP,80\r\n"
                     "13300133000,李娜,,会员,15\r\n12345,错号,,,\r\n".encode("gbk"))
    page.goto(url + "/customers/import")
    page.set_input_files("input[name=file]", str(book))
    page.fill("textarea[name=attestation]", "2026年会员登记表，每位会员签字，原件存柜台")
    page.click("form.card button")
    page.wait_for_selector("text=导入这些变更")
    assert "号码无效" in page.inner_text("main") or "不是有效的电话号码" in page.inner_text("main")
    page.click("text=导入这些变更")
    page.wait_for_selector("text=已导入。")
    page.goto(url + "/customers")
    expect(page.locator("table.data tr")).to_have_count(4)  # the header and three customers
    assert "138****8000" in page.inner_text("main") and "已同意" in page.inner_text("main")
    shot(page, "10-customers")
    page.click("text=138****8000")
    page.wait_for_selector("text=同意记录")
    assert "导入，附店铺声明" in page.inner_text("main")
    shot(page, "11-customer")
    page.goto(url + "/customers/send")
    page.select_option("select[name=tag]", "VIP")
    page.fill("textarea[name=text]", "{姓名}您好！本周六会员日全场9折，您有{积分}积分可用")
    page.click("form.stack button")
    page.wait_for_selector("text=将要发送的内容")
    body = page.inner_text("main")
    assert "张伟您好！本周六会员日全场9折，您有120积分可用，回T退订【小王便利店】" in body
    shot(page, "12-group-send")
    page.click("text=发送 2 条短信")
    page.wait_for_url("**/history/*")
    wait_for(lambda: SendQueue(db, SystemClock()).counts().get("delivered", 0) == 2, 20, message="both delivered")
    db.close()
