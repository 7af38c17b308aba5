"""What +CMS ERROR and +CME ERROR codes mean, and what to do about them.

Every code gets a plain-language reason and one of three kinds:

``permanent``
    the message itself cannot go (an unassigned number, a barred SIM for
    that destination, a malformed PDU): do not retry it.
``retry``
    a passing network or modem condition: the same message may go later.
``device``
    the box cannot send anything right now (no SIM, no network, PIN
    needed): the message is not at fault; keep it queued and fix the box.

Sources: 3GPP TS 27.005 §3.2.5 (300-500), TS 24.011 Annex E (RP causes
1-127), TS 23.040 §9.2.3.22 (TP-FCS 128-255), TS 27.007 §9.2 (+CME).
"""

from __future__ import annotations

from hw.errors import CommandFailed

PERMANENT = "permanent"
RETRY = "retry"
DEVICE = "device"

CMS: dict[int, tuple[str, str]] = {
    1: ("the number is not assigned", PERMANENT),
    8: ("the operator barred this SIM from sending", DEVICE),
    10: ("sending to this number is barred", PERMANENT),
    21: ("the network rejected the message", PERMANENT),
    22: ("the network's message memory is full", RETRY),
    27: ("the destination is out of service", RETRY),
    28: ("unknown subscriber", PERMANENT),
    29: ("the network refused the request", PERMANENT),
    30: ("unknown subscriber", PERMANENT),
    38: ("the network is out of order", RETRY),
    41: ("temporary network failure", RETRY),
    42: ("the network is congested", RETRY),
    47: ("network resources unavailable", RETRY),
    50: ("SMS is not part of this SIM's plan", DEVICE),
    69: ("the network does not offer this service", PERMANENT),
    81: ("invalid message reference", RETRY),
    95: ("the network found the message invalid", PERMANENT),
    96: ("the message lacks required information", PERMANENT),
    97: ("unknown message type", PERMANENT),
    98: ("the message does not fit the network's state", RETRY),
    99: ("unknown information element", PERMANENT),
    111: ("protocol error", RETRY),
    127: ("interworking error", RETRY),
    128: ("telematic interworking not supported", PERMANENT),
    143: ("the network could not deliver this kind of message", PERMANENT),
    175: ("the message data was invalid", PERMANENT),
    176: ("the service centre does not support this command", PERMANENT),
    192: ("the service centre is busy", RETRY),
    193: ("no service centre subscription", DEVICE),
    194: ("the service centre failed", RETRY),
    195: ("invalid service centre address", DEVICE),
    196: ("the service centre barred the destination", PERMANENT),
    197: ("the modem rejected the message", RETRY),
    198: ("unsupported coding", PERMANENT),
    208: ("the SIM's message memory is full", RETRY),
    211: ("the modem's message memory is full", RETRY),
    255: ("unspecified error", RETRY),
    300: ("the modem failed", RETRY),
    301: ("SMS service of the modem is reserved", RETRY),
    302: ("the modem is not ready for this now", RETRY),
    303: ("the modem does not support this", PERMANENT),
    304: ("the modem rejected the message format", PERMANENT),
    305: ("the modem rejected a text-mode parameter", PERMANENT),
    310: ("no SIM card in the modem", DEVICE),
    311: ("the SIM needs its PIN", DEVICE),
    312: ("the SIM needs the phone PIN", DEVICE),
    313: ("the SIM card failed", DEVICE),
    314: ("the SIM is busy", RETRY),
    315: ("the SIM is the wrong one for this modem", DEVICE),
    316: ("the SIM needs its PUK (too many wrong PINs)", DEVICE),
    317: ("the SIM needs PIN2", DEVICE),
    318: ("the SIM needs PUK2", DEVICE),
    320: ("the modem's memory failed", RETRY),
    321: ("no message at that memory slot", PERMANENT),
    322: ("the modem's message memory is full", RETRY),
    330: ("the SIM does not know the service centre number", DEVICE),
    331: ("no network", DEVICE),
    332: ("the network did not answer in time", RETRY),
    340: ("no acknowledgement was expected", PERMANENT),
    500: ("unknown modem error", RETRY),
}

CME: dict[int, tuple[str, str]] = {
    0: ("the modem failed", RETRY),
    3: ("the modem does not allow this now", RETRY),
    4: ("the modem does not support this", PERMANENT),
    10: ("no SIM card in the modem", DEVICE),
    11: ("the SIM needs its PIN", DEVICE),
    12: ("the SIM needs its PUK (too many wrong PINs)", DEVICE),
    13: ("the SIM card failed", DEVICE),
    14: ("the SIM is busy", RETRY),
    15: ("the SIM is the wrong one for this modem", DEVICE),
    16: ("wrong PIN", DEVICE),
    30: ("no network", DEVICE),
    31: ("the network did not answer in time", RETRY),
    100: ("unknown modem error", RETRY),
}

#: SIM-related +CME codes, for telling the technician what to check.
SIM_MISSING = {10}
SIM_LOCKED = {11, 12, 16}
SIM_FAILED = {13, 15}


def describe(kind: str | None, code: int | None) -> tuple[str, str]:
    """-> (reason, kind) for an error code; unknown codes are 'retry' with the number shown."""
    if kind is None:
        return "the modem answered ERROR", RETRY
    table = CMS if kind == "cms" else CME
    if code is not None and code in table:
        return table[code]
    if kind == "cms" and code is not None and 512 <= code:
        return f"modem-specific error {code}", RETRY
    return f"error {code}", RETRY


def command_failed(command: str, final: str) -> CommandFailed:
    """Build the exception for a final result line that is not OK."""
    kind: str | None = None
    code: int | None = None
    text = final.strip()
    for prefix, k in (("+CMS ERROR:", "cms"), ("+CME ERROR:", "cme")):
        if text.upper().startswith(prefix):
            kind = k
            value = text[len(prefix):].strip()
            try:
                code = int(value)
            except ValueError:  # verbose error mode (AT+CMEE=2) gives words
                return CommandFailed(command, k, None, value or "unspecified", True)
    reason, severity = describe(kind, code)
    return CommandFailed(command, kind, code, reason, severity != PERMANENT, severity == DEVICE)
