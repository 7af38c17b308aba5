"""Update bundles: signed by the vendor, verified before anything installs, installed beside the data.

The wheels here are small real wheels (built in the test) named smsgenie, so that
pip really installs them into a real venv with no network, as on a box.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance import update
from appliance.clock import SystemClock
from appliance.db import Database
from appliance.sendqueue import SendQueue
from appliance.text import from_json
from appliance.update import BundleForged, UpdateError
from appliance.vendor import public_key_line
from smsgenie.cli import cli


def make_wheel(directory: Path, version: str, exit_code: int = 0) -> Path:
    """A wheel named smsgenie whose `smsgenie` command prints its version (and exits with exit_code)."""
    files = {
        "smsgenie_fake/__init__.py": f"def main():\n    print('smsgenie {version}')\n"
                                     f"    raise SystemExit({exit_code})\n",
        f"smsgenie-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: smsgenie\nVersion: {version}\n",
        f"smsgenie-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                               "Tag: py3-none-any\n",
        f"smsgenie-{version}.dist-info/entry_points.txt": "[console_scripts]\nsmsgenie = smsgenie_fake:main\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append(f"smsgenie-{version}.dist-info/RECORD,,")
    files[f"smsgenie-{version}.dist-info/RECORD"] = "\n".join(record) + "\n"
    path = directory / f"smsgenie-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path


@pytest.fixture
def vendor_key():
    return Ed25519PrivateKey.generate()


@pytest.fixture
def bundle_of(tmp_path, vendor_key):
    def make(version: str, key=None, exit_code: int = 0) -> Path:
        d = tmp_path / f"build-{version}"
        d.mkdir(exist_ok=True)
        wheel = make_wheel(d, version, exit_code)
        return update.make(key or vendor_key, [wheel], tmp_path / f"smsgenie-{version}.bundle", notes="test")
    return make


def rewrite(bundle: Path, out: Path, change) -> Path:
    """Copy a bundle's tar, letting change(name, data) -> data alter members (None drops one)."""
    with tarfile.open(bundle) as src, tarfile.open(out, "w") as dst:
        for m in src.getmembers():
            data = change(m.name, src.extractfile(m).read())
            if data is None:
                continue
            info = tarfile.TarInfo(m.name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    return out


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run_smsgenie(prefix: Path) -> str:
    return subprocess.run([str(prefix / "current" / "bin" / "smsgenie"), "--help"], capture_output=True,
                          text=True).stdout.strip()


@pytest.mark.system  # makes real venvs
def test_a_good_bundle_installs_beside_the_data_and_keeps_the_release_before(tmp_path, bundle_of, vendor_key):
    data = tmp_path / "data"
    db = Database.in_data_dir(data)
    SendQueue(db, SystemClock()).ledger.adjust(500, "credit bought before the update")
    db.close()
    before = tree_digest(data)
    prefix = tmp_path / "opt"
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        b = update.verify(bundle_of(version), vendor_key.public_key(), tmp_path / f"x{version}")
        assert b.notes == "test"
        update.install(b, prefix)
        assert run_smsgenie(prefix) == f"smsgenie {version}"
        assert update.current_version(prefix) == version
    assert sorted(p.name for p in (prefix / "releases").iterdir()) == ["1.1.0", "1.2.0"]  # one step back kept
    assert tree_digest(data) == before
    db = Database.in_data_dir(data)
    assert SendQueue(db, SystemClock()).ledger.balance() == 500
    db.close()


def test_a_bundle_signed_with_another_key_is_refused(tmp_path, bundle_of, vendor_key):
    forged = bundle_of("2.0.0", key=Ed25519PrivateKey.generate())
    with pytest.raises(BundleForged, match="not signed by your vendor's key"):
        update.verify(forged, vendor_key.public_key(), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_a_changed_wheel_is_refused_by_its_hash(tmp_path, bundle_of, vendor_key):
    good = bundle_of("2.0.0")
    evil = make_wheel(tmp_path, "2.0.0", exit_code=0)
    with zipfile.ZipFile(evil, "a") as z:
        z.writestr("smsgenie_fake/backdoor.py", "import os\n")
    tampered = rewrite(good, tmp_path / "t.bundle",
                       lambda name, data: evil.read_bytes() if name.endswith(".whl") else data)
    with pytest.raises(UpdateError, match="is not the file the vendor signed"):
        update.verify(tampered, vendor_key.public_key(), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_a_changed_manifest_breaks_the_signature(tmp_path, bundle_of, vendor_key):
    def bump(name, data):
        if name == "manifest.json":
            return data.replace(b'"notes": "test"', b'"notes": "urgent, install now"')
        return data
    tampered = rewrite(bundle_of("2.0.0"), tmp_path / "t.bundle", bump)
    with pytest.raises(BundleForged):
        update.verify(tampered, vendor_key.public_key(), tmp_path / "x")


@pytest.mark.parametrize("name", ["../../etc/cron.d/x", "wheels/../../x.whl", "wheels/extra.whl", "readme.txt"])
def test_a_file_the_manifest_does_not_list_is_refused(tmp_path, bundle_of, vendor_key, name):
    good = bundle_of("2.0.0")
    with tarfile.open(good) as src, tarfile.open(tmp_path / "t.bundle", "w") as dst:
        for m in src.getmembers():
            dst.addfile(m, src.extractfile(m))
        info = tarfile.TarInfo(name)
        info.size = 3
        dst.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(UpdateError, match="refused"):
        update.verify(tmp_path / "t.bundle", vendor_key.public_key(), tmp_path / "x")
    assert not (tmp_path.parent / "etc").exists()


def test_a_symlink_in_a_bundle_is_refused(tmp_path, bundle_of, vendor_key):
    with tarfile.open(bundle_of("2.0.0")) as src, tarfile.open(tmp_path / "t.bundle", "w") as dst:
        for m in src.getmembers():
            dst.addfile(m, src.extractfile(m))
        link = tarfile.TarInfo("wheels/link.whl")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
        dst.addfile(link)
    with pytest.raises(UpdateError, match="not a plain file"):
        update.verify(tmp_path / "t.bundle", vendor_key.public_key(), tmp_path / "x")


def test_damaged_and_foreign_files_are_refused_with_the_reason(tmp_path, bundle_of, vendor_key):
    good = bundle_of("2.0.0").read_bytes()
    (tmp_path / "cut.bundle").write_bytes(good[: good.index(b"PK\x03\x04") + 100])  # cut inside the wheel
    with pytest.raises(UpdateError, match="damaged|not the file|does not match"):
        update.verify(tmp_path / "cut.bundle", vendor_key.public_key(), tmp_path / "x")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(2000))
    with pytest.raises(UpdateError, match="not a tar file"):
        update.verify(tmp_path / "photo.jpg", vendor_key.public_key(), tmp_path / "y")


@pytest.mark.system  # makes real venvs
def test_a_release_that_does_not_start_is_not_made_current(tmp_path, bundle_of, vendor_key):
    prefix = tmp_path / "opt"
    update.install(update.verify(bundle_of("1.0.0"), vendor_key.public_key(), tmp_path / "a"), prefix)
    broken = update.verify(bundle_of("1.1.0", exit_code=3), vendor_key.public_key(), tmp_path / "b")
    with pytest.raises(UpdateError, match="did not install .* the box stays on 1.0.0"):
        update.install(broken, prefix)
    assert update.current_version(prefix) == "1.0.0"
    assert not (prefix / "releases" / "1.1.0").exists()
    assert run_smsgenie(prefix) == "smsgenie 1.0.0"


@pytest.mark.system  # makes real venvs
def test_the_same_version_is_not_installed_over_itself(tmp_path, bundle_of, vendor_key):
    prefix = tmp_path / "opt"
    update.install(update.verify(bundle_of("1.0.0"), vendor_key.public_key(), tmp_path / "a"), prefix)
    with pytest.raises(UpdateError, match="already installed"):
        update.install(update.verify(bundle_of("1.0.0"), vendor_key.public_key(), tmp_path / "b"), prefix)


def config_with_key(tmp_path, vendor_key) -> str:
    path = tmp_path / "c.toml"
    key = public_key_line(vendor_key.public_key())
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n[vendor]\npublic_key = "{key}"\n[web]\nlisten = ""\n')
    return str(path)


@pytest.mark.system  # makes real venvs
def test_an_upload_is_checked_at_once_then_installed_by_the_installer(tmp_path, bundle_of, vendor_key):
    cfg = config_with_key(tmp_path, vendor_key)
    data = tmp_path / "data"
    data.mkdir()
    upload = tmp_path / "upload.part"
    upload.write_bytes(bundle_of("3.0.0", key=Ed25519PrivateKey.generate()).read_bytes())
    with pytest.raises(BundleForged):
        update.stage_upload(data, upload, vendor_key.public_key())
    assert update.pending(data) is None
    upload.write_bytes(bundle_of("3.0.0").read_bytes())
    assert update.stage_upload(data, upload, vendor_key.public_key()).version == "3.0.0"
    assert update.pending(data) is not None
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", cfg, "update", "install", "--from-upload", "--prefix",
                                 str(tmp_path / "opt")])
    assert result.exit_code == 0, result.output
    assert "SMS Genie 3.0.0 installed" in result.output
    assert update.pending(data) is None
    assert update.last_result(data)["ok"] is True and update.last_result(data)["version"] == "3.0.0"
    assert runner.invoke(cli, ["--config", cfg, "update", "install", "--from-upload"]).output.strip() == \
        "No uploaded bundle waiting."


