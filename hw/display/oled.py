"""A real SSD1306 or SH1106 128x64 OLED on the Pi's I2C bus (luma.oled)."""

from __future__ import annotations

from hw.errors import DisplayError, DisplayNotFound


def open_oled(kind: str, *, port: int = 1, address: int = 0x3C, rotate: int = 0):
    """Open the panel; errors say what the technician should check."""
    from luma.core.error import DeviceNotFoundError, DevicePermissionError  # noqa: PLC0415
    from luma.core.interface.serial import i2c  # noqa: PLC0415
    from luma.oled.device import sh1106, ssd1306  # noqa: PLC0415

    device_class = {"ssd1306": ssd1306, "sh1106": sh1106}.get(kind)
    if device_class is None:
        raise DisplayError(f"unknown OLED controller {kind!r}: use ssd1306 or sh1106 ([panel] display)")
    try:
        return device_class(i2c(port=port, address=address), width=128, height=64, rotate=rotate)
    except DeviceNotFoundError as exc:
        raise DisplayNotFound(f"no I2C bus {port} ({exc}): enable I2C (raspi-config > Interface Options > "
                              f"I2C) and reboot") from exc
    except DevicePermissionError as exc:
        raise DisplayError(f"may not open I2C bus {port} ({exc}): add the service user to the 'i2c' "
                           f"group") from exc
    except OSError as exc:  # errno 121 (remote I/O): nothing acknowledged the address
        raise DisplayNotFound(f"no OLED answers at 0x{address:02X} on I2C bus {port} ({exc}): check the four "
                              f"wires (VCC 3.3V, GND, SDA GPIO2, SCL GPIO3) and the address with "
                              f"'i2cdetect -y {port}' (0x3C or 0x3D)") from exc
