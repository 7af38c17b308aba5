"""SMS Genie's front door: the ``smsgenie`` command, the demo, and the wiring of a running box.

The rooms below it point one way - ``smsgenie`` (this package) -> ``web``
(the page) -> ``appliance`` (the domain) -> ``hw`` (things with wires) -
and nothing points back up (tests/test_layers.py checks the imports).
"""
