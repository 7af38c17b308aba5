"""The daemon against every fault the simulated modem can inject.

Each test queues messages to distinct numbers, breaks the modem in one way,
and checks that the queue recovers: every message reaches its outcome, no
part is handed to the network twice, and nothing is lost.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from appliance import kv
from appliance.inbox import Inbox
from appliance.plan import plan_message
from hw.modem.sim import EXPIRED, FAILED, NO_REPORT
from tests.conftest import modem_statuses, running_daemon, wait_for


def numbers(n, start=0):
    return [f"+86138{start + i:08d}" for i in range(n)]


def enqueue(queue, recipients, text="您好，您的订单已到店。【小王便利店】"):
    list_id = queue.create_list("test.csv", "YL08")
    return queue.enqueue(list_id, recipients, plan_message(text), "YL08")


def states(queue, ids):
    return Counter(queue.get(i).state for i in ids)


def wait_states(queue, ids, expected: dict, timeout=15):
    wait_for(lambda: states(queue, ids) == Counter(expected), timeout,
             message=f"states {expected}, have {dict(states(queue, ids))}")


def assert_sent_once(sim, queue, ids, *, allow_missing=()):
    """Every message's parts reached the network exactly once."""
    per_recipient = Counter(a.recipient for a in sim.accepted)
    for mid in ids:
        m = queue.get(mid)
        if mid in allow_missing:
            assert per_recipient[m.recipient] <= m.segments
        else:
            assert per_recipient[m.recipient] == m.segments, f"message {mid} ({m.state}) went out " \
                                                              f"{per_recipient[m.recipient]} times"


def test_sends_the_queue_and_matches_delivery_reports(sim, config, queue):
    ids = enqueue(queue, numbers(8)) + enqueue(queue, numbers(2, 100), "long message " * 20)
    with running_daemon(config):
        wait_states(queue, ids, {"delivered": 10})
    assert_sent_once(sim, queue, ids)
    m = queue.get(ids[-1])
    assert (m.segments, m.service_code, m.attempts) == (2, "YL08", 1)
    assert sorted(r[0] for r in queue.db.execute("SELECT seq FROM segment WHERE message_id = ?", (m.id,))) == [1, 2]


def test_failed_and_expired_reports_settle_messages(sim, config, queue):
    a, b, c = numbers(3)
    sim.set_outcome(b, FAILED)
    sim.set_outcome(c, EXPIRED)
    ids = enqueue(queue, [a, b, c])
    with running_daemon(config):
        wait_states(queue, ids, {"delivered": 1, "failed": 1, "expired": 1})
    assert queue.get(ids[1]).error == "incompatible destination"
    assert queue.get(ids[2]).error == "validity period expired before delivery"


def test_transient_cms_error_is_retried_after_backoff(sim, config, queue, fake_clock):
    sim.fail_next(42)  # network congestion
    ids = enqueue(queue, numbers(3))
    with running_daemon(config, clock=fake_clock):
        wait_states(queue, ids, {"delivered": 3})
    assert_sent_once(sim, queue, ids)
    assert [queue.get(i).attempts for i in ids] == [2, 1, 1]


def test_transient_errors_give_up_after_max_attempts(sim, config, queue, fake_clock):
    sim.fail_next(332, count=3)  # network timeout, every attempt
    ids = enqueue(queue, numbers(1))
    with running_daemon(config, clock=fake_clock):
        wait_states(queue, ids, {"failed": 1})
    m = queue.get(ids[0])
    assert m.attempts == 3 and m.error == "gave up after 3 attempts: the network did not answer in time"


def test_permanent_cms_error_fails_without_retry(sim, config, queue):
    bad, good = numbers(2)
    sim.set_outcome(bad, 1)  # unassigned number
    ids = enqueue(queue, [bad, good])
    with running_daemon(config):
        wait_states(queue, ids, {"failed": 1, "delivered": 1})
    m = queue.get(ids[0])
    assert (m.attempts, m.error) == (1, "the number is not assigned")


