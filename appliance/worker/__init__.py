"""One modem's worker: sends the queue through its modem and keeps going whatever the modem does.

The daemon runs one :class:`ModemWorker` per configured modem, each in its
own thread with its own database connection. The worker's jobs are rooms of
their own, tied together by the loop in :mod:`.loop`:

- :mod:`.claim` - which message this modem may take now (pause, clock, quiet hours, caps, routing);
- :mod:`.sender` - handing a message's parts to the modem and settling it by what happens;
- :mod:`.collector` - delivery reports and customers' texts stored in the modem, opt-outs;
- :mod:`.recovery` - a silent modem: re-sync, soft reset, power cycle, dead;
- :mod:`.publisher` - the modem's state for people (status, page, panel);
- :mod:`.bookkeeping` - writes that wait until the modem is busy; :mod:`.pool` - which modems are free.
"""

from appliance.worker.loop import FULL_WAIT, POLL_INTERVAL, STUCK_AFTER, ModemWorker
from appliance.worker.pool import Pool

__all__ = ["FULL_WAIT", "POLL_INTERVAL", "STUCK_AFTER", "ModemWorker", "Pool"]
