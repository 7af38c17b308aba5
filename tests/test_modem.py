"""The modem driver against the simulated SIM7600, through pyserial on a real pty."""

from __future__ import annotations

import queue

import pytest

from hw.errors import CommandFailed, ModemDisconnected, ModemNotReady, ModemRebooted, ModemTimeout, OutcomeUnknown
from hw.modem import pdu
from hw.modem.driver import Modem, Timeouts
from hw.modem.sim import FAILED
from tests.conftest import wait_for

CN = "+8613800138000"
FAST = Timeouts(command=1.0, sync=0.3, prompt=0.5, send=0.5)


@pytest.fixture
def urcs():
    return queue.Queue()


@pytest.fixture
def modem(sim, urcs):
    m = Modem(sim.port, timeouts=FAST, on_urc=urcs.put)
    m.open()
    yield m
    m.close()


def test_iccid_of_a_quectel_and_of_a_modem_that_does_not_say(sim, modem):
    from appliance.privacy import mask_iccid

    sim.model = "EC25"
    assert modem.init().iccid == "89860012345678901234"  # AT+CICCID refused, AT+QCCID answered
    assert "AT+QCCID" in sim.commands
    assert mask_iccid("89860012345678901234") == "898600**********1234"
    sim.iccid = "garbage"
    assert modem.init().iccid == ""


def drain(q):
    out = []
    while not q.empty():
        out.append(q.get())
    return out


def test_init_sets_up_pdu_mode_and_reads_state(sim, modem):
    state = modem.init()
    assert state.ready and state.state == "registered"
    assert (state.operator, state.signal, state.signal_dbm, state.access) == ("CHINA MOBILE", 24, -65, "4G")
    assert state.smsc == "+8613800100500"
    assert state.model == "SIMCOM_SIM7600G-H"
    assert state.iccid == "89860012345678901234" and "AT+CICCID" in sim.commands
    for cmd in ("ATE0", "AT+CMEE=1", "AT+CPIN?", "AT+CMGF=0", "AT+CNMI=2,1,0,2,0", "AT+CSCA?", "AT+CREG?",
                "AT+CEREG?", "AT+CSQ", "AT+COPS?"):
        assert cmd in sim.commands
    assert sim.echo is False and sim.cmgf == 0 and sim.cnmi_ds == 2


def read_indicated(modem, urc):
    """+CDSI / +CMTI: the PDU waits in the modem's memory; read and delete it."""
    memory, index = urc.args.split(",")
    stored = modem.read_stored(int(index), memory.strip('"'))
    modem.delete_stored(stored.index)
    return pdu.decode_incoming(stored.pdu, stored.length)


def test_send_records_the_pdu_and_returns_the_reference(sim, modem, urcs):
    modem.init()
    refs = [modem.send(p) for p in pdu.encode_message(CN, "你好" * 40, concat_reference=9)]
    assert refs == [0, 1]
    assert [a.recipient for a in sim.accepted] == [CN, CN]
    assert "".join(a.text for a in sim.accepted) == "你好" * 40
    indications = [urcs.get(timeout=2), urcs.get(timeout=2)]
    assert [u.name for u in indications] == ["+CDSI", "+CDSI"]
    decoded = [read_indicated(modem, u) for u in indications]
    assert sorted(r.reference for r in decoded) == [0, 1]
    assert all(r.outcome == "delivered" for r in decoded)
    assert sim.stored_count() == 0


def test_status_report_routed_directly_is_read_too(sim, modem, urcs):
    """A modem that ignores <ds>=2 and sends +CDS with the PDU inline."""
    modem.init()
    sim.cnmi_ds = 1
    modem.send(pdu.encode_submit(CN, "hi"))
    urc = urcs.get(timeout=2)
    assert urc.name == "+CDS"
    assert pdu.decode_incoming(urc.pdu, int(urc.args)).outcome == "delivered"


def test_failed_delivery_report(sim, modem, urcs):
    modem.init()
    sim.set_outcome(CN, FAILED)
    modem.send(pdu.encode_submit(CN, "hi"))
    assert read_indicated(modem, urcs.get(timeout=2)).outcome == "failed"


def test_cms_error_for_an_unassigned_number_is_permanent(sim, modem):
    modem.init()
    sim.set_outcome(CN, 1)
    with pytest.raises(CommandFailed) as info:
        modem.send(pdu.encode_submit(CN, "hi"))
    assert (info.value.code, info.value.retryable) == (1, False)
    assert "not assigned" in info.value.reason
    assert sim.accepted == []


