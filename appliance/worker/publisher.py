"""A worker's word about its modem for people: written when it changes, and as a heartbeat."""

from __future__ import annotations

import os

from appliance.clock import Clock
from appliance.modemstatus import ModemStatusBoard
from appliance.text import say, to_json
from hw.modem.driver import ModemState

#: Seconds between heartbeats written for ``smsgenie status``.
PUBLISH_INTERVAL = 10.0


class StatusPublisher:
    def __init__(self, board: ModemStatusBoard, *, port: str, label: str, carrier: str, clock: Clock):
        self.board = board
        self.port = port
        self.label = label
        self.carrier = carrier
        self.clock = clock
        self._published: tuple | None = None
        self._published_at = -1e18

    def publish(self, modem: ModemState, *, holding: str = "", paused: tuple[str, float | None] | None = None,
                force: bool = False, **override) -> None:
        """Write the ``modem``'s state when it changed, or as a heartbeat every :data:`PUBLISH_INTERVAL`.

        ``holding``: why sending stops for a moment (the modem said it cannot send); ``paused``:
        (why, resumes at) while a cap, the quiet hours or staff hold the queue.
        """
        now = self.clock.monotonic()
        key = (modem, holding, paused, tuple(sorted(override.items())))
        if not force and key == self._published and now - self._published_at < PUBLISH_INTERVAL:
            return
        data = modem.as_dict()
        if holding:
            data["detail"] = to_json(say("sending paused for a moment: {why}", why=holding))
        data.update(override)
        data["pid"] = os.getpid()
        data["label"] = self.label
        data["sim_carrier"] = self.carrier
        data["paused"] = to_json(paused[0]) if paused else None
        data["resumes_at"] = paused[1] if paused else None
        self.board.publish(self.port, data)
        self._published, self._published_at = key, now
