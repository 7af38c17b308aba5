"""PDU codec, checked against independent decoders.

smspdudecoder checks every SMS-SUBMIT we build. It does not read status
reports, so python-gsmmodem-new's decoder checks those. Neither shares code
with ours.
"""

from datetime import datetime, timedelta, timezone
from io import StringIO

import pytest
from gsmmodem.pdu import decodeSmsPdu
from hypothesis import given, settings
from hypothesis import strategies as st
from smspdudecoder.codecs import GSM
from smspdudecoder.fields import SMSSubmit

from hw.errors import PduError, TextTooLong
from hw.modem import alphabet, pdu
from hw.modem.segments import GSM7, UCS2, split

CN = "+8613800138000"
TZ8 = timezone(timedelta(hours=8))


def independent_text(pdu_hex: str) -> str:
    """The text of an SMS-SUBMIT as smspdudecoder reads it.

    smspdudecoder slices GSM text by septet count *after* turning escape pairs
    into characters, so a text holding € [ ] { } ~ ^ \\ | comes out cut short
    (after a header) or with a stray '@' from the spare bits. For GSM text we
    drop the header octets and fill bits ourselves and let its GSM codec read
    exactly the septets that remain.
    """
    sub = SMSSubmit.decode(StringIO(pdu_hex))
    if sub["dcs"]["encoding"] != "gsm":
        return sub["user_data"]["data"]
    data = bytes.fromhex(pdu_hex)
    pos = 1 + data[0] + 2 + 2 + (sub["recipient"]["length"] + 1) // 2 + 2
    pos += {0: 0, 2: 1}.get(sub["header"]["vpf"], 7)
    udl, ud = data[pos], data[pos + 1:]
    header_octets = ud[0] + 1 if sub["header"]["udhi"] else 0
    fill = (7 - header_octets * 8 % 7) % 7
    count = udl - (header_octets * 8 + fill) // 7
    value = int.from_bytes(ud[header_octets:], "little") >> fill
    packed = (value & ((1 << (7 * count)) - 1)).to_bytes((7 * count + 7) // 8, "little")
    text = GSM.decode(packed.hex())
    return text[:-1] if (7 * count) % 8 == 1 else text  # 7 spare bits read as '@'


def check_independently(p: pdu.Pdu, recipient: str, part_text: str, encoding: str, *, concat=None, srr=True):
    """Decode ``p`` with smspdudecoder and compare every field with what we meant."""
    assert len(bytes.fromhex(p.hex)) == p.tpdu_length + 1  # "00": the modem's stored SMSC
    sub = SMSSubmit.decode(StringIO(p.hex))
    assert "+" + sub["recipient"]["number"] == recipient
    assert sub["recipient"]["toa"]["ton"] == "international"
    assert sub["header"]["srr"] is srr
    assert sub["header"]["mti"] == "submit"
    assert sub["header"]["udhi"] is (concat is not None)
    assert sub["vp"] == 167  # relative, 24 hours
    if concat is not None:
        (element,) = sub["user_data"]["header"]["elements"]
        assert element["iei"] == 0
        assert element["data"] == {"reference": concat.reference, "parts_count": concat.total,
                                   "part_number": concat.sequence}
    assert sub["dcs"]["encoding"] == {GSM7: "gsm", UCS2: "ucs2"}[encoding]
    assert independent_text(p.hex) == part_text


@pytest.mark.parametrize("text", [
    "hellohello",
    "Your order #1234 is ready @ counter 2. Thanks!",
    "您好，您的订单已到店，请凭取件码 8842 到柜台领取。【小王便利店】",
    "Price: 10€ [new] {sale} ~50% ^_^ back\\slash |pipe",
    "x" * 160,
    "y" * 161,
    "中" * 70,
    "中" * 71,
    "€" * 100,
    "emoji 😀 in a text " * 10,
    "",
])
def test_submit_decodes_the_same_in_independent_decoders(text):
    plan = split(text)
    pdus = pdu.encode_message(CN, plan, concat_reference=0x2A)
    assert len(pdus) == plan.segments
    for seq, (p, part) in enumerate(zip(pdus, plan.parts), start=1):
        concat = pdu.Concat(0x2A, plan.segments, seq) if plan.concatenated else None
        check_independently(p, CN, part, plan.encoding, concat=concat)
    assert "".join(plan.parts) == text


def test_national_number_and_no_status_report():
    p = pdu.encode_submit("13800138000", "hi", status_report=False, validity=None)
    sub = SMSSubmit.decode(StringIO(p.hex))
    assert sub["recipient"]["number"] == "13800138000"
    assert sub["recipient"]["toa"]["ton"] == "unknown"
    assert sub["header"]["srr"] is False
    assert sub["header"]["vpf"] == 0
    mine = pdu.decode_submit(p.hex, p.tpdu_length)
    assert (mine.recipient, mine.text, mine.status_report, mine.validity) == ("13800138000", "hi", False, None)


# --- segment limits --------------------------------------------------------------


@pytest.mark.parametrize("text,encoding,segments", [
    ("a" * 160, GSM7, 1), ("a" * 161, GSM7, 2), ("a" * 306, GSM7, 2), ("a" * 307, GSM7, 3),
    ("中" * 70, UCS2, 1), ("中" * 71, UCS2, 2), ("中" * 134, UCS2, 2), ("中" * 135, UCS2, 3),
    ("€" * 80, GSM7, 1), ("€" * 81, GSM7, 2),  # two septets each
    ("😀" * 35, UCS2, 1), ("😀" * 36, UCS2, 2),  # two code units each
])
def test_segment_limits(text, encoding, segments):
    plan = split(text)
    assert (plan.encoding, plan.segments) == (encoding, segments)


def test_escape_sequence_never_split():
    text = "a" * 152 + "€" + "b" * 10  # 152 + 2 septets would straddle 153
    plan = split(text)
    assert plan.parts[0] == "a" * 152
    assert plan.parts[1].startswith("€")
    for part in plan.parts:
        assert sum(len(alphabet.char_septets(c)) for c in part) <= 153


def test_surrogate_pair_never_split():
    text = "中" * 66 + "😀" + "中" * 10  # the emoji's two units would straddle 67
    plan = split(text)
    assert plan.parts[0] == "中" * 66
    assert plan.parts[1].startswith("😀")
    for p in pdu.encode_message(CN, plan):
        sub = SMSSubmit.decode(StringIO(p.hex))
        sub["user_data"]["data"].encode("utf-8")  # a lone surrogate would raise here


def test_one_curly_quote_forces_ucs2():
    assert split("Don't miss our sale today").encoding == GSM7
    assert split("Don’t miss our sale today").encoding == UCS2
    assert alphabet.first_non_gsm7("Don’t") == "’"


def test_too_long_is_refused_with_a_count():
    with pytest.raises(TextTooLong, match="at most 255"):
        split("中" * (67 * 255 + 1))


def test_bad_recipient_is_refused():
    with pytest.raises(PduError, match="not a phone number"):
        pdu.encode_submit("138-0013", "hi")


# --- round trips over arbitrary text ------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=700), st.integers(0, 255))
def test_round_trip_arbitrary_text(text, ref):
    plan = split(text)
    pdus = pdu.encode_message(CN, plan, concat_reference=ref)
    decoded = [pdu.decode_submit(p.hex, p.tpdu_length) for p in pdus]
    assert "".join(d.text for d in decoded) == text
    for seq, (d, part) in enumerate(zip(decoded, plan.parts), start=1):
        assert d.recipient == CN and d.text == part
        if plan.concatenated:
            assert d.user_data.concat == pdu.Concat(ref, plan.segments, seq)
    # and an independent decoder agrees, part by part
    for p, part in zip(pdus, plan.parts):
        assert independent_text(p.hex) == part


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(alphabet.DEFAULT.replace("\x1b", "") + "".join(alphabet.EXTENSION)),
               max_size=500))
