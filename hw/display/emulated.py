"""The simulated OLED: luma.emulator's capture device, keeping the current frame as one PNG.

luma.emulator's ``capture`` writes a numbered file per frame; a panel that
redraws every second would fill the disk, and a reader could catch a file
half-written. So each frame goes to a temporary name and is renamed over
``oled.png`` (scaled up, dimming applied, as a person would see it); the
last image drawn is also kept, with a frame counter, for tests. The drawing
code is the same as on the Pi: only the device differs.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # pygame greets stdout on import otherwise

from luma.emulator.device import capture  # noqa: E402

from hw.display import HEIGHT, WIDTH  # noqa: E402


class EmulatedOled(capture):
    """A 128x64 monochrome panel whose frames are PNG files (``path``), scaled ``scale`` times."""

    def __init__(self, path: str | os.PathLike, *, rotate: int = 0, scale: int = 3):
        self.path = Path(path)
        self._tmp = self.path.with_name(f".{self.path.name}.tmp.png")
        super().__init__(width=WIDTH, height=HEIGHT, rotate=rotate, mode="1", transform="identity",
                         scale=scale, file_template=str(self._tmp))
        self.frames = 0
        """How many frames were shown; the web page waits for it to change."""
        self.image = None
        """The last image drawn (the panel's own 128x64 pixels, before dimming): what tests compare."""
        self._changed = threading.Condition()

    def display(self, image) -> None:
        self.image = image.copy()
        super().display(image)
        os.replace(self._tmp, self.path)
        with self._changed:
            self.frames += 1
            self._changed.notify_all()

    def wait_for_frame(self, after: int, timeout: float) -> int:
        """Block until a frame newer than ``after`` is shown, or ``timeout`` passes; returns the count."""
        with self._changed:
            self._changed.wait_for(lambda: self.frames > after, timeout)
            return self.frames

    @property
    def brightness(self) -> float:
        """0.0 (off) to 1.0, as set by ``contrast``/``hide``/``show``."""
        return self._contrast
