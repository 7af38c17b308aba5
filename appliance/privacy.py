"""Customers' phone numbers stay confidential: logs, screens and lists show them masked."""

from __future__ import annotations


def mask_number(number: str) -> str:
    """'+8613800138000' -> '138****8000'; other numbers keep only their last 4 digits.

    Enough for a clerk to tell two customers apart, not enough to call one.
    """
    digits = "".join(ch for ch in number if ch.isdigit())
    if number.startswith("+86") or (len(digits) == 13 and digits.startswith("86")):
        digits = digits[2:]
    if len(digits) == 11 and digits.startswith("1"):
        return f"{digits[:3]}****{digits[-4:]}"
    if len(digits) <= 4:
        return "*" * len(digits)
    return "*" * (len(digits) - 4) + digits[-4:]


def mask_iccid(iccid: str) -> str:
    """'89860012345678901234' -> '898600******1234': the issuer and the last digits printed on the card
    are enough to tell SIMs apart; the whole serial is not shown where customers can see it."""
    if len(iccid) <= 10:
        return iccid
    return f"{iccid[:6]}{'*' * (len(iccid) - 10)}{iccid[-4:]}"
