"""The box's config file (TOML), read once at start and passed explicitly.

A key we do not know, or a value of the wrong type, stops the start with the
key's name and the file, rather than being ignored: a typo in ``sim_pin`` or
``port`` would otherwise leave the box quietly not sending.

Example::

    data_dir = "/var/lib/smsgenie"
    service_code = "YL08"        # recorded with every message

    [modem]
    port = "/dev/smsgenie-modem"
    baudrate = 115200
    sim_pin = ""                 # optional

    [queue]
    max_attempts = 5             # transient failures before a message is failed
    retry_base_seconds = 30      # first retry delay; doubles each time
    retry_cap_seconds = 1800     # longest delay between retries
    validity_hours = 24          # how long the network keeps trying to deliver

    [vendor]
    public_key = "ed25519:..."   # the line from the vendor's vendor.pub
    keywords = ""                # the vendor's signed forbidden-word list: imported at start when newer

    [web]
    listen = "0.0.0.0:8080"      # the LAN page; "" for none
    tls = "auto"                 # HTTPS with the box's own certificate; "off" for plain HTTP
    redirect_from = ""           # e.g. "0.0.0.0:80": plain HTTP there sends browsers to the page

    [panel]
    display = "ssd1306"          # or sh1106, emulator, none
    buttons = "gpio"             # or mock, none
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, get_type_hints

from appliance.errors import ConfigError
from appliance.files import not_permitted
from hw.pins import CHOICES

DEFAULT_CONFIG = "/etc/smsgenie/config.toml"
DEFAULT_DATA_DIR = "/var/lib/smsgenie"


@dataclass(frozen=True)
class ModemConfig:
    port: str = "/dev/smsgenie-modem"
    baudrate: int = 115200
    sim_pin: str = ""
    command_timeout: float = 5.0
    send_timeout: float = 60.0
    label: str = ""
    """A name for this modem in status and logs; "modem1", "modem2"... by default."""
    carrier: str = ""
    """The SIM's carrier (China Mobile / Unicom / Telecom / Broadnet), for routing and default caps."""
    per_minute: int | None = None
    per_hour: int | None = None
    per_day: int | None = None
    distinct_per_day: int | None = None
    min_gap_seconds: float | None = None
    jitter_seconds: float | None = None
    """Caps and pacing; a key left out takes the carrier's default (docs/sending-policy.md); 0 = no cap."""
    power_gpio: int = -1
    """GPIO (BCM) that switches the modem's power, for the last step of hung-modem recovery; -1 = none."""
    power_active_high: bool = True
    power_key_gpio: int = -1
    """GPIO (BCM) wired to the modem's PWRKEY instead (Waveshare SIM7600 HAT: 6); -1 = none."""
    power_key_active_high: bool = True


@dataclass(frozen=True)
class QueueConfig:
    max_attempts: int = 5
    retry_base_seconds: float = 30.0
    retry_cap_seconds: float = 1800.0
    validity_hours: float = 24.0


@dataclass(frozen=True)
class VendorConfig:
    public_key: str = ""
    """The line from the vendor's vendor.pub; top-up codes must be signed by its key."""
    keywords: str = ""
    """A signed forbidden-word list from the vendor (the image installs one): imported at start when it is
    newer than the one the box has (appliance/keywords.py)."""


@dataclass(frozen=True)
class WebConfig:
    listen: str = "0.0.0.0:8080"
    """host:port the LAN page is served on by `smsgenie run`; empty for no web page."""
    max_upload_mb: int = 100  # a million-row CSV is about 30 MB
    tls: str = "auto"
    """auto: the page is HTTPS, with a certificate from the box's own CA (appliance/certs.py);
    off: plain HTTP (the demo, or a box behind a proxy that does TLS)."""
    redirect_from: str = ""
    """host:port where plain HTTP answers only with a redirect to the HTTPS page (and the CA
    certificate for download); empty for none."""

    @property
    def https(self) -> bool:
        return bool(self.listen) and self.tls == "auto"


