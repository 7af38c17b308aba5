"""What the network and the modem say (hw/modem: +CMS/+CME reasons, delivery report statuses), as a person
reads it: each fixed English reason of the hardware layer as a Text, so the page says it in the reader's
language (appliance/text.py). The hardware layer keeps its plain English (it knows no catalogue); a reason
not listed here (a modem-specific code, a number shown) stays as it came.
"""

from __future__ import annotations

from appliance.text import Text, say

#: hw/modem/codes.py's +CMS/+CME reasons and hw/modem/fields.py's delivery statuses, as Text.
WORDS = {
    "the number is not assigned": say("the number is not assigned"),
    "the operator barred this SIM from sending": say("the operator barred this SIM from sending"),
    "sending to this number is barred": say("sending to this number is barred"),
    "the network rejected the message": say("the network rejected the message"),
    "the network's message memory is full": say("the network's message memory is full"),
    "the destination is out of service": say("the destination is out of service"),
    "unknown subscriber": say("unknown subscriber"),
    "the network refused the request": say("the network refused the request"),
    "the network is out of order": say("the network is out of order"),
    "temporary network failure": say("temporary network failure"),
    "the network is congested": say("the network is congested"),
    "network resources unavailable": say("network resources unavailable"),
    "SMS is not part of this SIM's plan": say("SMS is not part of this SIM's plan"),
    "the network does not offer this service": say("the network does not offer this service"),
    "invalid message reference": say("invalid message reference"),
    "the network found the message invalid": say("the network found the message invalid"),
    "the message lacks required information": say("the message lacks required information"),
    "unknown message type": say("unknown message type"),
    "the message does not fit the network's state": say("the message does not fit the network's state"),
    "unknown information element": say("unknown information element"),
    "protocol error": say("protocol error"),
    "interworking error": say("interworking error"),
    "telematic interworking not supported": say("telematic interworking not supported"),
    "the network could not deliver this kind of message": say("the network could not deliver this kind of message"),
    "the message data was invalid": say("the message data was invalid"),
    "the service centre does not support this command": say("the service centre does not support this command"),
    "the service centre is busy": say("the service centre is busy"),
    "no service centre subscription": say("no service centre subscription"),
    "the service centre failed": say("the service centre failed"),
    "invalid service centre address": say("invalid service centre address"),
    "the service centre barred the destination": say("the service centre barred the destination"),
    "the modem rejected the message": say("the modem rejected the message"),
    "unsupported coding": say("unsupported coding"),
    "the SIM's message memory is full": say("the SIM's message memory is full"),
    "the modem's message memory is full": say("the modem's message memory is full"),
    "unspecified error": say("unspecified error"),
    "the modem failed": say("the modem failed"),
    "SMS service of the modem is reserved": say("SMS service of the modem is reserved"),
    "the modem is not ready for this now": say("the modem is not ready for this now"),
    "the modem does not support this": say("the modem does not support this"),
    "the modem rejected the message format": say("the modem rejected the message format"),
    "the modem rejected a text-mode parameter": say("the modem rejected a text-mode parameter"),
    "no SIM card in the modem": say("no SIM card in the modem"),
    "the SIM needs its PIN": say("the SIM needs its PIN"),
    "the SIM needs the phone PIN": say("the SIM needs the phone PIN"),
    "the SIM card failed": say("the SIM card failed"),
    "the SIM is busy": say("the SIM is busy"),
    "the SIM is the wrong one for this modem": say("the SIM is the wrong one for this modem"),
    "the SIM needs its PUK (too many wrong PINs)": say("the SIM needs its PUK (too many wrong PINs)"),
    "the SIM needs PIN2": say("the SIM needs PIN2"),
    "the SIM needs PUK2": say("the SIM needs PUK2"),
    "the modem's memory failed": say("the modem's memory failed"),
    "no message at that memory slot": say("no message at that memory slot"),
    "the SIM does not know the service centre number": say("the SIM does not know the service centre number"),
    "no network": say("no network"),
    "the network did not answer in time": say("the network did not answer in time"),
    "no acknowledgement was expected": say("no acknowledgement was expected"),
    "unknown modem error": say("unknown modem error"),
    "network congestion": say("network congestion"),
    "the phone was busy": say("the phone was busy"),
    "no response from the phone": say("no response from the phone"),
    "service rejected": say("service rejected"),
    "quality of service not available": say("quality of service not available"),
    "error in the phone": say("error in the phone"),
    "remote procedure error": say("remote procedure error"),
    "incompatible destination": say("incompatible destination"),
    "rejected by the phone": say("rejected by the phone"),
    "number not obtainable": say("number not obtainable"),
    "no interworking available": say("no interworking available"),
    "validity period expired before delivery": say("validity period expired before delivery"),
    "deleted by the sender": say("deleted by the sender"),
    "deleted by the operator": say("deleted by the operator"),
    "the message does not exist at the service centre": say("the message does not exist at the service centre"),
    "received by the phone": say("received by the phone"),
    "forwarded, delivery not confirmed": say("forwarded, delivery not confirmed"),
    "replaced by the service centre": say("replaced by the service centre"),
    "delivered": say("delivered"),
    "the modem does not allow this now": say("the modem does not allow this now"),
    "wrong PIN": say("wrong PIN"),
    "temporary error": say("temporary error"),
    "permanent error": say("permanent error"),
}


def network_words(reason: str) -> str:
    """``reason`` from the hardware layer as a Text where its words are known, else as it came."""
    if isinstance(reason, Text) or not isinstance(reason, str):
        return reason
    known = WORDS.get(reason)
    if known is not None:
        return known
    if reason.startswith("still trying: "):
        return say("still trying: {why}", why=network_words(reason[len("still trying: "):]))
    if reason.startswith("gave up: "):
        return say("gave up: {why}", why=network_words(reason[len("gave up: "):]))
    return reason
