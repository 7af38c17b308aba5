"""The counter panel's 128x64 display.

The interface is luma.core's own device (``display(image)``, ``contrast``,
``hide``/``show``, ``size``, ``mode``, ``cleanup``): the same drawing code
runs on a real SSD1306 or SH1106 OLED on I2C (:mod:`hw.display.oled`) and on
luma.emulator's capture device (:mod:`hw.display.emulated`), which keeps
each frame as a PNG so a person (the demo, the web page's /device) and the
tests can see exactly what the panel shows.
"""

from __future__ import annotations

from pathlib import Path

WIDTH, HEIGHT = 128, 64


def open_display(kind: str, *, data_dir: str | Path, i2c_port: int = 1, i2c_address: int = 0x3C,
                 rotate: int = 0):
    """A luma device for ``kind`` ("ssd1306", "sh1106" or "emulator"), or None for "none"."""
    if kind == "none":
        return None
    if kind == "emulator":
        from hw.display.emulated import EmulatedOled  # noqa: PLC0415 - pygame only when simulated

        return EmulatedOled(Path(data_dir) / EMULATED_FRAME, rotate=rotate)
    from hw.display.oled import open_oled  # noqa: PLC0415 - luma.oled and smbus2 only on a box with a panel

    return open_oled(kind, port=i2c_port, address=i2c_address, rotate=rotate)


#: Where the emulated panel's current frame is written, in the data directory.
EMULATED_FRAME = "oled.png"
