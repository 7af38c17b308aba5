"""The durable queue's state machine, in simulated time."""

from __future__ import annotations

import os
import stat

import pytest

from appliance.db import Database
from appliance.errors import MessageNotFound, MessageTextError
from appliance.inbox import Inbox
from appliance.plan import plan_message
from appliance.reports import same_number
from appliance.sendqueue import RetryPolicy, SendQueue
from tests.conftest import report

CN = "+8613800138000"


@pytest.fixture
def q(tmp_path, fake_clock):
    db = Database.in_data_dir(tmp_path / "data")
    q = SendQueue(db, fake_clock)
    q.ledger.adjust(1_000_000, "credit for tests that are not about credit")
    yield q
    db.close()


def queue_one(q, text="hello", recipient=CN):
    list_id = q.create_list("list.csv", "YL08")
    (mid,) = q.enqueue(list_id, [recipient], plan_message(text), "YL08")
    return mid


def test_enqueue_keeps_everything_the_record_needs(q):
    mid = queue_one(q, "你好" * 40)
    m = q.get(mid)
    assert (m.recipient, m.text, m.encoding, m.segments, m.service_code, m.state) == \
        (CN, "你好" * 40, "ucs2", 2, "YL08", "queued")
    assert m.send_list_id is not None and m.created_at == q.clock.time()
    assert m.concat_ref == mid & 0xFF


def test_claim_marks_sending_in_order(q):
    a, b = queue_one(q, "a"), queue_one(q, "b")
    first = q.claim()
    assert (first.id, first.state, first.attempts) == (a, "sending", 1)
    assert q.claim().id == b
    assert q.claim() is None


def test_sent_then_delivered_by_report(q):
    mid = queue_one(q, "x" * 200)  # two parts
    q.claim()
    q.record_segment(mid, 1, 17)
    q.record_segment(mid, 2, 18)
    q.mark_sent(mid)
    assert q.get(mid).state == "sent"
    assert report(q, 17, "8613800138000", "delivered", 0, "received").state == "sent"  # one part only
    assert report(q, 18, "13800138000", "delivered", 0, "received").state == "delivered"


def test_report_for_an_unknown_reference_is_kept_aside(q):
    mid = queue_one(q)
    q.claim()
    q.record_segment(mid, 1, 5)
    q.mark_sent(mid)
    assert report(q, 5, "+8613911112222", "delivered", 0, "x") is None  # same ref, other number
    assert report(q, 6, CN, "delivered", 0, "x") is None
    assert q.get(mid).state == "sent"
    assert q.db.execute("SELECT COUNT(*) FROM unmatched_report").fetchone()[0] == 2


def test_reference_reuse_matches_the_newest_unreported_part(q, fake_clock):
    old = queue_one(q)
    q.claim()
    q.record_segment(old, 1, 5)
    q.mark_sent(old)
    report(q, 5, CN, "delivered", 0, "ok")
    fake_clock.advance(60)
    new = queue_one(q)
    q.claim()
    q.record_segment(new, 1, 5)  # TP-MR wrapped round to 5 again
    q.mark_sent(new)
    report(q, 5, CN, "failed", 0x41, "incompatible destination")
    assert q.get(old).state == "delivered"
    assert (q.get(new).state, q.get(new).error) == ("failed", "incompatible destination")


def test_failed_and_expired_reports(q):
    for outcome, code in (("failed", 0x42), ("expired", 0x46)):
        mid = queue_one(q)
        q.claim()
        q.record_segment(mid, 1, mid)
        q.mark_sent(mid)
        assert report(q, mid, CN, outcome, code, "why").state == outcome


def test_pending_report_changes_nothing_and_the_final_one_still_matches(q):
    mid = queue_one(q)
    q.claim()
    q.record_segment(mid, 1, 9)
    q.mark_sent(mid)
    assert report(q, 9, CN, "pending", 0x21, "busy").state == "sent"
    assert report(q, 9, CN, "delivered", 0, "ok").state == "delivered"


def test_retry_with_backoff_and_cap_then_fail(q, fake_clock):
    policy = RetryPolicy(max_attempts=4, base_seconds=30, cap_seconds=100)
    mid = queue_one(q)
    delays = []
    for _ in range(3):
        m = q.claim()
        assert m.id == mid
        before = fake_clock.time()
        assert q.retry_later(mid, "network congested", policy) == "queued"
        delays.append(q.get(mid).next_attempt_at - before)
        assert q.claim() is None  # not due yet
        fake_clock.advance(delays[-1])
    assert delays == [30, 60, 100]
    q.claim()
    assert q.retry_later(mid, "network congested", policy) == "failed"
    m = q.get(mid)
    assert (m.state, m.attempts) == ("failed", 4)
    assert "gave up after 4 attempts: network congested" == m.error


