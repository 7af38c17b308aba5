"""The kinds of line a modem sends, and how to tell them apart (3GPP TS 27.007 §5, TS 27.005 §3).

Final result codes end a command; information lines belong to the command
that asked; unsolicited result codes (URCs) come on their own, some with a
PDU on the next line. :class:`hw.modem.at.ATChannel` sorts every line it
reads with these.
"""

from __future__ import annotations

from dataclasses import dataclass

FINAL_OK = {"OK"}
FINAL_ERRORS = {"ERROR", "NO CARRIER", "NO DIALTONE", "BUSY", "NO ANSWER"}
FINAL_ERROR_PREFIXES = ("+CME ERROR:", "+CMS ERROR:")

#: URCs followed by a second line holding a PDU (27.005 §3.4.1, PDU mode).
PDU_URCS = {"+CMT", "+CDS", "+CBM"}
#: Names (text before ':' or the whole line) we know as unsolicited.
URC_NAMES = {
    "+CMTI", "+CDSI", "+CMT", "+CDS", "+CBM", "+CBMI",
    "RDY", "+CPIN", "SMS DONE", "PB DONE", "+QIND", "+CREG", "+CGREG", "+CEREG", "+CSQ",
    "RING", "+CRING", "+CLIP", "+CUSD", "+CFUN", "+SIMCARD", "POWERED DOWN", "NORMAL POWER DOWN",
    "+CPSI", "+CGEV", "+CTZV", "+CTZE", "*PSUTTZ", "+QUSIM", "+CNSMOD",
}
REBOOT_URCS = {"RDY"}
#: Identification commands most modems answer in plain text, without the '+XXX:' prefix.
PLAIN_ANSWERS = {"+CGMI:", "+CGMM:", "+CGMR:", "+CGSN:", "+CIMI:", "+GMI:", "+GMM:", "+GMR:", "+GSN:"}
#: Commands that answer under another name: SIMCom's AT+CICCID says '+ICCID: ...'.
RENAMED_ANSWERS = {"+CICCID:": "+ICCID:"}
#: Responses whose information line is followed by a PDU line (27.005 §3.4.2, §3.4.3).
PDU_RESPONSES = {"+CMGR:", "+CMGL:"}
_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class Urc:
    """An unsolicited result code. ``pdu`` is set for +CMT / +CDS."""

    name: str
    line: str
    pdu: str | None = None

    @property
    def args(self) -> str:
        return self.line.split(":", 1)[1].strip() if ":" in self.line else ""


def line_name(line: str) -> str:
    """'+CMTI: "SM",3' -> '+CMTI'; 'SMS DONE' -> 'SMS DONE'."""
    if line.startswith(("+", "*", "^")) and ":" in line:
        return line.split(":", 1)[0].strip().upper()
    return line.strip().upper()


def info_prefix_for(command: str) -> str | None:
    """The prefix of information lines a command answers with: AT+CSQ -> '+CSQ:'."""
    body = command[2:] if command[:2].upper() == "AT" else command
    if not body or body[0] not in "+^*":
        return None
    name = ""
    for ch in body[1:]:
        if not (ch.isalnum() or ch == "_"):
            break
        name += ch
    prefix = f"{body[0]}{name.upper()}:" if name else None
    prefix = RENAMED_ANSWERS.get(prefix, prefix)
    return None if prefix in PLAIN_ANSWERS else prefix