PANEL_DISPLAYS = ("none", "ssd1306", "sh1106", "emulator")
PANEL_BUTTONS = ("none", "gpio", "mock")
PIN_FACTORIES = CHOICES


@dataclass(frozen=True)
class PanelConfig:
    """The counter panel: a 128x64 I2C OLED and four buttons (docs/hardware.md)."""

    display: str = "none"
    """ssd1306 or sh1106 (the OLED's controller), emulator (simulated: frames to oled.png), none."""
    i2c_port: int = 1
    i2c_address: int = 0x3C
    rotate: int = 0
    """0-3: quarter turns, for a panel mounted upside down (2)."""
    buttons: str = "none"
    """gpio (real buttons to ground), mock (simulated: the web page and the demo's keyboard), none."""
    pin_factory: str = "auto"
    """The GPIO library for the buttons and the modem's power pin (hw/pins.py): auto (lgpio, then RPi.GPIO),
    lgpio, rpigpio, mock."""
    pin_up: int = 17
    pin_down: int = 27
    pin_ok: int = 22
    pin_back: int = 23
    """BCM GPIO numbers of the four buttons."""
    font: str = ""
    """A CJK font file; empty: WenQuanYi Zen Hei, then GNU Unifont, from the Debian packages."""
    dim_seconds: float = 60.0
    """Idle time before the panel dims (an OLED wears where it is lit); 0 = never."""
    off_seconds: float = 1800.0
    """Idle time before it goes dark until a button or an alert; 0 = never."""


@dataclass(frozen=True)
class Config:
    data_dir: str = DEFAULT_DATA_DIR
    service_code: str = ""
    modems: tuple[ModemConfig, ...] = (ModemConfig(),)
    """From ``[modem]`` (one modem) or ``[[modem]]`` (a pool), in the order written."""
    queue: QueueConfig = field(default_factory=QueueConfig)
    vendor: VendorConfig = field(default_factory=VendorConfig)
    web: WebConfig = field(default_factory=WebConfig)
    panel: PanelConfig = field(default_factory=PanelConfig)
    source: str = field(default="(defaults)", compare=False)
    """Where this config came from, for error messages; not a key in the file."""

    def __post_init__(self) -> None:
        if not self.modems:
            raise ConfigError(f"{self.source}: at least one [modem] is needed")
        named = tuple(dataclasses.replace(m, label=m.label or f"modem{i}", carrier=normalise_carrier(m.carrier))
                      for i, m in enumerate(self.modems, start=1))
        object.__setattr__(self, "modems", named)

    @property
    def modem(self) -> ModemConfig:
        """The first (often the only) modem."""
        return self.modems[0]

    def with_data_dir(self, data_dir: str | os.PathLike | None) -> "Config":
        return dataclasses.replace(self, data_dir=str(data_dir)) if data_dir else self


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _check(value: Any, expected: Any, key: str, source: str) -> Any:
    if isinstance(expected, types.UnionType):  # "int | None": TOML has no null, so the value is the int
        expected = next(t for t in typing.get_args(expected) if t is not type(None))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return value
    got = type(value).__name__
    raise ConfigError(f"{source}: '{key}' must be {_TYPE_NAMES.get(expected, expected.__name__)}, "
                      f"not {got} {value!r}")


def _build(cls: type, table: dict, prefix: str, source: str) -> Any:
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name not in ("source", "modems")]
    if cls is Config:
        names.append("modem")
    kwargs = {}
    for key, value in table.items():
        full = f"{prefix}{key}"
        if cls is Config and key == "modem":
            kwargs["modems"] = _build_modems(value, source)
            continue
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else f"; known keys: {', '.join(names)}"
            raise ConfigError(f"{source}: unknown key '{full}'{hint}")
        expected = hints[key]
        if dataclasses.is_dataclass(expected):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{full}' must be a [{full}] table")
            kwargs[key] = _build(expected, value, f"{full}.", source)
        else:
            kwargs[key] = _check(value, expected, full, source)
    obj = cls(**kwargs)
    _validate(obj, prefix, source)
    return obj