def test_no_sim(sim, modem):
    sim.set_sim(False)
    with pytest.raises(ModemNotReady, match="no SIM card") as info:
        modem.init()
    assert info.value.state == "no-sim" == modem.state.state
    sim.set_sim(True)
    assert modem.init().ready


def test_sim_pin(sim, urcs):
    sim.sim_pin = "1234"
    sim.reboot(wait=True)  # booted with the PIN set: its RDY must not land in our first commands
    locked = Modem(sim.port, timeouts=FAST)
    locked.open()
    try:
        with pytest.raises(ModemNotReady, match="needs a PIN") as info:
            locked.init()
        assert info.value.state == "sim-locked"
    finally:
        locked.close()
    unlocked = Modem(sim.port, timeouts=FAST, sim_pin="1234")
    unlocked.open()
    try:
        assert unlocked.init().ready
    finally:
        unlocked.close()


def test_not_registered_and_denied(sim, modem):
    sim.set_registration(2)
    state = modem.init()
    assert (state.state, state.ready) == ("searching", False)
    assert "antenna" in state.detail
    sim.set_registration(3)
    assert modem.refresh().state == "denied"
    sim.set_registration(5)
    assert modem.refresh().state == "roaming"


def test_not_registered_send_is_a_device_problem(sim, modem):
    modem.init()
    sim.set_registration(0)
    with pytest.raises(CommandFailed) as info:
        modem.send(pdu.encode_submit(CN, "hi"))
    assert info.value.code == 331 and info.value.device_problem


def test_reboot_before_prompt_means_not_sent(sim, modem):
    modem.init()
    sim.reboot_next()
    with pytest.raises(ModemRebooted):
        modem.send(pdu.encode_submit(CN, "hi"))
    assert modem.needs_init and sim.accepted == []
    wait_for(lambda: sim.echo, 2)  # settings lost in the reboot
    assert modem.init().ready
    assert modem.send(pdu.encode_submit(CN, "again")) is not None


def test_reboot_after_pdu_is_outcome_unknown(sim, modem):
    modem.init()
    sim.reboot_next(after_pdu=True)
    with pytest.raises(OutcomeUnknown):
        modem.send(pdu.encode_submit(CN, "hi"))
    assert len(sim.accepted) == 1


def test_silence_before_prompt_and_after_pdu(sim, modem):
    modem.init()
    sim.ignore_next("AT+CMGS")
    with pytest.raises(ModemTimeout):
        modem.send(pdu.encode_submit(CN, "one"))
    assert sim.accepted == []
    modem.sync()
    sim.ignore_next("AT+CMGS", after_pdu=True)
    with pytest.raises(OutcomeUnknown):
        modem.send(pdu.encode_submit(CN, "two"))
    assert [a.text for a in sim.accepted] == ["two"]


def test_garbage_on_the_line_is_survived(sim, modem):
    sim.garbage_next(command="AT+CSQ")
    sim.write_garbage(b"\x00\xff\xfe\r\n~~~\r\n")
    assert modem.init().ready
    sim.garbage_next(b"\x80\x81\x82\r\n\xfe", command="AT+CMGS")
    assert modem.send(pdu.encode_submit(CN, "hi")) == 0


def test_port_vanishes_and_comes_back(sim, modem):
    modem.init()
    sim.unplug()
    wait_for(lambda: modem.closed, 3, message="driver notices the port is gone")
    assert modem.state.state == "disconnected"
    with pytest.raises(ModemDisconnected):
        modem.send(pdu.encode_submit(CN, "hi"))
    sim.replug()
    modem.open()
    assert modem.init().ready
    assert modem.send(pdu.encode_submit(CN, "hi")) is not None


def test_inbound_sms_is_indicated_read_and_deleted(sim, modem, urcs):
    modem.init()
    sim.inject_sms("+8613912345678", "退订")
    urc = urcs.get(timeout=2)
    assert urc.name == "+CMTI"
    d = read_indicated(modem, urc)
    assert (d.sender, d.text) == ("+8613912345678", "退订")
    assert sim.stored_count() == 0
    assert modem.read_stored(int(urc.args.split(",")[1])) is None


def test_messages_stored_while_away_are_listed(sim, modem):
    sim.inject_sms("+8613912345678", "long " * 60)  # before init: CNMI off, stored silently
    assert sim.stored_count() == 2
    modem.init()
    items = modem.list_stored()
    r = pdu.Reassembler()
    texts = [r.add(pdu.decode_incoming(i.pdu, i.length)) for i in items]
    assert texts[-1] == "long " * 60
