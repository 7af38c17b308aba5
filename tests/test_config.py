import pytest

from appliance import config as configmod
from appliance.config import Config, ModemConfig
from appliance.errors import ConfigError

CONTRACT_EXAMPLE = """
data_dir = "/var/lib/smsgenie"
service_code = "YL08"        # recorded with every message
[modem]
port = "/dev/smsgenie-modem"
baudrate = 115200
sim_pin = ""                 # optional
"""


def test_the_documented_example_loads():
    cfg = configmod.parse(CONTRACT_EXAMPLE, "example.toml")
    assert cfg.data_dir == "/var/lib/smsgenie"
    assert cfg.service_code == "YL08"
    assert cfg.modem == ModemConfig(port="/dev/smsgenie-modem", baudrate=115200, sim_pin="", label="modem1")
    assert cfg.modems == (cfg.modem,)


@pytest.mark.parametrize("text,message", [
    ('servce_code = "x"', "unknown key 'servce_code' (did you mean 'service_code'?)"),
    ('[modem]\nprot = "/dev/x"', "unknown key 'modem.prot' (did you mean 'modem.port'?)"),
    ('[modem]\nbaudrate = "115200"', "'modem.baudrate' must be an integer, not str '115200'"),
    ("[modem]\nbaudrate = true", "'modem.baudrate' must be an integer, not bool True"),
    ('modem = "x"', "'modem' must be a [modem] table"),
    ('[modem]\nsim_pin = "12"', "'modem.sim_pin' must be 4 to 8 digits"),
    ("[queue]\nmax_attempts = 0", "'queue.max_attempts' must be at least 1"),
    ('[fancy]\nx = 1', "unknown key 'fancy'"),
    ("data_dir = ", "not valid TOML"),
    ('[web]\nlisten = "127.0.0.1:80800"', "'web.listen' has the port 80800, and ports go from 1 to 65535"),
    ('[web]\nlisten = "127.0.0.1"', "'web.listen' must be host:port"),
])
def test_bad_keys_and_types_are_refused_by_name(text, message):
    with pytest.raises(ConfigError) as info:
        configmod.parse(text, "/etc/smsgenie/config.toml")
    assert message in str(info.value)
    assert str(info.value).startswith("/etc/smsgenie/config.toml")


def test_numbers_given_as_integers_are_fine_for_seconds():
    cfg = configmod.parse("[queue]\nretry_base_seconds = 10\nretry_cap_seconds = 60")
    assert cfg.queue.retry_base_seconds == 10.0


def test_missing_file(tmp_path):
    assert configmod.load(tmp_path / "none.toml", explicit=False).data_dir == configmod.DEFAULT_DATA_DIR
    with pytest.raises(ConfigError, match="does not exist"):
        configmod.load(tmp_path / "none.toml", explicit=True)


def test_dump_round_trips(tmp_path):
    cfg = Config(data_dir="/d", service_code='Y"L', modems=(ModemConfig(port="/dev/ttyUSB2", sim_pin="1234",
                                                                          label="counter", per_hour=50),))
    path = tmp_path / "c.toml"
    path.write_text(configmod.dump(cfg))
    assert configmod.load(path) == cfg


def test_a_pool_of_modems():
    cfg = configmod.parse("""
[[modem]]
port = "/dev/ttyUSB2"
carrier = "中国移动"
per_hour = 150

[[modem]]
port = "/dev/ttyUSB6"
label = "unicom-sim"
carrier = "unicom"
power_gpio = 26
""", "pool.toml")
    assert [(m.label, m.port, m.carrier) for m in cfg.modems] == [
        ("modem1", "/dev/ttyUSB2", "China Mobile"), ("unicom-sim", "/dev/ttyUSB6", "China Unicom")]
    assert cfg.modems[0].per_hour == 150 and cfg.modems[1].per_hour is None and cfg.modems[1].power_gpio == 26


@pytest.mark.parametrize("text,message", [
    ('[[modem]]\nport = "/a"\n[[modem]]\nport = "/a"', "two modems have the port '/a'"),
    ('[[modem]]\nport = "/a"\n[[modem]]\nport = "/b"\nper_hour = -1', "'modem[2].per_hour' must be 0"),
    ('[[modem]]\nport = "/a"\nprot = "/b"', "unknown key 'modem.prot'"),
    ('modem = [1, 2]', "must be a [modem] table"),
])
def test_pool_mistakes_are_named(text, message):
    with pytest.raises(ConfigError) as info:
        configmod.parse(text, "pool.toml")
    assert message in str(info.value)


def test_dump_round_trips_a_pool(tmp_path):
    cfg = Config(modems=(ModemConfig(port="/a", label="a", carrier="China Mobile"),
                         ModemConfig(port="/b", label="b", min_gap_seconds=1.5)))
    path = tmp_path / "c.toml"
    path.write_text(configmod.dump(cfg))
    assert configmod.load(path).modems == cfg.modems