def test_give_back_does_not_count_the_attempt(q):
    mid = queue_one(q)
    q.claim()
    q.give_back(mid, "no network")
    m = q.get(mid)
    assert (m.state, m.attempts, m.error) == ("queued", 0, "no network")


def test_after_a_crash_handed_messages_are_uncertain_and_claimed_ones_requeued(q):
    a, b, c = queue_one(q, "x" * 200), queue_one(q), queue_one(q)
    ma = q.claim()
    q.record_segment(a, 1, 3)  # part 1 confirmed, part 2 unknown
    q.claim()  # b: claimed while a was with the modem, never handed over
    assert q.recover_interrupted({(a, ma.sending_at), (b, 12.5)}) == (1, 1)  # (b, 12.5): an older claim
    m = q.get(a)
    assert m.state == "uncertain" and "may have gone out" in m.error
    assert (q.get(b).state, q.get(b).attempts) == ("queued", 0)
    assert q.claim().id == b  # the uncertain one is not picked up by itself
    assert q.requeue_uncertain([a]) == 1
    again = q.claim()
    assert again.id == a and again.accepted == frozenset({1})
    assert q.claim().id == c


def test_after_a_power_cut_every_claimed_message_is_uncertain(q):
    a, b = queue_one(q), queue_one(q)
    q.claim()
    q.claim()
    assert q.recover_interrupted(None) == (0, 2)
    assert all("lost power" in q.get(i).error for i in (a, b))


def test_unclaim_puts_a_message_back_as_it_was(q):
    a = queue_one(q)
    q.claim()
    q.unclaim(a)
    assert (q.get(a).state, q.get(a).attempts) == ("queued", 0)


def test_handover_journal_round_trip_and_torn_lines(tmp_path):
    from appliance.journal import HandoverJournal
    j = HandoverJournal(tmp_path)
    j.open()
    j.record(7, 1790000000.123456)
    j.record(8, 0.1 + 0.2)
    with open(j.path, "a") as f:
        f.write("9 17900")  # torn mid-write: that hand-over did not happen
    assert j.read() == {(7, 1790000000.123456), (8, 0.1 + 0.2)}
    j.clear()
    assert j.read() == set()
    j.close()


def test_each_hand_over_is_on_the_disk_before_its_pdu_goes(tmp_path, monkeypatch):
    """record() returns only after fdatasync, and the header says so; a journal without it (an older
    release's) is not durable."""
    import os

    from appliance import journal

    synced = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (synced.append(os.lseek(fd, 0, os.SEEK_CUR)), real(fd)))
    j = journal.HandoverJournal(tmp_path)
    j.open()
    j.record(7, 1.5)
    assert synced == [j.path.stat().st_size]  # everything written, then synced
    j.clear()
    assert j.path.read_bytes() == journal.HEADER and journal.durable(tmp_path)
    j.close()
    (tmp_path / "handover.other.journal").write_text("8 2.5\n")
    assert not journal.durable(tmp_path)


def test_counts_and_sent_total(q):
    ids = [queue_one(q) for _ in range(3)]
    q.claim()
    q.record_segment(ids[0], 1, 1)
    q.mark_sent(ids[0])
    q.claim()
    q.fail(ids[1], "not assigned")
    counts = q.counts()
    assert counts == {"queued": 1, "sending": 0, "sent": 1, "delivered": 0, "failed": 1, "expired": 0,
                      "uncertain": 0}
    assert q.sent_total() == 1


def test_unknown_message(q):
    with pytest.raises(MessageNotFound):
        q.get(999)
    with pytest.raises(MessageNotFound):
        q.fail(999, "x")


def test_inbound_is_stored_once(q):
    first = Inbox(q.db, q.clock).store(CN, None, "TD", "00AA")
    assert isinstance(first, int)  # its id (evidence of a consent or an opt-out)
    assert Inbox(q.db, q.clock).store(CN, None, "TD", "00AA") is None
    assert [m["text"] for m in Inbox(q.db, q.clock).latest_parts()] == ["TD"]


def test_database_and_data_dir_are_private(tmp_path):
    db = Database.in_data_dir(tmp_path / "private")
    db.close()
    assert stat.S_IMODE(os.stat(tmp_path / "private").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "private" / "smsgenie.db").st_mode) == 0o600


def test_migrations_run_once(tmp_path):
    db = Database(tmp_path / "x.db")
    assert db.migrate() == []
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_empty_and_too_long_texts_are_refused():
    with pytest.raises(MessageTextError, match="empty"):
        plan_message("   ")
    with pytest.raises(MessageTextError, match="at most 255"):
        plan_message("中" * 20000)
    assert plan_message("Don’t miss it").forced_ucs2_by == "’"
    assert plan_message("你好").forced_ucs2_by is None


def test_same_number():
    assert same_number("+8613800138000", "13800138000")
    assert same_number("8613800138000", "+8613800138000")
    assert not same_number("+8613800138000", "+8613800138001")
    assert not same_number("+8613800138000", "8000")