def test_permanent_error_on_a_later_part_names_the_part(sim, config, queue, fake_clock):
    ids = enqueue(queue, numbers(1), "long message " * 20)
    sim.fail_next(42)  # part 1 fails once (transient): the retry resends only what is missing
    with running_daemon(config, clock=fake_clock):
        wait_states(queue, ids, {"delivered": 1})
    assert_sent_once(sim, queue, ids)


def test_no_answer_before_the_prompt_is_retried(sim, config, queue, fake_clock):
    sim.ignore_next("AT+CMGS")
    ids = enqueue(queue, numbers(3))
    with running_daemon(config, clock=fake_clock):
        wait_states(queue, ids, {"delivered": 3})
    assert_sent_once(sim, queue, ids)


def test_no_answer_after_the_pdu_leaves_the_message_uncertain(sim, config, queue, fake_clock):
    sim.ignore_next("AT+CMGS", after_pdu=True)
    sim.set_outcome(numbers(1)[0], NO_REPORT)  # no report comes that could settle it (see the next test)
    ids = enqueue(queue, numbers(3))
    with running_daemon(config, clock=fake_clock):
        wait_for(lambda: states(queue, ids)["uncertain"] == 1 and states(queue, ids)["delivered"] == 2, 15,
                 message="one uncertain, two delivered")
    m = queue.get(ids[0])
    assert "may have been sent" in m.error and "requeue" in m.error
    assert_sent_once(sim, queue, ids)  # it did reach the network, once, and was not resent


def test_garbage_bytes_do_not_lose_messages(sim, config, queue):
    sim.garbage_next(command="AT+CMGS")
    sim.garbage_next(b"\r\n\xff\xff+CMS ERR\r\n", command="AT+CMGS")
    ids = enqueue(queue, numbers(4))
    with running_daemon(config):
        wait_states(queue, ids, {"delivered": 4})
    assert_sent_once(sim, queue, ids)


def test_modem_reboot_mid_send_is_recovered(sim, config, queue, fake_clock):
    sim.reboot_next()
    ids = enqueue(queue, numbers(4))
    with running_daemon(config, clock=fake_clock):
        wait_states(queue, ids, {"delivered": 4})
    assert_sent_once(sim, queue, ids)
    assert sim.commands.count("AT+CNMI=2,1,0,2,0") >= 2  # re-initialised after RDY


def test_modem_reboot_after_the_pdu_leaves_it_uncertain(sim, config, queue, fake_clock):
    sim.reboot_next(after_pdu=True)
    sim.set_outcome(numbers(1)[0], NO_REPORT)
    ids = enqueue(queue, numbers(3))
    with running_daemon(config, clock=fake_clock):
        wait_for(lambda: states(queue, ids) == Counter({"uncertain": 1, "delivered": 2}), 15,
                 message="one uncertain")
    assert_sent_once(sim, queue, ids)


def test_the_report_of_a_message_left_uncertain_settles_it(sim, config, queue, fake_clock):
    sim.ignore_next("AT+CMGS", after_pdu=True)  # the modem took it and said nothing; its report comes later
    ids = enqueue(queue, numbers(3))
    with running_daemon(config, clock=fake_clock):
        wait_for(lambda: states(queue, ids) == Counter({"delivered": 3}), 15, message="all three delivered")
    assert any("resolved from uncertain" in r["outcome"] for r in queue.audit.rows(0, 2e10))
    assert_sent_once(sim, queue, ids)


def test_no_sim_holds_the_queue_until_a_sim_is_inserted(sim, config, queue, fake_clock):
    sim.set_sim(False)
    ids = enqueue(queue, numbers(3))
    with running_daemon(config, clock=fake_clock) as daemon:
        wait_for(lambda: modem_statuses(queue).get(sim.port, {}).get("state") == "no-sim", 10,
                 message="no-sim published")
        assert states(queue, ids) == Counter({"queued": 3})
        assert [queue.get(i).attempts for i in ids] == [0, 0, 0]
        sim.set_sim(True)
        wait_states(queue, ids, {"delivered": 3}, timeout=20)
        assert daemon.modem.state.ready
    assert_sent_once(sim, queue, ids)


