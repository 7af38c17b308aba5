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
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from appliance.errors import ConfigError

DEFAULT_CONFIG = "/etc/smsgenie/config.toml"
DEFAULT_DATA_DIR = "/var/lib/smsgenie"


@dataclass(frozen=True)
class ModemConfig:
    port: str = "/dev/smsgenie-modem"
    baudrate: int = 115200
    sim_pin: str = ""
    command_timeout: float = 5.0
    send_timeout: float = 60.0


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


@dataclass(frozen=True)
class Config:
    data_dir: str = DEFAULT_DATA_DIR
    service_code: str = ""
    modem: ModemConfig = field(default_factory=ModemConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    vendor: VendorConfig = field(default_factory=VendorConfig)
    source: str = field(default="(defaults)", compare=False)
    """Where this config came from, for error messages; not a key in the file."""

    def with_data_dir(self, data_dir: str | os.PathLike | None) -> "Config":
        return dataclasses.replace(self, data_dir=str(data_dir)) if data_dir else self


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _check(value: Any, expected: type, key: str, source: str) -> Any:
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return value
    got = type(value).__name__
    raise ConfigError(f"{source}: '{key}' must be {_TYPE_NAMES.get(expected, expected.__name__)}, "
                      f"not {got} {value!r}")


def _build(cls: type, table: dict, prefix: str, source: str) -> Any:
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name != "source"]
    kwargs = {}
    for key, value in table.items():
        full = f"{prefix}{key}"
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
    if isinstance(obj, QueueConfig):
        if obj.max_attempts < 1:
            raise bad("max_attempts", "must be at least 1")
        if obj.retry_base_seconds <= 0 or obj.retry_cap_seconds < obj.retry_base_seconds:
            raise bad("retry_cap_seconds", "must be at least retry_base_seconds, and both more than 0")
        if not 5 / 60 <= obj.validity_hours <= 63 * 7 * 24:
            raise bad("validity_hours", "must be between 5 minutes (0.0834) and 63 weeks")
    if isinstance(obj, Config) and len(obj.service_code) > 32:
        raise bad("service_code", "must be at most 32 characters")
    if isinstance(obj, VendorConfig) and obj.public_key:
        from appliance.vendor import parse_public_key  # noqa: PLC0415 - crypto only when a key is set

        try:
            parse_public_key(obj.public_key)
        except ValueError as exc:
            raise bad("public_key", f"is not usable: {exc}") from None


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

    lines = [f"data_dir = {value(config.data_dir)}", f"service_code = {value(config.service_code)}"]
    for section in ("modem", "queue", "vendor"):
        lines.append(f"\n[{section}]")
        for f in dataclasses.fields(getattr(config, section)):
            lines.append(f"{f.name} = {value(getattr(getattr(config, section), f.name))}")
    return "\n".join(lines) + "\n"