def test_round_trip_gsm7_text(text):
    plan = split(text)
    assert plan.encoding == GSM7
    assert plan.units == sum(len(alphabet.char_septets(c)) for c in text)
    for p, part in zip(pdu.encode_message(CN, plan), plan.parts):
        assert pdu.decode_submit(p.hex).text == part
        assert independent_text(p.hex) == part


# --- inbound -------------------------------------------------------------------------


def test_decode_known_deliver_vector():
    # A widely published SMS-DELIVER example ("hellohello").
    d = pdu.decode_deliver("07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37")
    assert d.text == "hellohello"
    assert d.sender == "27838890001"
    assert d.smsc == "+27381000015"
    assert d.timestamp == datetime(1999, 3, 29, 15, 16, 59, tzinfo=timezone(timedelta(hours=2)))


def test_decode_status_report_from_hand_built_bytes():
    # SMSC +8613800100500, MR 0x2A, RA +8613800138000, SCTS/DT 2026-11-25 10:00:00 +08, ST 0x00
    hex_ = ("089168" "3108100005F0" "06" "2A" "0D91" "683108108300F0"
            "62115201000023" "62115201001023" "00")
    r = pdu.decode_status_report(hex_)
    assert (r.reference, r.recipient, r.status, r.outcome) == (0x2A, CN, 0, "delivered")
    assert r.discharged == datetime(2026, 11, 25, 10, 0, 1, tzinfo=TZ8)
    gm = decodeSmsPdu(hex_)
    assert (gm["type"], gm["reference"], gm["number"], gm["status"]) == ("SMS-STATUS-REPORT", 0x2A, CN, 0)