def test_sim_pulled_mid_run_gives_the_message_back(sim, config, queue, fake_clock):
    ids = enqueue(queue, numbers(2))
    with running_daemon(config, clock=fake_clock):
        wait_states(queue, ids, {"delivered": 2})
        sim.set_sim(False)
        more = enqueue(queue, numbers(2, 50))
        wait_for(lambda: modem_statuses(queue).get(sim.port, {}).get("state") == "no-sim", 10)
        assert states(queue, more) == Counter({"queued": 2})
        sim.set_sim(True)
        wait_states(queue, more, {"delivered": 2}, timeout=20)
    assert_sent_once(sim, queue, ids + more)


def test_not_registered_waits_then_sends(sim, config, queue, fake_clock):
    sim.set_registration(2)
    ids = enqueue(queue, numbers(2))
    with running_daemon(config, clock=fake_clock):
        wait_for(lambda: modem_statuses(queue).get(sim.port, {}).get("state") == "searching", 10)
        assert states(queue, ids) == Counter({"queued": 2})
        sim.set_registration(1)
        wait_states(queue, ids, {"delivered": 2}, timeout=20)
    assert_sent_once(sim, queue, ids)


def test_network_lost_mid_send_gives_the_message_back(sim, config, queue, fake_clock):
    ids = enqueue(queue, numbers(1))
    with running_daemon(config, clock=fake_clock):
        wait_states(queue, ids, {"delivered": 1})
        sim.set_registration(0)  # the modem still *thinks* it is registered until it refreshes
        more = enqueue(queue, numbers(2, 10))
        wait_for(lambda: all(queue.get(i).error == "no network" or queue.get(i).state == "queued" for i in more), 10)
        sim.set_registration(1)
        wait_states(queue, more, {"delivered": 2}, timeout=20)
    assert all(queue.get(i).attempts == 1 for i in more)  # the refused try did not count
    assert_sent_once(sim, queue, ids + more)


def test_port_disappears_and_is_reopened(sim, config, queue, fake_clock):
    ids = enqueue(queue, numbers(2))
    with running_daemon(config, clock=fake_clock):
        wait_states(queue, ids, {"delivered": 2})
        sim.unplug()
        wait_for(lambda: modem_statuses(queue).get(sim.port, {}).get("state") == "disconnected", 10)
        more = enqueue(queue, numbers(3, 20))
        assert states(queue, more) == Counter({"queued": 3})
        sim.replug()
        wait_states(queue, more, {"delivered": 3}, timeout=20)
    assert_sent_once(sim, queue, ids + more)


def test_port_missing_at_start(sim, config, queue, fake_clock):
    sim.unplug()
    ids = enqueue(queue, numbers(1))
    with running_daemon(config, clock=fake_clock):
        wait_for(lambda: "does not exist" in modem_statuses(queue).get(sim.port, {}).get("detail", ""), 10)
        sim.replug()
        wait_states(queue, ids, {"delivered": 1}, timeout=20)


def test_inbound_sms_is_stored_and_deleted_from_the_modem(sim, config, queue):
    with running_daemon(config):
        wait_for(lambda: modem_statuses(queue).get(sim.port, {}).get("state") == "registered", 10)
        sim.inject_sms("+8613912345678", "退订")
        sim.inject_sms("+8613912345679", "a long reply " * 20, reference=7)
        wait_for(lambda: len(Inbox(queue.db, queue.clock).latest_parts()) == 3, 10,
                 message="three inbound parts stored")
        wait_for(lambda: sim.stored_count() == 0, 5)
    texts = {(m["sender"], m["part"]): m["text"] for m in Inbox(queue.db, queue.clock).latest_parts()}
    assert texts[("+8613912345678", None)] == "退订"
    assert texts[("+8613912345679", 1)] + texts[("+8613912345679", 2)] == "a long reply " * 20


