"""The AT channel against byte sequences a real modem may send, not only our simulator's.

A ScriptedPeer is the far end of a real pty that answers each command with
exactly the bytes a test gives it.
"""

from __future__ import annotations

import os
import select
import threading
import tty

import pytest

from hw.errors import (
    CommandFailed,
    ModemBusy,
    ModemDisconnected,
    ModemNotFound,
    ModemRebooted,
    ModemTimeout,
    OutcomeUnknown,
)
from hw.modem.at import ATChannel, info_prefix_for, line_name
from tests.conftest import wait_for


class ScriptedPeer:
    """The modem's side of a pty: for each command (line ending in CR) it writes the scripted bytes."""

    def __init__(self):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.script: dict[bytes, bytes] = {}
        self.received = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def on(self, command: bytes, reply: bytes) -> None:
        self.script[command] = reply

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def _loop(self):
        pending = bytearray()
        while not self._stop.is_set():
            r, _, _ = select.select([self.master], [], [], 0.02)
            if not r:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            self.received += data
            pending += data
            while True:
                ends = [i for i in (pending.find(b"\r"), pending.find(b"\x1a")) if i >= 0]
                if not ends:
                    break
                end = min(ends)
                chunk = bytes(pending[:end + 1])
                del pending[:end + 1]
                key = chunk.rstrip(b"\r\x1a").lstrip(b"\x1b")
                if key in self.script:
                    os.write(self.master, self.script[key])

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture
def peer():
    p = ScriptedPeer()
    yield p
    p.close()


@pytest.fixture
def channel(peer):
    urcs = []
    ch = ATChannel(peer.port, on_urc=urcs.append)
    ch.urcs = urcs
    ch.open()
    yield ch
    ch.close()


