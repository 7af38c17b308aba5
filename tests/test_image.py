"""The image's own scripts, run for real where this machine allows.

datapart runs against a disk image on a loop device (root only): the data
partition is grown without losing a byte of what it holds, created when the
card has none, and refused with a clear message when there is no room.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from appliance import config as configmod

pytestmark = [pytest.mark.system, pytest.mark.xdist_group("loop-devices")]  # one worker: loop devices are few

ROOT = Path(__file__).resolve().parent.parent
FILES = ROOT / "image-build/stage-smsgenie/00-smsgenie/files"
DATAPART = FILES / "rootfs/opt/smsgenie/lib/datapart"
ADD_DATA = ROOT / "image-build/add-data-partition"
TOOLS = ("sfdisk", "losetup", "partx", "mkfs.ext4", "debugfs", "blkid", "lsblk", "resize2fs")


def run(*cmd, check=True, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, check=check, **kw)


def loop_devices_work() -> str:
    if os.geteuid() != 0:
        return "needs root (loop devices)"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"missing {' '.join(missing)} (Debian: fdisk, e2fsprogs, util-linux)"
    return ""


needs_loop = pytest.mark.skipif(bool(loop_devices_work()), reason=loop_devices_work() or "ok")


@pytest.fixture
def card(tmp_path):
    """A sparse 'SD card' on a loop device, laid out by an sfdisk script; yields (device, partitions)."""
    attached = []

    def make(layout: str, size_mib: int = 800):
        img = tmp_path / f"card{len(attached)}.img"
        with open(img, "wb") as f:
            f.truncate(size_mib * 1024 * 1024)
        run("sfdisk", "--quiet", str(img), input="label: dos\n" + layout)
        attach = run("losetup", "--find", "--show", "--partscan", str(img), check=False)
        if attach.returncode != 0:
            pytest.skip(f"no loop device here: {attach.stderr.strip()}")
        dev = attach.stdout.strip()
        attached.append(dev)
        run("partx", "-a", dev, check=False)
        parts = [p for p in run("lsblk", "-lnpo", "NAME", dev).stdout.split()[1:]]
        return dev, parts

    yield make
    for dev in attached:
        run("partx", "-d", dev, check=False)
        run("losetup", "-d", dev, check=False)


def fs_bytes(part: str) -> int:
    """The ext4 file system's size, from its superblock."""
    out = run("dumpe2fs", "-h", part).stdout
    field = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in out.splitlines() if ":" in line)}
    return int(field["Block count"]) * int(field["Block size"])


def block_size(part: str) -> int:
    """The ext4 file system's block size: 4096 on the data partition (image-build/add-data-partition says why:
    with 1 KiB blocks SQLite's WAL index on a full partition is SIGBUS)."""
    out = run("dumpe2fs", "-h", part).stdout
    return int(next(line.split(":")[1] for line in out.splitlines() if line.startswith("Block size:")))


def put_file(part: str, tmp_path: Path, name: str, data: bytes) -> None:
    src = tmp_path / "src"
    src.write_bytes(data)
    run("debugfs", "-w", "-R", f"write {src} {name}", part)


def get_file(part: str, name: str) -> bytes:
    return subprocess.run(["debugfs", "-R", f"cat {name}", part], capture_output=True, check=True).stdout


IMAGE_LAYOUT = "start=8192, size=64M, type=c\nsize=256M, type=83\nsize=64M, type=83\n"


@needs_loop
def test_datapart_grows_the_data_partition_over_the_card_keeping_its_files(card, tmp_path):
    dev, parts = card(IMAGE_LAYOUT)
    boot, root, data = parts
    run("mkfs.ext4", "-q", "-L", "rootfs", root)
    run("mkfs.ext4", "-q", "-L", "smsgenie-data", data)
    record = os.urandom(300_000)
    put_file(data, tmp_path, "smsgenie.db", record)
    before = fs_bytes(data)
    done = run(str(DATAPART), dev)
    assert "growing" in done.stderr
    after = fs_bytes(data)
    assert after > 400 * 1024 * 1024 > before  # 64 MiB -> the rest of the 800 MiB card
    assert get_file(data, "smsgenie.db") == record
    assert run("e2fsck", "-fn", data, check=False).returncode == 0
    assert run("blkid", "-s", "LABEL", "-o", "value", root).stdout.strip() == "rootfs"  # the root untouched
    again = run(str(DATAPART), dev)  # every boot: nothing more to do
    assert again.stderr == "" and fs_bytes(data) == after


@needs_loop
def test_datapart_creates_the_partition_in_free_space_after_the_root(card):
    dev, parts = card("start=8192, size=64M, type=c\nsize=256M, type=83\n")
    run("mkfs.ext4", "-q", "-L", "rootfs", parts[1])
    done = run(str(DATAPART), dev)
    assert "creating smsgenie-data" in done.stderr
    new = run("lsblk", "-lnpo", "NAME", dev).stdout.split()[1:]
    assert len(new) == 3
    assert run("blkid", "-s", "LABEL", "-o", "value", new[2]).stdout.strip() == "smsgenie-data"
    start = int(Path(f"/sys/class/block/{Path(new[2]).name}/start").read_text())
    assert start % 2048 == 0  # aligned, after the root
    assert fs_bytes(new[2]) > 400 * 1024 * 1024
    assert block_size(new[2]) == 4096


