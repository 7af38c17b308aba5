"""The demo's terminal keys as the counter panel's buttons: arrows, Enter, Esc; 'h' holds Back."""

from __future__ import annotations

import os
import sys
import threading

from appliance.ui.link import PanelLink


class KeyboardButtons:
    """Reads the terminal's keys and presses the panel's buttons through its :class:`PanelLink`.

    The terminal goes into cbreak mode (keys arrive one by one, output is untouched) and is
    put back when the demo ends. Nothing happens when stdin is not a terminal.
    """

    KEYS = {b"\x1b[A": "up", b"\x1b[B": "down", b"\r": "ok", b"\n": "ok", b"\x1b": "back", b"\x7f": "back"}

    def __init__(self, panel: PanelLink):
        self.panel = panel
        self._saved = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> bool:
        if not sys.stdin.isatty():
            return False
        import termios  # noqa: PLC0415 - POSIX terminals only
        import tty  # noqa: PLC0415

        fd = sys.stdin.fileno()
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        self._thread = threading.Thread(target=self._read, args=(fd,), name="keyboard", daemon=True)
        self._thread.start()
        return True

    def _read(self, fd: int) -> None:
        import select  # noqa: PLC0415

        while not self._stop.is_set():
            try:
                if not select.select([fd], [], [], 0.2)[0]:
                    continue
                key = os.read(fd, 1)
                if key == b"\x1b" and select.select([fd], [], [], 0.05)[0]:
                    key += os.read(fd, 2)  # an arrow: ESC [ A
            except OSError:  # the terminal went away
                return
            if key in (b"h", b"H"):
                self.panel.press("back", hold=True)
            elif key in self.KEYS:
                self.panel.press(self.KEYS[key])

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._saved is not None:
            import termios  # noqa: PLC0415

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._saved)
            self._saved = None