def test_messages_that_arrived_while_stopped_are_collected_at_start(sim, config, queue):
    sim.inject_sms("+8613912345678", "TD")  # CNMI is off: stored in the SIM, no indication
    with running_daemon(config):
        wait_for(lambda: [m["text"] for m in Inbox(queue.db, queue.clock).latest_parts()] == ["TD"], 10)
    assert sim.stored_count() == 0


def test_stop_finishes_cleanly_and_says_so(sim, config, queue):
    ids = enqueue(queue, numbers(2))
    with running_daemon(config):
        wait_states(queue, ids, {"delivered": 2})
    assert modem_statuses(queue)[sim.port]["state"] == "stopped"
    assert states(queue, ids)["sending"] == 0


@pytest.mark.parametrize("port_state", ["busy"])
def test_second_daemon_on_the_same_data_dir_is_refused(sim, config, queue, port_state):
    from appliance.daemon import Daemon
    from appliance.errors import DaemonAlreadyRunning

    with running_daemon(config):
        wait_for(lambda: modem_statuses(queue).get(sim.port, {}).get("state") == "registered", 10)
        with pytest.raises(DaemonAlreadyRunning, match="already running"):
            Daemon(config).run()


def one_handed_one_claimed(config, queue) -> tuple[int, int]:
    """Two messages claimed on boot "boot-1"; the first in the hand-over journal (it went to the modem), the
    second claimed ahead and never handed over: what a crash or a power cut mid-send leaves."""
    from appliance.journal import HandoverJournal

    handed, claimed = enqueue(queue, numbers(2))
    kv.swap(queue.db.conn, "boot_id", "boot-1")
    m = queue.claim()
    queue.claim()
    journal = HandoverJournal(config.data_dir)
    journal.open()
    journal.record(handed, m.sending_at)
    journal.close()
    return handed, claimed


def test_restart_after_a_crash_requeues_claimed_and_keeps_handed_uncertain(sim, config, queue):
    handed, claimed = one_handed_one_claimed(config, queue)
    with running_daemon(config, boot_id=lambda: "boot-1"):
        wait_states(queue, [handed, claimed], {"uncertain": 1, "delivered": 1})
    assert queue.get(handed).state == "uncertain"
    assert "with the modem" in queue.get(handed).error
    assert [a.recipient for a in sim.accepted] == [queue.get(claimed).recipient]


def test_restart_after_a_power_cut_trusts_the_fsynced_journal(sim, config, queue):
    """The boot test's power cuts: the message the modem had is uncertain; the one claimed next, never
    handed over, goes out after the restart and is charged once."""
    handed, claimed = one_handed_one_claimed(config, queue)
    with running_daemon(config, boot_id=lambda: "boot-2"):
        wait_states(queue, [handed, claimed], {"uncertain": 1, "delivered": 1})
    assert queue.get(handed).state == "uncertain"
    assert [a.recipient for a in sim.accepted] == [queue.get(claimed).recipient]
    assert queue.ledger.charged(claimed) == 1 and queue.ledger.charged(handed) == 1


def test_restart_after_a_power_cut_trusts_no_journal_kept_without_fsyncs(sim, config, queue):
    """A journal an older release wrote (no header: its lines were not fsynced) may have lost lines in the
    power cut: every claimed message is uncertain."""
    ids = enqueue(queue, numbers(2))
    kv.swap(queue.db.conn, "boot_id", "boot-1")
    queue.claim()
    queue.claim()
    (Path(config.data_dir) / "handover.modem1.journal").write_text("")
    with running_daemon(config, boot_id=lambda: "boot-2"):
        wait_for(lambda: modem_statuses(queue).get(sim.port, {}).get("state") == "registered", 10)
    assert states(queue, ids) == Counter({"uncertain": 2})
    assert all("lost power" in queue.get(i).error for i in ids)
    assert sim.accepted == []