def _build_modems(value: Any, source: str) -> tuple[ModemConfig, ...]:
    """``[modem]`` is one modem; ``[[modem]]`` repeated is a pool."""
    tables = [value] if isinstance(value, dict) else value
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{source}: 'modem' must be a [modem] table, or [[modem]] tables for a pool")
    modems = []
    for i, table in enumerate(tables, start=1):
        prefix = "modem." if len(tables) == 1 else f"modem[{i}]."
        m = _build(ModemConfig, table, prefix, source)
        modems.append(dataclasses.replace(m, label=m.label or f"modem{i}"))
    for attr in ("label", "port"):
        seen = [getattr(m, attr) for m in modems]
        dup = next((v for v in seen if seen.count(v) > 1), None)
        if dup:
            raise ConfigError(f"{source}: two modems have the {attr} {dup!r}; each needs its own")
    return tuple(modems)


CARRIER_NAMES = {
    "China Mobile": ("china mobile", "mobile", "cmcc", "中国移动", "移动"),
    "China Unicom": ("china unicom", "unicom", "cucc", "中国联通", "联通"),
    "China Telecom": ("china telecom", "telecom", "ctcc", "中国电信", "电信"),
    "China Broadnet": ("china broadnet", "broadnet", "cbn", "中国广电", "广电"),
}


def normalise_carrier(name: str) -> str:
    """'mobile', '中国移动', 'China Mobile' -> 'China Mobile'; '' stays '' (unknown); others unchanged."""
    key = name.strip().lower()
    for canonical, names in CARRIER_NAMES.items():
        if key in names:
            return canonical
    return name.strip()


def _validate(obj: Any, prefix: str, source: str) -> None:
    def bad(key: str, why: str) -> ConfigError:
        return ConfigError(f"{source}: '{prefix}{key}' {why}")

    if isinstance(obj, ModemConfig):
        if obj.baudrate <= 0:
            raise bad("baudrate", "must be a positive number such as 115200")
        if obj.sim_pin and not (obj.sim_pin.isdigit() and 4 <= len(obj.sim_pin) <= 8):
            raise bad("sim_pin", "must be 4 to 8 digits, or empty for a SIM without PIN")
        if not obj.port:
            raise bad("port", "must name the modem's serial port, e.g. /dev/smsgenie-modem")
        for key in ("command_timeout", "send_timeout"):
            if getattr(obj, key) <= 0:
                raise bad(key, "must be more than 0 seconds")
        for key in ("per_minute", "per_hour", "per_day", "distinct_per_day", "min_gap_seconds", "jitter_seconds"):
            if getattr(obj, key) is not None and getattr(obj, key) < 0:
                raise bad(key, "must be 0 (no cap) or more")
        if obj.power_gpio >= 0 and obj.power_key_gpio >= 0:
            raise bad("power_key_gpio", "and power_gpio cannot both be set: a HAT switches the modem's power "
                                        "(Sixfab: power_gpio = 26) or has a power key (Waveshare: power_key_gpio = 6)")
    if isinstance(obj, QueueConfig):
        if obj.max_attempts < 1:
            raise bad("max_attempts", "must be at least 1")
        if obj.retry_base_seconds <= 0 or obj.retry_cap_seconds < obj.retry_base_seconds:
            raise bad("retry_cap_seconds", "must be at least retry_base_seconds, and both more than 0")
        if not 5 / 60 <= obj.validity_hours <= 63 * 7 * 24:
            raise bad("validity_hours", "must be between 5 minutes (0.0834) and 63 weeks")
    if isinstance(obj, Config) and len(obj.service_code) > 32:
        raise bad("service_code", "must be at most 32 characters")
    if isinstance(obj, WebConfig):
        _validate_web(obj, bad)
    if isinstance(obj, PanelConfig):
        _validate_panel(obj, bad)
    if isinstance(obj, VendorConfig) and obj.public_key:
        from appliance.vendor import parse_public_key  # noqa: PLC0415 - crypto only when a key is set

        try:
            parse_public_key(obj.public_key)
        except ValueError as exc:
            raise bad("public_key", f"is not usable: {exc}") from None