def test_status_report_round_trip_and_meaning():
    t = datetime(2026, 11, 25, 10, 0, tzinfo=TZ8)
    for st_, outcome in [(0x00, "delivered"), (0x21, "pending"), (0x41, "failed"),
                         (0x46, "expired"), (0x62, "failed"), (0xA0, "failed")]:
        p = pdu.encode_status_report(200, CN, st_, t, t + timedelta(seconds=5))
        r = pdu.decode_incoming(p.hex, p.tpdu_length)
        assert isinstance(r, pdu.StatusReport)
        assert (r.reference, r.recipient, r.outcome) == (200, CN, outcome)
        assert decodeSmsPdu(p.hex)["status"] == st_


def test_status_report_without_smsc_field():
    """Some modems leave the SMSC address out of +CDS; the length tells us."""
    t = datetime(2026, 11, 25, 10, 0, tzinfo=TZ8)
    p = pdu.encode_status_report(7, CN, 0, t, t)
    tpdu_hex = p.hex[2 + 2 * bytes.fromhex(p.hex)[0]:]
    r = pdu.decode_incoming(tpdu_hex, p.tpdu_length)
    assert (r.reference, r.recipient, r.smsc) == (7, CN, None)


def test_concatenated_deliver_reassembles_in_any_order():
    t = datetime(2026, 11, 25, 10, 0, tzinfo=TZ8)
    text = "退订" + "很长的消息" * 30
    plan = split(text)
    parts = [pdu.decode_deliver(pdu.encode_deliver(CN, part, t, concat=pdu.Concat(9, plan.segments, i)).hex)
             for i, part in enumerate(plan.parts, start=1)]
    r = pdu.Reassembler()
    results = [r.add(p) for p in reversed(parts)]
    assert results[:-1] == [None] * (len(parts) - 1)
    assert results[-1] == text
    assert r.waiting == 0


def test_16bit_concat_reference_is_read():
    # SMS-DELIVER, UCS-2, UDH with IEI 08 (16-bit reference 0x1234, part 1 of 2)
    t = pdu.encode_timestamp(datetime(2026, 1, 2, 3, 4, 5, tzinfo=TZ8)).hex()
    ud = bytes([0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01]) + "好".encode("utf-16-be")
    hex_ = "00" + "44" + "0D91683108108300F0" + "0008" + t + f"{len(ud):02X}" + ud.hex()
    d = pdu.decode_deliver(hex_)
    assert d.text == "好"
    assert d.concat == pdu.Concat(0x1234, 2, 1)


def test_alphanumeric_sender():
    t = datetime(2026, 11, 25, 10, 0, tzinfo=TZ8)
    d = pdu.decode_deliver(pdu.encode_deliver("ICBC95588", "Your code is 1234", t).hex)
    assert (d.sender, d.text) == ("ICBC95588", "Your code is 1234")


def test_eight_bit_and_compressed_data_are_kept_not_dropped():
    t = pdu.encode_timestamp(datetime(2026, 1, 2, 3, 4, 5, tzinfo=TZ8)).hex()
    for dcs, problem in [("04", "8-bit"), ("24", "compressed")]:
        hex_ = "00" + "04" + "0D91683108108300F0" + "00" + dcs + t + "03" + "DEADBE"
        d = pdu.decode_deliver(hex_)
        assert d.text is None
        assert problem in d.user_data.problem
        assert d.user_data.raw == bytes.fromhex("DEADBE")


def test_national_language_shift_is_kept_and_marked():
    t = pdu.encode_timestamp(datetime(2026, 1, 2, 3, 4, 5, tzinfo=TZ8)).hex()
    header = bytes([0x03, 0x24, 0x01, 0x01])  # single shift: Turkish
    fill = (7 - len(header) * 8 % 7) % 7
    septets = alphabet.encode("Merhaba")
    ud = header + alphabet.pack(septets, fill)
    udl = (len(header) * 8 + fill) // 7 + len(septets)
    d = pdu.decode_deliver("00" + "44" + "0D91683108108300F0" + "0000" + t + f"{udl:02X}" + ud.hex())
    assert d.text == "Merhaba"
    assert "national language table" in d.user_data.problem


