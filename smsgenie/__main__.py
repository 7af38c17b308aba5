"""``python -m smsgenie``: the same as the ``smsgenie`` command."""

from smsgenie.cli import main

main()
