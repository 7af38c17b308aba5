"""Which GPIO library drives the pins (hw/pins.py): the stated order, the config key, and where it is shown."""

from __future__ import annotations

import dataclasses
import types

import pytest

from hw.pins import PinFactoryError, open_pin_factory


class FakeFactory:
    """A pin factory class that loads."""


def loader(*, lgpio=None, rpigpio=None):
    """An importer for open_pin_factory: each library given as a factory class, an exception, or missing."""
    modules = {"gpiozero.pins.lgpio": ("LGPIOFactory", lgpio), "gpiozero.pins.rpigpio": ("RPiGPIOFactory", rpigpio)}

    def load(name):
        if name not in modules:
            import importlib

            return importlib.import_module(name)
        cls_name, what = modules[name]
        if what is None:
            raise ModuleNotFoundError(f"No module named {name.rsplit('.', 1)[-1]!r}")
        if isinstance(what, Exception):
            def refuse():
                raise what
            return types.SimpleNamespace(**{cls_name: refuse})
        return types.SimpleNamespace(**{cls_name: what})
    return load


def test_auto_takes_lgpio_first():
    name, factory = open_pin_factory("auto", load=loader(lgpio=FakeFactory, rpigpio=FakeFactory))
    assert name == "lgpio" and isinstance(factory, FakeFactory)


def test_auto_falls_back_to_rpi_gpio_where_lgpio_is_missing():
    name, factory = open_pin_factory("auto", load=loader(rpigpio=FakeFactory))
    assert name == "rpigpio" and isinstance(factory, FakeFactory)


def test_rpi_gpio_on_a_pi_5_says_so_and_what_to_install():
    pi5 = RuntimeError("Cannot determine SOC peripheral base address")
    with pytest.raises(PinFactoryError) as caught:
        open_pin_factory("rpigpio", load=loader(lgpio=FakeFactory, rpigpio=pi5))
    said = str(caught.value)
    assert "Cannot determine SOC peripheral base address" in said and "not on a Pi 5" in said
    assert "lgpio" not in said.split(":")[0]  # the one asked for was tried, not the other


def test_no_library_at_all_names_both_and_the_config_key():
    with pytest.raises(PinFactoryError) as caught:
        open_pin_factory("auto", load=loader())
    said = str(caught.value)
    assert "lgpio: ModuleNotFoundError" in said and "rpigpio: ModuleNotFoundError" in said
    assert "python3-lgpio" in said and "python3-rpi.gpio" in said and "[panel] pin_factory" in said


def test_mock_is_gpiozeros_mock_factory_and_an_unknown_name_is_refused():
    from gpiozero.pins.mock import MockFactory

    name, factory = open_pin_factory("mock")
    assert name == "mock" and isinstance(factory, MockFactory)
    with pytest.raises(PinFactoryError, match="not one of auto, lgpio, rpigpio, mock"):
        open_pin_factory("pigpio")


def test_the_config_key_defaults_to_auto_and_refuses_a_typo(tmp_path):
    from appliance import config as configmod
    from appliance.errors import ConfigError

    path = tmp_path / "c.toml"
    path.write_text('[panel]\nbuttons = "gpio"\n')
    assert configmod.load(path).panel.pin_factory == "auto"
    path.write_text('[panel]\npin_factory = "rpi-gpio"\n')
    with pytest.raises(ConfigError, match="pin_factory.*auto, lgpio, rpigpio, mock"):
        configmod.load(path)


def test_the_daemon_drives_its_buttons_with_the_chosen_library_and_says_which(sim, config, queue):
    """[panel] buttons = "gpio" with pin_factory = "mock": the Button code of a real box on mock pins; the
    choice reaches the panel's About screen and `smsgenie status`."""
    from appliance.config import PanelConfig
    from appliance.status import status
    from appliance.ui import screens
    from tests.conftest import modem_statuses, running_daemon, wait_for

    config = dataclasses.replace(config, panel=PanelConfig(buttons="gpio", pin_factory="mock"))
    with running_daemon(config) as daemon:
        wait_for(lambda: modem_statuses(queue).get(sim.port, {}).get("state") == "registered", 10)
        assert daemon.gpio == "mock" and daemon.buttons.simulated and daemon.panel.gpio == "mock"
        assert status(config, queue)["daemon"]["gpio"] == "mock"
        about = screens.about(screens.Snapshot(gpio=daemon.panel.gpio, version="0.1.0"), "zh_CN")
        assert about.lines == ("SMS Genie 0.1.0", "GPIO 库: mock")
