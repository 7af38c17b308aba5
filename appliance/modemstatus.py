"""What each modem's worker last said about its modem, for ``smsgenie status``, the page and the panel.

A worker publishes its modem's state (registration, signal, operator, why it
waits) when it changes and as a heartbeat; readers in other processes see it
here. Whether the daemon runs at all comes from its lock, not from this
board, so a crashed daemon never shows a stale "registered".
"""

from __future__ import annotations

import json

from appliance.clock import Clock
from appliance.db import Database


class ModemStatusBoard:
    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock

    def publish(self, port: str, data: dict) -> None:
        with self.db.atomic() as conn:
            conn.execute("INSERT INTO modem_status (port, data, updated_at) VALUES (?, ?, ?)"
                         " ON CONFLICT (port) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                         (port, json.dumps(data, ensure_ascii=False), self.clock.time()))

    def all(self) -> dict[str, dict]:
        """Every modem's last word, by port, with ``updated_at``."""
        out = {}
        for row in self.db.execute("SELECT port, data, updated_at FROM modem_status ORDER BY port"):
            data = json.loads(row["data"])
            data["updated_at"] = row["updated_at"]
            out[row["port"]] = data
        return out
