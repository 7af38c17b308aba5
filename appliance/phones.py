"""Phone numbers as shops write them -> E.164, with the reason when they cannot be used.

Parsing and the carrier of a number come from phonenumbers (Google's
libphonenumber data). The four carriers of the service agreement get their
usual names; anything else keeps the name phonenumbers gives.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import NamedTuple

import phonenumbers
from phonenumbers import PhoneNumberType, carrier

from appliance.text import say

CARRIERS = {
    "China Mobile": "China Mobile",
    "China Unicom": "China Unicom",
    "China Telecom": "China Telecom",
    "China Broadnet": "China Broadnet",
}
#: A carrier's name as a person reads it (the page and the command line translate it: 中国移动 ...).
CARRIER_WORDS = {"China Mobile": say("China Mobile"), "China Unicom": say("China Unicom"),
                 "China Telecom": say("China Telecom"), "China Broadnet": say("China Broadnet"),
                 "other": say("other carriers"), "": say("any carrier")}
MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}

# Characters people put in numbers that mean nothing: full-width digits are
# folded by NFKC in the caller; these are the separators.
_SEPARATORS = str.maketrans("", "", " \t\u3000-–—_()（）[]/\\'\"")
_SCIENTIFIC = re.compile(r"\d(\.\d+)?[eE]\+?\d+")


class Number(NamedTuple):
    e164: str
    carrier: str
    """"China Mobile", "China Unicom", "China Telecom", "China Broadnet", another name, or ""."""


class NumberProblem(ValueError):
    """Why a value is not a usable mobile number: 'invalid' or 'not a mobile number'."""

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        super().__init__(detail)


#: Why a value is refused (a row's reason in the preview).
INVALID = say("invalid")
NOT_MOBILE = say("not a mobile number")

_CN_MOBILE_SHAPE = re.compile(r"(?:\+86|0086|86)?(1\d{10})")
_CN_MOBILE = re.compile(phonenumbers.PhoneMetadata.metadata_for_region("CN").mobile.national_number_pattern)


@functools.lru_cache(maxsize=1)
def _cn_segment_digits() -> int:
    """How many leading digits of a Chinese mobile decide its carrier in phonenumbers' data (its longest
    prefix for +86 1...): caching by that many digits gives the same answer as asking for every number."""
    from phonenumbers.carrierdata import CARRIER_DATA  # noqa: PLC0415 - the table name_for_number reads

    return max(len(key) for key in CARRIER_DATA if key.startswith("861")) - 2


@functools.lru_cache(maxsize=100_000)
def _cn_carrier_by_segment(segment: str) -> str:
    number = phonenumbers.PhoneNumber(country_code=86, national_number=int(segment.ljust(11, "0")))
    name = carrier.name_for_valid_number(number, "en")  # the caller has checked it is a valid mobile
    return CARRIERS.get(name, name)


def _cn_carrier(national: str) -> str:
    """Carrier of a valid Chinese mobile (11 digits) by its number segment (号段)."""
    return _cn_carrier_by_segment(national[:_cn_segment_digits()])


def normalise(raw: str, region: str = "CN") -> Number:
    """'138 0013 8000', '+86-138-0013-8000', '008613800138000', '8613800138000' -> +8613800138000.

    Raises NumberProblem for anything that is not a valid mobile number.
    """
    if region == "CN" and len(raw) == 11 and raw.isdigit() and raw.isascii() and _CN_MOBILE.fullmatch(raw):
        return Number("+86" + raw, _cn_carrier(raw))  # the commonest shape of all, as a till exports it
    text = (raw if raw.isascii() else unicodedata.normalize("NFKC", raw)).strip().translate(_SEPARATORS)
    if region == "CN":
        # The common case, fast: a Chinese mobile, checked against phonenumbers' own CN
        # mobile pattern, its carrier looked up once per number segment. Anything else
        # takes the full path below.
        shape = _CN_MOBILE_SHAPE.fullmatch(text)
        if shape and _CN_MOBILE.fullmatch(shape.group(1)):
            national = shape.group(1)
            return Number("+86" + national, _cn_carrier(national))
    if not text:
        raise NumberProblem(INVALID, say("no phone number"))
    if _SCIENTIFIC.fullmatch(text):
        raise NumberProblem(INVALID, say("Excel turned this number into {value!r} and lost digits: format the "
                                         "phone column as Text in Excel and export again", value=raw.strip()))
    if text.startswith("00"):
        text = "+" + text[2:]
    elif region == "CN" and len(text) == 13 and text.startswith("86") and text.isdigit():
        text = "+" + text
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise NumberProblem(INVALID, say("{value!r} is not a phone number", value=raw.strip())) from None
    if not phonenumbers.is_valid_number(parsed):
        raise NumberProblem(INVALID, say("{value!r} is not a valid phone number", value=raw.strip()))
    if phonenumbers.number_type(parsed) not in MOBILE_TYPES:
        raise NumberProblem(NOT_MOBILE, say("{value!r} is not a mobile number (SMS needs a mobile)",
                                            value=raw.strip()))
    name = carrier.name_for_number(parsed, "en")
    return Number(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
                  CARRIERS.get(name, name))


def carrier_of(e164: str) -> str:
    """The carrier of an E.164 number ('' when unknown); Chinese mobiles by number segment, fast."""
    if e164.startswith("+86") and _CN_MOBILE.fullmatch(e164[3:]):
        return _cn_carrier(e164[3:])
    try:
        name = carrier.name_for_number(phonenumbers.parse(e164, None), "en")
    except phonenumbers.NumberParseException:
        return ""
    return CARRIERS.get(name, name)


def carrier_words(name: str | None):
    """The words for a carrier's name (:data:`CARRIER_WORDS`; another name as it is)."""
    return CARRIER_WORDS.get(name or "", name or "")
