"""Update bundles: a new SMS Genie release the vendor signs, and installing it on a box.

A bundle is a tar file::

    manifest.json        {"format", "version", "created", "notes", "files": {name: sha256}}
    manifest.sig         Ed25519 signature (base64) of DOMAIN + manifest.json, by the vendor key
    wheels/*.whl         smsgenie-<version>-*.whl and every wheel it needs on the box (aarch64)

The box checks, before anything is installed: the signature against the
vendor public key in its config (the key that signs top-up codes), that the
tar holds exactly the files the manifest lists, each with its hash, and
only plain files with plain names. A bundle that fails any check is
refused whole, with the reason.

Installing (:func:`install`) never touches the data dir: each release is its
own venv under ``PREFIX/releases/<version>``, built from the bundle's wheels
(and the box's own ``PREFIX/wheelhouse``: see :mod:`appliance.board`) with no
network, tried (``smsgenie --help``) and only then made current by
swapping the ``PREFIX/current`` symlink in one rename. The release before
stays, so going back is one symlink. The daemon's next start migrates the
database if the new release needs it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance import board
from appliance.errors import SmsGenieError
from appliance.files import fsync_dir, sha256_file
from appliance.text import say

FORMAT = "smsgenie-update-1"
DOMAIN = b"smsgenie update bundle v1\n"  # a signature over one kind of file is never valid for another
MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"
MAX_BUNDLE_BYTES = 512 * 1024 * 1024
_WHEEL_NAME = re.compile(r"^wheels/[A-Za-z0-9_.+-]+\.whl$")
_VERSION = re.compile(r"^[0-9]+(\.[0-9]+)*([a-z0-9.+-]*)$")
MAX_MANIFEST_BYTES = 1 << 20


class UpdateError(SmsGenieError):
    """An update bundle was refused, or could not be installed. Nothing was changed."""


class BundleForged(UpdateError):
    """The bundle is not signed by this box's vendor key, or was changed after signing."""


@dataclass(frozen=True)
class Bundle:
    """A verified bundle, unpacked into ``directory``."""

    version: str
    created: str
    notes: str
    files: dict[str, str]
    directory: Path

    @property
    def wheels(self) -> Path:
        return self.directory / "wheels"


def wheel_version(path: Path) -> str:
    """smsgenie-0.2.0-py3-none-any.whl -> 0.2.0"""
    parts = path.name.split("-")
    if len(parts) < 5 or parts[0] != "smsgenie" or not path.name.endswith(".whl"):
        raise UpdateError(say("{file} is not an smsgenie wheel (smsgenie-VERSION-py3-none-any.whl)", file=path.name))
    return parts[1]


