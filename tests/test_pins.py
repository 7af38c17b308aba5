"""Which GPIO library drives the pins (hw/pins.py): the stated order, the config key, and where it is shown;
and which a release installs on a board (appliance/board.py)."""

from __future__ import annotations

import dataclasses
import types

import pytest

from appliance import board
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
    assert "Cannot determine SOC peripheral base address" in said and "not a Pi 5" in said
    assert "rpigpio is installed but drives a Pi 3, 4 or Zero 2 W" in said and "install python3" not in said
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
    from click.testing import CliRunner

    from appliance.config import PanelConfig
    from appliance.status import status
    from appliance.ui import screens
    from smsgenie.cli import cli
    from tests.conftest import modem_statuses, running_daemon, wait_for

    config = dataclasses.replace(config, panel=PanelConfig(buttons="gpio", pin_factory="mock"))
    with running_daemon(config) as daemon:
        wait_for(lambda: modem_statuses(queue).get(sim.port, {}).get("state") == "registered", 10)
        assert daemon.gpio == "mock" and daemon.buttons.simulated and daemon.panel.gpio == "mock"
        assert status(config, queue)["daemon"]["gpio"] == "mock"
        about = screens.about(screens.Snapshot(gpio=daemon.panel.gpio, version="0.1.0"), "zh_CN")
        assert about.lines == ("SMS Genie 0.1.0", "GPIO 库: mock")
        assert "GPIO:   mock (" in CliRunner().invoke(cli, ["--data-dir", config.data_dir, "status"]).output
    # stopped: what the last daemon used, said as such
    assert "GPIO:   mock when the daemon last ran" in \
        CliRunner().invoke(cli, ["--data-dir", config.data_dir, "status"]).output


# --- which pin libraries a release installs on a board (appliance/board.py: install.sh and updates) ---


def model_file(tmp_path, text):
    path = tmp_path / "model"
    path.write_bytes(text.encode() + b"\0")  # the device tree's string ends with a NUL
    return path


@pytest.mark.parametrize("model, takes", [
    ("Raspberry Pi 4 Model B Rev 1.4", True),
    ("Raspberry Pi 3 Model B Plus Rev 1.3", True),
    ("Raspberry Pi Zero 2 W Rev 1.0", True),
    ("Raspberry Pi Compute Module 4 Rev 1.0", True),
    ("Raspberry Pi 5 Model B Rev 1.0", False),
    ("Raspberry Pi 500 Rev 1.0", False),
    ("Raspberry Pi Compute Module 5 Rev 1.0", False),
    ("", True),  # no device tree: an image being built for every model
])
def test_rpi_gpio_goes_on_every_pi_but_the_pi_5_family(tmp_path, model, takes):
    path = model_file(tmp_path, model)
    assert board.model(path) == model
    assert board.takes_rpi_gpio(board.model(path)) is takes
    extra, requirement = board.plan(machine="aarch64", model_path=path)
    assert extra == ("pi" if takes else "pi5")
    assert bool(requirement) is takes


def test_the_plan_names_pyproject_s_requirement_and_nothing_off_a_pi(tmp_path):
    extra, requirement = board.plan(machine="aarch64", model_path=tmp_path / "none")
    assert extra == "pi" and requirement.startswith("RPi.GPIO") and ">=0.7.1" in requirement
    assert board.plan(machine="x86_64", model_path=tmp_path / "none") == ("", "")


def test_an_update_takes_rpi_gpio_only_where_the_box_built_its_wheel(tmp_path):
    """An update installs with no network and no compiler: RPi.GPIO only from the box's own wheelhouse."""
    pi4, pi5 = model_file(tmp_path, "Raspberry Pi 4 Model B Rev 1.4"), tmp_path / "pi5"
    pi5.write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\0")
    prefix = tmp_path / "opt"
    assert board.extras(prefix, machine="x86_64", model_path=pi4) == ""
    assert board.extras(prefix, machine="aarch64", model_path=pi4) == "pi5"  # installed before the wheelhouse
    (prefix / board.WHEELHOUSE).mkdir(parents=True)
    (prefix / board.WHEELHOUSE / "lgpio-0.2.2.0-cp311-cp311-manylinux_2_34_aarch64.whl").write_bytes(b"")
    assert board.extras(prefix, machine="aarch64", model_path=pi4) == "pi5"
    (prefix / board.WHEELHOUSE / "RPi.GPIO-0.7.1-cp311-cp311-linux_aarch64.whl").write_bytes(b"")
    assert board.extras(prefix, machine="aarch64", model_path=pi4) == "pi"
    assert board.extras(prefix, machine="armv7l", model_path=pi4) == "pi"
    assert board.extras(prefix, machine="aarch64", model_path=pi5) == "pi5"