@pytest.mark.parametrize("bad,match", [
    ("ZZ", "not hexadecimal"),
    ("0791", "ends inside SMSC address"),
    ("07917283010010F504", "ends inside originating address"),
    ("07917283010010F5040BC87238880900F1000099309251", "ends inside service centre time stamp"),
])
def test_truncated_or_garbage_pdus_raise_pdu_error(bad, match):
    with pytest.raises(PduError, match=match):
        pdu.decode_deliver(bad)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=180), st.one_of(st.none(), st.integers(0, 200)))
def test_decoding_arbitrary_bytes_never_crashes(data, length):
    try:
        pdu.decode_incoming(data.hex(), length)
    except PduError:
        pass


# --- fields ---------------------------------------------------------------------------


@pytest.mark.parametrize("period,octet", [
    (timedelta(minutes=5), 0), (timedelta(hours=12), 143), (timedelta(hours=13), 145),
    (timedelta(days=1), 167), (timedelta(days=2), 168), (timedelta(days=30), 196),
    (timedelta(weeks=5), 197), (timedelta(weeks=63), 255), (timedelta(weeks=100), 255),
])
def test_validity_period_octets(period, octet):
    assert pdu.encode_validity(period) == octet
    assert pdu.decode_validity(octet) >= min(period, timedelta(weeks=63))


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2089, 12, 31)),
       st.integers(-48, 56))
def test_timestamp_round_trip(when, quarters):
    aware = when.replace(microsecond=0, tzinfo=timezone(timedelta(minutes=15 * quarters)))
    assert pdu.decode_timestamp(pdu.encode_timestamp(aware)) == aware


#: Characters as a customer sees them that are more than one code point (UAX #29 extended grapheme clusters).
CLUSTERS = {
    "flag": "🇨🇳",
    "skin tone": "👍🏽",
    "ZWJ family": "👨\u200d👩\u200d👧",
    "heart with VS16": "❤\ufe0f",
    "text-style VS15": "☎\ufe0e",
    "keycap": "1\ufe0f\u20e3",
    "combining accent": "e\u0301",
    "Hangul jamo": "\u1100\u1161\u11a8",
}


@pytest.mark.parametrize("name", CLUSTERS)
def test_no_part_cuts_a_character_the_customer_sees_in_ucs2(name):
    """The cluster at every position across the first part boundary (67 units): whole in one part, and
    the parts, decoded by smspdudecoder, join to the text."""
    cluster = CLUSTERS[name]
    units = len(cluster.encode("utf-16-le")) // 2
    for before in range(67 - units - 1, 68):
        text = "中" * before + cluster + "中" * 20
        plan = split(text)
        assert plan.encoding == UCS2 and "".join(plan.parts) == text
        assert sum(cluster in part for part in plan.parts) == 1, (name, before, plan.parts)
        pdus = pdu.encode_message(CN, plan, concat_reference=7)
        for seq, (p, part) in enumerate(zip(pdus, plan.parts), start=1):
            check_independently(p, CN, part, UCS2, concat=pdu.Concat(7, plan.segments, seq))
            assert len(part.encode("utf-16-le")) // 2 <= 67


def test_no_part_cuts_cr_lf_or_an_escape_in_gsm7():
    for cluster in ("\r\n", "€"):
        for before in range(150, 154):
            text = "a" * before + cluster + "b" * 20
            plan = split(text)
            assert plan.encoding == GSM7 and "".join(plan.parts) == text
            assert sum(cluster in part for part in plan.parts) == 1, (cluster, before)
            for seq, (p, part) in enumerate(zip(pdu.encode_message(CN, plan, concat_reference=9), plan.parts), 1):
                check_independently(p, CN, part, GSM7, concat=pdu.Concat(9, plan.segments, seq))


def test_a_cluster_longer_than_a_part_is_cut_by_code_point():
    text = "a" + "\u0301" * 100 + "中"  # one "character" of 101 code points: no part can hold it
    plan = split(text)
    assert "".join(plan.parts) == text and all(len(p.encode("utf-16-le")) // 2 <= 67 for p in plan.parts)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list(CLUSTERS.values()) + ["中", "a", "😀", "€"]), min_size=1, max_size=120))
def test_the_preview_counts_the_parts_the_modem_sends(pieces):
    from appliance.plan import cost, plan_message

    text = "".join(pieces)
    plan = split(text)
    assert cost(text)[1] == plan_message(text).segments == plan.segments == len(pdu.encode_message(CN, plan))