@needs_loop
def test_datapart_refuses_a_card_with_no_room_and_says_what_to_do(card):
    dev, parts = card("start=8192, size=64M, type=c\nstart=139264, type=83\n")  # the root fills the card
    done = run(str(DATAPART), dev, check=False)
    assert done.returncode == 1
    assert "leave at least 256 MiB unpartitioned" in done.stderr
    assert len(run("lsblk", "-lnpo", "NAME", dev).stdout.split()) == 3  # nothing was added


CMDLINE = "console=serial0,115200 console=tty1 root=PARTUUID=abcd-02 rootfstype=ext4 fsck.repair=yes rootwait"


def pigen_like_image(path: Path, mib: int = 400, cmdline: str = CMDLINE + " resize") -> None:
    """A FAT boot partition at 4 MiB with cmdline.txt, and a root to the end, like pi-gen's export."""
    with open(path, "wb") as f:
        f.truncate(mib * 1024 * 1024)
    run("sfdisk", "--quiet", str(path), input="label: dos\nstart=8192, size=64M, type=c\nstart=139264, type=83\n")
    boot = f"{path}@@{8192 * 512}"
    run("mformat", "-i", boot, "-F", "-v", "bootfs", "::")
    run("mcopy", "-i", boot, "-", "::cmdline.txt", input=cmdline + "\n")


needs_image_tools = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("sfdisk", "mkfs.ext4", "mformat", "mcopy")),
    reason="needs fdisk, e2fsprogs, mtools")


@needs_image_tools
def test_build_adds_a_small_data_partition_after_the_root(tmp_path):
    img = tmp_path / "2026-11-25-smsgenie.img"
    pigen_like_image(img)
    run(str(ADD_DATA), str(img))
    table = run("sfdisk", "-J", str(img)).stdout
    parts = json.loads(table)["partitiontable"]["partitions"]
    assert len(parts) == 3 and parts[2]["size"] == 256 * 2048
    assert parts[2]["start"] >= parts[1]["start"] + parts[1]["size"]  # after the root, which is untouched
    data = tmp_path / "p3"
    with open(img, "rb") as src, open(data, "wb") as out:
        src.seek(parts[2]["start"] * 512)
        out.write(src.read(parts[2]["size"] * 512))
    assert run("blkid", "-s", "LABEL", "-o", "value", str(data)).stdout.strip() == "smsgenie-data"
    assert block_size(str(data)) == 4096  # mkfs would pick 1 KiB for 256 MiB
    boot = f"{img}@@{8192 * 512}"
    assert run("mtype", "-i", boot, "::cmdline.txt").stdout.strip() == CMDLINE  # no "resize": the root stays
    again = run(str(ADD_DATA), str(img), check=False)
    assert again.returncode == 1 and "not a pi-gen image" in again.stderr


@needs_loop
@needs_image_tools
def test_a_flashed_image_grows_its_data_partition_over_a_larger_card(card, tmp_path):
    img = tmp_path / "smsgenie.img"
    pigen_like_image(img)
    run(str(ADD_DATA), str(img))
    size = img.stat().st_size
    dev, parts = card("", size_mib=900)  # an empty 900 MiB card ...
    with open(img, "rb") as src, open(dev, "r+b") as dst:  # ... flashed, like dd does
        shutil.copyfileobj(src, dst, 1 << 20)
    run("partx", "-a", dev, check=False)
    parts = run("lsblk", "-lnpo", "NAME", dev).stdout.split()[1:]
    assert len(parts) == 3
    before = fs_bytes(parts[2])
    run(str(DATAPART), dev)
    assert fs_bytes(parts[2]) > 400 * 1024 * 1024 > before > 0
    assert size < 900 * 1024 * 1024


def test_the_example_config_is_what_the_image_installs_and_loads():
    c = configmod.load(FILES / "rootfs/etc/smsgenie/config.toml.example", explicit=True)
    assert c.data_dir == "/var/lib/smsgenie"
    assert c.modems[0].port == "/dev/smsgenie-modem"
    assert (c.panel.display, c.panel.buttons) == ("ssd1306", "gpio")
    assert (c.web.listen, c.web.https, c.web.redirect_from) == ("0.0.0.0:443", True, "0.0.0.0:80")


def test_the_udev_rule_names_the_at_port_of_both_modems():
    rules = (FILES / "rootfs/etc/udev/rules.d/90-smsgenie-modem.rules").read_text()
    for vendor, product, interface in (("1e0e", "9001", "02"), ("2c7c", "0125", "02")):
        assert (f'ENV{{ID_VENDOR_ID}}=="{vendor}", ENV{{ID_MODEL_ID}}=="{product}", '
                f'ENV{{ID_USB_INTERFACE_NUM}}=="{interface}"') in rules
    assert 'SYMLINK+="smsgenie-modem", GROUP="dialout", MODE="0660", ENV{ID_MM_DEVICE_IGNORE}="1"' in rules


def test_the_service_is_hardened_and_watched():
    unit = (FILES / "rootfs/etc/systemd/system/smsgenie.service").read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "ReadWritePaths=/var/lib/smsgenie", "PrivateTmp=yes", "SupplementaryGroups=dialout i2c gpio",
                 "User=smsgenie", "RequiresMountsFor=/var/lib/smsgenie",
                 "CapabilityBoundingSet=CAP_NET_BIND_SERVICE"):
        assert f"\n{line}" in unit, line