def test_the_installer_refuses_a_bundle_swapped_after_the_page_checked_it(tmp_path, bundle_of, vendor_key):
    cfg = config_with_key(tmp_path, vendor_key)
    data = tmp_path / "data"
    updates = update.updates_dir(data)
    (updates / update.INCOMING).write_bytes(bundle_of("3.0.0", key=Ed25519PrivateKey.generate()).read_bytes())
    result = CliRunner().invoke(cli, ["--config", cfg, "update", "install", "--from-upload", "--prefix",
                                      str(tmp_path / "opt")])
    assert result.exit_code == 1
    assert "not signed by your vendor's key" in result.output
    verdict = update.last_result(data)
    assert verdict["ok"] is False and "not signed" in from_json(verdict["message"])  # a Text: the page translates it
    assert update.pending(data) is None  # not retried in a loop by the path unit
    assert not (tmp_path / "opt").exists()


def test_verify_on_the_command_line(tmp_path, bundle_of, vendor_key):
    cfg = config_with_key(tmp_path, vendor_key)
    ok = CliRunner().invoke(cli, ["--config", cfg, "update", "verify", str(bundle_of("3.1.0"))])
    assert ok.exit_code == 0 and "Good bundle: SMS Genie 3.1.0" in ok.output
    bad = CliRunner().invoke(cli, ["--config", cfg, "update", "verify",
                                   str(bundle_of("3.2.0", key=Ed25519PrivateKey.generate()))])
    assert bad.exit_code == 1 and "not signed by your vendor's key" in bad.output