def test_echo_is_dropped_and_info_lines_kept(peer, channel):
    peer.on(b"AT+CSQ", b"AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
    assert channel.command("AT+CSQ") == ["+CSQ: 20,99"]


def test_urc_between_command_and_result_goes_to_the_callback(peer, channel):
    peer.on(b"AT+CSQ", b'\r\n+CMTI: "SM",3\r\n\r\n+CSQ: 20,99\r\n\r\n+CREG: 1\r\n\r\nOK\r\n')
    assert channel.command("AT+CSQ") == ["+CSQ: 20,99"]
    assert [u.line for u in channel.urcs] == ['+CMTI: "SM",3', "+CREG: 1"]
    assert channel.urcs[0].args == '"SM",3'


def test_pdu_urc_takes_the_next_line(peer, channel):
    peer.on(b"AT", b"\r\n+CDS: 26\r\n0891683108100005F006\r\n\r\nOK\r\n")
    assert channel.command("AT") == []
    (urc,) = channel.urcs
    assert (urc.name, urc.line, urc.pdu) == ("+CDS", "+CDS: 26", "0891683108100005F006")


def test_boot_urcs_waiting_before_the_first_command(peer, channel):
    peer.send(b"\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\nSMS DONE\r\n\r\nPB DONE\r\n")
    wait_for(lambda: len(channel.urcs) == 4, 2, message="boot URCs")
    peer.on(b"AT+CPIN?", b"\r\n+CPIN: READY\r\n\r\nOK\r\n")
    assert channel.command("AT+CPIN?") == ["+CPIN: READY"]
    assert [u.name for u in channel.urcs] == ["RDY", "+CPIN", "SMS DONE", "PB DONE"]


def test_garbage_is_dropped_not_fatal(peer, channel):
    peer.on(b"AT+CSQ", b"\xff\xfe\x00\x80junk\r\n\r\n+CSQ: 11,99\r\n\r\nOK\r\n")
    peer.send(b"\x9d\x9e\r\n")
    assert channel.command("AT+CSQ") == ["+CSQ: 11,99"]
    peer.on(b"AT", b"\r\nOK\r\n")
    assert channel.command("AT") == []
    assert channel.stray_lines >= 1


def test_stored_pdu_lines_follow_their_cmgl_headers(peer, channel):
    peer.on(b"AT+CMGL=4", b'\r\n+CMGL: 0,1,,22\r\n0891AB\r\n+CMGL: 3,0,,24\r\n0791CD\r\n\r\nOK\r\n')
    assert channel.command("AT+CMGL=4") == ["+CMGL: 0,1,,22", "0891AB", "+CMGL: 3,0,,24", "0791CD"]


def test_cms_error_becomes_command_failed_with_plain_reason(peer, channel):
    peer.on(b"AT+CMGS=20", b"\r\n+CMS ERROR: 331\r\n")
    with pytest.raises(CommandFailed) as info:
        channel.command_with_payload("AT+CMGS=20", "00")
    err = info.value
    assert (err.kind, err.code, err.reason, err.retryable, err.device_problem) == \
        ("cms", 331, "no network", True, True)
    assert "AT+CMGS=20" in str(err)


def test_cme_error_and_bare_error(peer, channel):
    peer.on(b"AT+CPIN?", b"\r\n+CME ERROR: 10\r\n")
    with pytest.raises(CommandFailed, match="no SIM card") as info:
        channel.command("AT+CPIN?")
    assert info.value.code == 10
    peer.on(b"AT+FOO", b"\r\nERROR\r\n")
    with pytest.raises(CommandFailed, match="ERROR"):
        channel.command("AT+FOO")


def test_timeout_names_the_command_and_a_late_answer_is_ignored(peer, channel):
    with pytest.raises(ModemTimeout, match=r"AT\+COPS\?: no answer within 0.2 s"):
        channel.command("AT+COPS?", timeout=0.2)
    peer.send(b"\r\n+COPS: 0\r\n\r\nOK\r\n")  # the late answer arrives with nobody waiting
    peer.on(b"AT", b"\r\nOK\r\n")
    wait_for(lambda: channel.stray_lines >= 1, 2, message="late line dropped")
    assert channel.command("AT") == []


def test_prompt_payload_and_ctrl_z(peer, channel):
    peer.on(b"AT+CMGS=6", b"\r\n> ")
    peer.on(b"0011000B91", b"\r\n+CMGS: 7\r\n\r\nOK\r\n")
    assert channel.command_with_payload("AT+CMGS=6", "0011000B91") == ["+CMGS: 7"]
    assert bytes(peer.received).endswith(b"AT+CMGS=6\r0011000B91\x1a")


def test_no_prompt_times_out_and_sends_escape(peer, channel):
    with pytest.raises(ModemTimeout, match="no '> ' prompt"):
        channel.command_with_payload("AT+CMGS=6", "00", prompt_timeout=0.2)
    wait_for(lambda: bytes(peer.received).endswith(b"\x1b"), 2, message="ESC")


def test_silence_after_the_payload_is_outcome_unknown(peer, channel):
    peer.on(b"AT+CMGS=6", b"\r\n> ")
    with pytest.raises(OutcomeUnknown, match="may have been sent") as info:
        channel.command_with_payload("AT+CMGS=6", "0011", timeout=0.3)
    assert isinstance(info.value.__cause__, ModemTimeout)


def test_reboot_before_prompt_is_modem_rebooted(peer, channel):
    peer.on(b"AT+CMGS=6", b"\r\nRDY\r\n")
    with pytest.raises(ModemRebooted):
        channel.command_with_payload("AT+CMGS=6", "0011")


def test_reboot_after_payload_is_outcome_unknown(peer, channel):
    peer.on(b"AT+CMGS=6", b"\r\n> ")
    peer.on(b"0011", b"\r\nRDY\r\n")
    with pytest.raises(OutcomeUnknown) as info:
        channel.command_with_payload("AT+CMGS=6", "0011")
    assert isinstance(info.value.__cause__, ModemRebooted)


def test_port_vanishing_fails_the_command_and_reports_once(peer):
    lost = []
    ch = ATChannel(peer.port, on_lost=lost.append)
    ch.open()
    try:
        peer.close()
        wait_for(lambda: lost, 3, message="on_lost")
        with pytest.raises(ModemDisconnected):
            ch.command("AT")
        assert len(lost) == 1 and isinstance(lost[0], ModemDisconnected)
    finally:
        ch.close()
        ch.close()  # twice is fine


def test_open_errors_are_specific(tmp_path, peer):
    with pytest.raises(ModemNotFound, match="does not exist"):
        ATChannel(str(tmp_path / "nope")).open()
    first = ATChannel(peer.port)
    first.open()
    try:
        with pytest.raises(ModemBusy, match="in use by another program"):
            ATChannel(peer.port).open()
    finally:
        first.close()


def test_a_port_that_fails_as_it_opens_leaves_no_handle_holding_its_lock(peer, monkeypatch):
    """A modem rebooting as the port opens: the half-opened handle is closed, so the next open is not
    refused as "in use" by our own leftover lock."""
    import termios

    import serial

    real = serial.Serial.reset_input_buffer
    calls = []

    def vanishing(self):
        calls.append(self)
        if len(calls) == 1:
            raise termios.error(5, "Input/output error")
        return real(self)

    monkeypatch.setattr(serial.Serial, "reset_input_buffer", vanishing)
    with pytest.raises(ModemDisconnected, match="went away as it was opened"):
        ATChannel(peer.port).open()
    assert not calls[0].is_open
    again = ATChannel(peer.port)
    again.open()  # before the fix: ModemBusy, "in use by another program"
    again.close()


def test_prefixes_and_names():
    assert info_prefix_for("AT+CSQ") == "+CSQ:"
    assert info_prefix_for("AT+CMGS=23") == "+CMGS:"
    assert info_prefix_for("AT+CPIN?") == "+CPIN:"
    assert info_prefix_for("ATE0") is None
    assert line_name('+CMTI: "SM",3') == "+CMTI"
    assert line_name("SMS DONE") == "SMS DONE"


def test_a_failing_side_task_during_the_prompt_leaves_the_modem_out_of_prompt_mode(peer, channel):
    peer.on(b"AT+CMGS=6", b"\r\n> ")

    def broken():
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        channel.start("AT+CMGS=6", "0011", meanwhile=broken)
    wait_for(lambda: bytes(peer.received).endswith(b"AT+CMGS=6\r\x1b"), 2, message="ESC after the failure")
    peer.on(b"AT", b"\r\nOK\r\n")
    assert channel.command("AT") == []