def make(private_key: Ed25519PrivateKey, wheels: list[Path], out: Path, *, notes: str = "",
         now: datetime | None = None) -> Path:
    """The vendor's side: a signed bundle of ``wheels`` (exactly one of them smsgenie's) at ``out``."""
    ours = [w for w in wheels if w.name.startswith("smsgenie-")]
    if len(ours) != 1:
        raise UpdateError(say("a bundle needs exactly one smsgenie-*.whl (and the wheels it depends on)"))
    names = [w.name for w in wheels]
    if len(set(names)) != len(names):
        raise UpdateError(say("two wheels with the same file name"))
    files = {f"wheels/{w.name}": sha256_file(w) for w in wheels}
    for name in files:
        if not _WHEEL_NAME.match(name):
            raise UpdateError(say("{name}: wheel file names are letters, digits and ._+- only", name=name))
    manifest = json.dumps({
        "format": FORMAT, "version": wheel_version(ours[0]),
        "created": (now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        "notes": notes, "files": files,
    }, indent=1, sort_keys=True, ensure_ascii=False).encode("utf-8")
    signature = base64.b64encode(private_key.sign(DOMAIN + manifest))
    tmp = out.with_name(out.name + ".part")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in ((MANIFEST, manifest), (SIGNATURE, signature)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        for w in wheels:
            tar.add(w, arcname=f"wheels/{w.name}", recursive=False)
    os.replace(tmp, out)
    return out


def verify(path: str | os.PathLike, public_key: Ed25519PublicKey, into: str | os.PathLike) -> Bundle:
    """Check ``path`` (see the module's docstring) and unpack it into the empty or new dir ``into``.

    Raises :class:`BundleForged` or :class:`UpdateError` with the reason; then ``into`` holds nothing
    that was not verified (it is removed).
    """
    path, into = Path(path), Path(into)
    if path.is_symlink():
        raise UpdateError(say("{path} is a symbolic link, not a bundle: refused", path=str(path)))
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UpdateError(say("cannot read the update bundle {path}: {why}", path=str(path),
                              why=exc.strerror or str(exc))) from None
    if size > MAX_BUNDLE_BYTES:
        raise UpdateError(say("{file} is {mb} MB: larger than any update bundle ({max} MB)", file=path.name,
                              mb=size >> 20, max=MAX_BUNDLE_BYTES >> 20))
    if into.exists() and any(into.iterdir()):
        raise UpdateError(say("{dir} is not empty", dir=str(into)))
    into.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        return _verify(path, public_key, into)
    except BaseException:
        shutil.rmtree(into, ignore_errors=True)
        raise


def _verify(path: Path, public_key: Ed25519PublicKey, into: Path) -> Bundle:
    try:
        tar = tarfile.open(path, "r:")
    except (tarfile.TarError, OSError):
        raise UpdateError(say("{file} is not an SMS Genie update bundle (not a tar file)", file=path.name)) from None
    with tar:
        by_name = _members(tar, path.name)
        manifest = tar.extractfile(by_name[MANIFEST]).read()
        signature = tar.extractfile(by_name[SIGNATURE]).read()
        try:
            public_key.verify(base64.b64decode(signature.strip(), validate=True), DOMAIN + manifest)
        except (binascii.Error, ValueError, InvalidSignature):
            raise BundleForged(say("{file} is not signed by your vendor's key, or was changed after signing: "
                                   "refused, nothing installed. Get the bundle again from the vendor",
                                   file=path.name)) from None
        info, version, files = _read_manifest(manifest, path.name)
        listed, present = set(files), set(by_name) - {MANIFEST, SIGNATURE}
        if listed != present:
            extra, missing = sorted(present - listed), sorted(listed - present)
            raise UpdateError(say("{file} does not match its manifest: {what}; refused", file=path.name, what="; ".join(
                [*([f"+ {', '.join(extra)}"] if extra else []), *([f"- {', '.join(missing)}"] if missing else [])])))
        if not any(n.startswith(f"wheels/smsgenie-{version}-") for n in listed):
            raise UpdateError(say("{file} has no smsgenie {version} wheel", file=path.name, version=version))
        (into / "wheels").mkdir(mode=0o700)
        for name in sorted(listed):
            _extract_checked(tar, by_name[name], into / name, files[name], path.name)
    (into / MANIFEST).write_bytes(manifest)
    return Bundle(version=version, created=str(info.get("created", "")), notes=str(info.get("notes", "")),
                  files=files, directory=into)


def _members(tar: tarfile.TarFile, name: str) -> dict[str, tarfile.TarInfo]:
    """The bundle's members by name: only plain files, each once, each one a bundle may hold."""
    try:
        members = tar.getmembers()
    except (tarfile.TarError, EOFError):
        raise UpdateError(say("{file} is damaged (cut short?): copy it again", file=name)) from None
    by_name: dict[str, tarfile.TarInfo] = {}
    for m in members:
        if not m.isfile():
            raise UpdateError(say("{file} holds {member}, which is not a plain file: refused", file=name,
                                  member=repr(m.name)))
        if m.name in by_name:
            raise UpdateError(say("{file} holds {member} twice: refused", file=name, member=repr(m.name)))
        if m.name not in (MANIFEST, SIGNATURE) and not _WHEEL_NAME.match(m.name):
            raise UpdateError(say("{file} holds {member}, which no update bundle has: refused", file=name,
                                  member=repr(m.name)))
        by_name[m.name] = m
    if MANIFEST not in by_name or SIGNATURE not in by_name:
        raise UpdateError(say("{file} has no signed manifest: not an SMS Genie update bundle", file=name))
    if by_name[MANIFEST].size > MAX_MANIFEST_BYTES or by_name[SIGNATURE].size > 1024:
        raise UpdateError(say("{file}'s manifest is too large for one: refused", file=name))
    return by_name


def _read_manifest(manifest: bytes, name: str) -> tuple[dict, str, dict[str, str]]:
    """A signed manifest's (fields, version, files), or why it cannot be used."""
    try:
        info = json.loads(manifest)
        version, files = str(info["version"]), dict(info["files"])
        if info["format"] != FORMAT:
            raise UpdateError(say("{file} is a {format} bundle; this box reads {ours}: update in two steps (ask the "
                                  "vendor)", file=name, format=repr(info["format"]), ours=repr(FORMAT)))
    except (ValueError, KeyError, TypeError):
        raise UpdateError(say("{file}'s manifest is signed but unreadable: ask the vendor", file=name)) from None
    if not _VERSION.match(version):
        raise UpdateError(say("{file}: {version} is not a version", file=name, version=repr(version)))
    return info, version, files


def _extract_checked(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, sha256: str, name: str) -> None:
    src = tar.extractfile(member)
    h = hashlib.sha256()
    with open(target, "xb") as out:
        while chunk := src.read(1 << 20):
            h.update(chunk)
            out.write(chunk)
    if h.hexdigest() != sha256:
        raise UpdateError(say("{file}: {member} is not the file the vendor signed (its hash differs): the bundle "
                              "was damaged or changed; refused, nothing installed", file=name, member=member.name))


def current_version(prefix: str | os.PathLike) -> str | None:
    link = Path(prefix) / "current"
    try:
        return Path(os.readlink(link)).name
    except OSError:
        return None


def install(bundle: Bundle, prefix: str | os.PathLike, *, python: str | None = None,
            extras: str | None = None) -> tuple[str | None, str]:
    """Install a verified bundle as a new release under ``prefix`` and make it current.

    Returns (version before, version now). The data dir is not touched. Raises
    :class:`UpdateError` (and leaves ``current`` as it was) when the release
    will not install or will not start.
    """
    prefix = Path(prefix)
    before = current_version(prefix)
    if before == bundle.version:
        raise UpdateError(say("SMS Genie {version} is already installed", version=bundle.version))
    releases = prefix / "releases"
    releases.mkdir(parents=True, exist_ok=True)
    release = releases / bundle.version
    shutil.rmtree(release, ignore_errors=True)  # a half-made one from an interrupted install
    if extras is None:
        extras = board.extras(prefix)
    requirement = f"smsgenie[{extras}]=={bundle.version}" if extras else f"smsgenie=={bundle.version}"
    # the wheels this box built itself (RPi.GPIO: see appliance/board.py), beside the bundle's
    house = prefix / board.WHEELHOUSE
    own = ["--find-links", str(house)] if house.is_dir() else []
    steps = [
        [python or _base_python(), "-m", "venv", str(release)],
        [str(release / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-index", "--find-links", str(bundle.wheels), *own, requirement],
        [str(release / "bin" / "smsgenie"), "--help"],
    ]
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True, env=_clean_env())
        if done.returncode != 0:
            shutil.rmtree(release, ignore_errors=True)
            why = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise UpdateError(say("SMS Genie {version} did not install ({step}): {why}; the box stays on {before}",
                                  version=bundle.version, step=f"{Path(cmd[0]).name} {' '.join(cmd[1:3])}",
                                  why=" / ".join(why) or f"exit {done.returncode}",
                                  before=before or say("the release it has")))
    tmp = prefix / "current.new"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(Path("releases") / bundle.version)
    os.replace(tmp, prefix / "current")
    fsync_dir(prefix)
    _prune(releases, keep={bundle.version, before})  # this release and the one before: one step back
    return before, bundle.version


def _base_python() -> str:
    """The system Python the running venv was made from (a venv is made from that, not from a venv)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}
    env["PIP_NO_INPUT"] = "1"
    return env


def _prune(releases: Path, keep: set[str | None]) -> None:
    for old in releases.iterdir():
        if old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)


# --- the web page's hand-over: the page (unprivileged) verifies and leaves the bundle in the data
# dir; root's smsgenie-update.service (started by smsgenie-update.path) installs it and writes the
# result where the page reads it.

UPDATES_DIR = "updates"
INCOMING = "incoming.bundle"
RESULT = "last.json"


def updates_dir(data_dir: str | os.PathLike) -> Path:
    """data_dir/updates. The installer runs as root in a directory the service user owns, so it
    refuses a symbolic link here (it would send root's writes elsewhere)."""
    d = Path(data_dir) / UPDATES_DIR
    if d.is_symlink():
        raise UpdateError(say("{dir} is a symbolic link, not the updates directory: refused", dir=str(d)))
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return d


def stage_upload(data_dir: str | os.PathLike, upload: str | os.PathLike, public_key: Ed25519PublicKey) -> Bundle:
    """Verify an uploaded bundle, then put it where the installer looks (one rename: never half there).

    Verified here so the person uploading hears at once that a bundle is forged; the installer
    verifies again, as root, before it installs anything."""
    d = updates_dir(data_dir)
    check = d / f"check-{os.getpid()}"
    shutil.rmtree(check, ignore_errors=True)
    try:
        bundle = verify(upload, public_key, check)
    finally:
        shutil.rmtree(check, ignore_errors=True)
    os.replace(upload, d / INCOMING)
    (d / RESULT).unlink(missing_ok=True)
    return bundle


def pending(data_dir: str | os.PathLike) -> Path | None:
    p = Path(data_dir) / UPDATES_DIR / INCOMING
    return p if os.path.lexists(p) else None


def write_result(data_dir: str | os.PathLike, result: dict, now: datetime | None = None) -> None:
    """The installer's verdict for the page, owned like the data dir (the installer runs as root)."""
    d = updates_dir(data_dir)
    body = json.dumps({**result, "at": (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")},
                      ensure_ascii=False)
    fd, tmp = tempfile.mkstemp(prefix=RESULT + ".", dir=d)  # a new file: never through a planted link
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(body)
        owner = Path(data_dir).stat()
        if os.geteuid() == 0:
            os.fchown(f.fileno(), owner.st_uid, owner.st_gid)
        os.fchmod(f.fileno(), 0o600)
    os.replace(tmp, d / RESULT)


def last_result(data_dir: str | os.PathLike) -> dict | None:
    try:
        return json.loads((Path(data_dir) / UPDATES_DIR / RESULT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
