"""SMS Genie's domain: send lists, the durable send queue, config, the daemon and the CLI.

Nothing here imports Flask or pyserial; the daemon reaches the modem only
through ``hw.modem``. Data flows one way: upload -> send list -> queue ->
modem -> receipts (status reports) -> the record.
"""
