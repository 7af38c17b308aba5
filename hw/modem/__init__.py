"""The modem: AT-command driver (pyserial, PDU mode), PDU codec and a simulator.

``alphabet``, ``segments`` and ``pdu`` are pure codecs with no I/O. ``at``
frames the serial conversation, ``driver`` knows SIM7600/EC25 class modems,
and ``sim`` is a modem that answers AT over a real pseudo-terminal.
"""