def _validate_web(obj: WebConfig, bad: Callable[[str, str], ConfigError]) -> None:
    for key, example in (("listen", "0.0.0.0:8080"), ("redirect_from", "0.0.0.0:80")):
        value = getattr(obj, key)
        if value and (":" not in value or not value.rsplit(":", 1)[1].isdigit()):
            raise bad(key, f"must be host:port, e.g. {example}, or empty for none")
        if value and not 0 <= int(value.rsplit(":", 1)[1]) <= 65535:
            raise bad(key, f"has the port {value.rsplit(':', 1)[1]}, and ports go from 1 to 65535 "
                           f"(e.g. {example})")
    if obj.tls not in ("auto", "off"):
        raise bad("tls", 'must be "auto" (HTTPS with the box\'s own certificate) or "off" (plain HTTP)')
    if obj.redirect_from and not obj.https:
        raise bad("redirect_from", 'sends browsers to an HTTPS page: it needs listen set and tls = "auto"')
    if obj.max_upload_mb < 1:
        raise bad("max_upload_mb", "must be at least 1")


def _validate_panel(obj: PanelConfig, bad: Callable[[str, str], ConfigError]) -> None:
    if obj.display not in PANEL_DISPLAYS:
        raise bad("display", f"must be one of {', '.join(PANEL_DISPLAYS)}")
    if obj.buttons not in PANEL_BUTTONS:
        raise bad("buttons", f"must be one of {', '.join(PANEL_BUTTONS)}")
    if obj.pin_factory not in PIN_FACTORIES:
        raise bad("pin_factory", f"must be one of {', '.join(PIN_FACTORIES)}")
    if obj.rotate not in (0, 1, 2, 3):
        raise bad("rotate", "must be 0, 1, 2 or 3 (quarter turns)")
    if not 0x03 <= obj.i2c_address <= 0x77:
        raise bad("i2c_address", "must be a 7-bit I2C address such as 0x3C")
    pins = [obj.pin_up, obj.pin_down, obj.pin_ok, obj.pin_back]
    if len(set(pins)) != 4 or not all(0 <= p <= 27 for p in pins):
        raise bad("pin_up", "the four button pins must be different BCM GPIO numbers from 0 to 27")
    if obj.dim_seconds < 0 or obj.off_seconds < 0:
        raise bad("dim_seconds", "must be 0 (never) or more")


def parse(text: str, source: str = "config") -> Config:
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    return dataclasses.replace(_build(Config, table, "", source), source=source)


def load(path: str | os.PathLike | None = None, *, explicit: bool = True) -> Config:
    """Read the config at ``path``.

    With ``explicit=False`` (the path is only the default), a missing file
    means the built-in defaults; with ``explicit=True`` it is an error.
    """
    path = Path(path or DEFAULT_CONFIG)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if not explicit:
            return Config(source=f"{path} (not present; defaults)")
        raise ConfigError(f"config file {path} does not exist") from None
    except PermissionError:
        raise ConfigError(f"cannot read config file {path}: " + not_permitted(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    return parse(text, str(path))


def dump(config: Config) -> str:
    """The config as TOML text (for the demo, which writes one for the daemon)."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    def table(obj: Any) -> list[str]:
        return [f"{f.name} = {value(getattr(obj, f.name))}" for f in dataclasses.fields(obj)
                if getattr(obj, f.name) is not None]

    lines = [f"data_dir = {value(config.data_dir)}", f"service_code = {value(config.service_code)}"]
    for m in config.modems:
        lines += ["", "[modem]" if len(config.modems) == 1 else "[[modem]]", *table(m)]
    for section in ("queue", "vendor", "web", "panel"):
        lines += ["", f"[{section}]", *table(getattr(config, section))]
    return "\n".join(lines) + "\n"
