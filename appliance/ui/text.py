"""The panel's words, English (the keys) and Simplified Chinese.

Kept apart from the web page's gettext catalog on purpose: on a 128-pixel
line every word is laid out by hand (Chinese is often shorter than a word
for word translation would be), and tests check that each one fits.
"""

from __future__ import annotations

ZH = {
    # home and status
    "SMS Genie": "短信精灵",
    "Balance {n}": "余额 {n} 条",
    "Waiting {n}": "待发 {n}",
    "Waiting now {n}": "待发{n}",
    "Sent today {n}": "今日已发 {n}",
    "Today {n}": "今日已发{n}",  # no spaces: the home lines are the tightest on the panel
    "Sending {n}": "发送中{n}",
    "Failed today {n}": "失败{n}",
    "Failed {n}": "失败 {n}",
    "Paused": "已暂停",
    "Sending paused": "发送已暂停",
    "Menu: OK": "菜单: 按 OK",
    "No list sending": "没有正在发送的名单",
    "{done}/{total} sent": "已发 {done}/{total}",
    "About {n} min left": "约剩 {n} 分钟",
    "Open in a browser": "用浏览器打开",
    "No network address": "未连接局域网",
    "Check the LAN cable": "请检查网线或WiFi",
    "Device ID": "本机编号",
    "Certificate": "证书指纹",
    "HTTPS is off": "未启用 HTTPS",
    "Vendor needs this": "充值码需用此编号",
    "Key {id}": "密钥 {id}",
    "Box key": "本机签名公钥",
    "First-time set-up": "首次设置",
    "then enter PIN {pin}": "再输入 PIN {pin}",
    "Set-up PIN": "设置 PIN",
    "Only for first set-up": "仅首次设置使用",
    "Already set up": "已设置，无需 PIN",
    # modem
    "Modem": "短信猫",
    # operators as the network names them (AT+COPS), as people say them
    "CHINA MOBILE": "中国移动",
    "CMCC": "中国移动",
    "CHINA UNICOM": "中国联通",
    "CHN-UNICOM": "中国联通",
    "UNICOM": "中国联通",
    "CHINA TELECOM": "中国电信",
    "CHN-CT": "中国电信",
    "CHINA BROADNET": "中国广电",
    "CBN": "中国广电",
    "Signal {n}/31": "信号 {n}/31",
    "No signal": "无信号",
    "SIM {iccid}": "SIM {iccid}",
    "No SIM data": "无 SIM 信息",
    "online": "在线",
    "roaming": "漫游",
    "searching": "搜索网络",
    "refused": "被拒绝",
    "starting": "启动中",
    "not connected": "未连接",
    "no answer": "无响应",
    "broken": "故障",
    "stopped": "已停止",
    "no SIM": "无SIM卡",
    "SIM locked": "SIM已锁",
    "SIM error": "SIM故障",
    "unknown": "未知",
    # menu
    "Menu": "菜单",
    "Pause sending": "暂停发送",
    "Resume sending": "继续发送",
    "Web address": "网页地址",
    "Send a test SMS": "发送测试短信",
    "Modem info": "短信猫信息",
    "Restart modem": "重启短信猫",
    "Screen off": "关闭屏幕",
    "About": "关于本机",
    "GPIO: {name}": "GPIO 库: {name}",
    "none": "未使用",
    "Approve lists ({n})": "审批名单 ({n})",
    "{n} msgs {parts} cr": "{n}条 扣{parts}条",
    "OK: send Back: no": "OK发送 返回拒绝",
    "Decline list": "拒绝名单",
    "Approved: sending": "已批准，开始发送",
    "Declined": "已拒绝",
    "Decided already": "已有人处理过",
    "Sure? OK: yes": "确定? 按OK确认",
    "Back: no": "按返回取消",
    "Costs 1 credit": "扣 1 条余额",
    "to {number}": "发到 {number}",
    "Test SMS queued": "测试短信已排队",
    "SMS Genie test message {stamp}": "短信精灵测试短信 {stamp}",
    "No test number": "未设置测试号码",
    "Set it on the web page": "请在网页设置中填写",
    "Modem restarting": "短信猫正在重启",
    "Sending resumes": "稍后自动继续发送",
    "Done": "完成",
    "Not possible": "无法完成",
    # alerts
    "Out of credit": "余额不足",
    "Sending has stopped": "发送已停止",
    "Top up on the page": "请在网页上充值",
    "OK: send  Back: no": "按OK发送 返回取消",
    "Credit low": "余额偏低",
    "{n} credits left": "只剩 {n} 条",
    "No SIM card": "没有 SIM 卡",
    "Insert the SIM, restart": "插入SIM卡后重启",
    "SIM problem": "SIM 卡故障",
    "Check the SIM and PIN": "请检查SIM卡和PIN",
    "No network": "没有网络",
    "Check antenna and SIM": "检查天线和SIM卡",
    "Modem not answering": "短信猫无响应",
    "The box keeps trying": "本机正在重试",
    "Call the technician": "请联系技术人员",
    "Disk nearly full": "存储空间将满",
    "SIM barred?": "SIM卡被停用?",
    "Sending stopped": "已停止发送",
    "Check with the carrier": "请联系运营商后恢复",
    "{mb} MB free": "剩余 {mb} MB",
    "OK: got it": "按 OK 确认",
    "Send skipped": "定期发送已跳过",
    "See why on the page": "原因见网页",
}


#: English where it differs from the key (keys that exist to give Chinese a tighter form).
EN = {"Waiting now {n}": "Queue {n}", "Failed today {n}": "Failed {n}", "OK: send Back: no": "OK=go Back=no"}

#: Keys that are SMS texts, not panel lines (so not held to the panel's width).
SMS_TEXTS = {"SMS Genie test message {stamp}"}


def tr(language: str, key: str, **values) -> str:
    """``key`` (English) in ``language`` ("zh_CN" or "en"), with ``values`` filled in."""
    text = ZH.get(key, key) if language == "zh_CN" else EN.get(key, key)
    return text.format(**values) if values else text