def test_the_vendor_signs_a_bundle_on_the_command_line(tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli, ["vendor", "keygen", "--out", str(tmp_path / "v")]).exit_code == 0
    wheel = make_wheel(tmp_path, "4.0.0")
    out = tmp_path / "u.bundle"
    result = runner.invoke(cli, ["vendor", "bundle", "--key", str(tmp_path / "v" / "vendor.key"), "--out", str(out),
                                 "--notes", "fixes", str(wheel)])
    assert result.exit_code == 0, result.output
    manifest = json.loads(tarfile.open(out).extractfile("manifest.json").read())
    assert manifest["version"] == "4.0.0" and manifest["notes"] == "fixes"
    again = runner.invoke(cli, ["vendor", "bundle", "--key", str(tmp_path / "v" / "vendor.key"), "--out", str(out),
                                str(wheel)])
    assert again.exit_code == 1 and "already exists" in again.output


def test_the_root_installer_never_writes_through_a_link_the_service_user_planted(tmp_path, bundle_of, vendor_key):
    data = tmp_path / "data"
    updates = update.updates_dir(data)
    victim = tmp_path / "etc-passwd"
    victim.write_text("root:x:0:0\n")
    for planted in ("last.json.part", "last.json"):
        (updates / planted).symlink_to(victim)
    update.write_result(data, {"ok": True, "message": "x"})
    assert victim.read_text() == "root:x:0:0\n"
    assert update.last_result(data)["message"] == "x"
    (updates / update.INCOMING).symlink_to(victim)
    assert update.pending(data) is not None
    with pytest.raises(UpdateError, match="symbolic link"):
        update.verify(update.pending(data), vendor_key.public_key(), tmp_path / "x")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "data2").mkdir()
    (tmp_path / "data2" / "updates").symlink_to(elsewhere)
    with pytest.raises(UpdateError, match="symbolic link"):
        update.write_result(tmp_path / "data2", {"ok": True, "message": "x"})
    assert not list(elsewhere.iterdir())
