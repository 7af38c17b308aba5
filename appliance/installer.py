"""Installing a verified update bundle on this box, and restarting into it.

On a plain root a release goes under ``/opt/smsgenie`` (:func:`appliance.update.install`).
On the image's read-only root (an overlay: the running system's /opt is a
RAM layer over the card) a release made there would vanish at the next
boot, so it is installed into the card's root through ``overlayroot-chroot``
and the box reboots into it. A bundle uploaded on the page is installed by
root's ``smsgenie-update.service`` (:func:`install_upload`), which leaves
its verdict where the page reads it and never tries the same bundle twice.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from appliance import update
from appliance.errors import SmsGenieError
from appliance.text import message_of, say, to_json
from appliance.update import Bundle, UpdateError

DEFAULT_PREFIX = "/opt/smsgenie"
#: Where overlayroot shows the real (read-only) root file system.
OVERLAY_LOWER = "/media/root-ro"
SERVICE = "smsgenie.service"


@dataclass(frozen=True)
class Installed:
    version: str
    before: str | None
    on_read_only_root: bool
    """Installed on the card's root under an overlay: the box must reboot to run it."""

    @property
    def message(self) -> str:
        if self.on_read_only_root:
            return say("SMS Genie {version} installed on the read-only root; the box restarts to run it.",
                       version=self.version)
        return say("SMS Genie {version} installed (was {before}); the data dir is unchanged.", version=self.version,
                   before=self.before or say("none"))


def verify_file(path: str | os.PathLike, public_key: Ed25519PublicKey) -> Bundle:
    """Check a bundle's signature and contents; nothing is installed (its wheels go to a temporary dir)."""
    with tempfile.TemporaryDirectory(prefix="smsgenie-update-") as tmp:
        return update.verify(path, public_key, Path(tmp) / "bundle")


def install_file(path: str | os.PathLike, public_key: Ed25519PublicKey, prefix: str = DEFAULT_PREFIX) -> Installed:
    """Verify ``path`` and install it as the current release (the data dir is kept as it is)."""
    if prefix == DEFAULT_PREFIX and os.path.ismount(OVERLAY_LOWER):
        return Installed(_install_under_overlay(path, public_key), None, True)
    with tempfile.TemporaryDirectory(prefix="smsgenie-update-") as tmp:
        bundle = update.verify(path, public_key, Path(tmp) / "bundle")
        before, now = update.install(bundle, prefix)
    return Installed(now, before, False)


def install_upload(data_dir: str | os.PathLike, public_key: Ed25519PublicKey | None,
                   prefix: str = DEFAULT_PREFIX) -> Installed | None:
    """Install the bundle the page left in the data dir, if any (None: nothing waits).

    The verdict goes where the page shows it, and the bundle is removed whether it installed or
    was refused, so a bad one is never tried again in a loop. Raises the refusal after recording it."""
    waiting = update.pending(data_dir)
    if waiting is None:
        return None
    try:
        if public_key is None:
            raise UpdateError(say("this box has no vendor key in its config, so no update can be checked"))
        installed = install_file(waiting, public_key, prefix)
    except SmsGenieError as exc:
        update.write_result(data_dir, {"ok": False, "message": to_json(message_of(exc))})
        raise
    finally:
        Path(waiting).unlink(missing_ok=True)
    update.write_result(data_dir, {"ok": True, "message": to_json(installed.message), "version": installed.version,
                                   "before": installed.before})
    return installed


def restart_into(installed: Installed) -> None:
    """Run the new release: restart the service, or reboot when it was installed under the overlay."""
    command = ["systemctl", "reboot"] if installed.on_read_only_root else ["systemctl", "restart", SERVICE]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise UpdateError(say("installed, but '{command}' failed: {why}", command=" ".join(command),
                              why=done.stderr.strip()))


def _install_under_overlay(path: str | os.PathLike, public_key: Ed25519PublicKey) -> str:
    """Install into the card's root through overlayroot-chroot, which makes it writable for one command."""
    version = verify_file(path, public_key).version  # refuse a forged one here first
    inner = ("cat > /var/tmp/smsgenie-update.bundle && /opt/smsgenie/current/bin/smsgenie update install "
             "/var/tmp/smsgenie-update.bundle; rc=$?; rm -f /var/tmp/smsgenie-update.bundle; exit $rc")
    with open(path, "rb") as f:
        done = subprocess.run(["overlayroot-chroot", "/bin/sh", "-c", inner], stdin=f, capture_output=True,
                              text=True)
    if done.returncode != 0:
        raise UpdateError(say("the install on the read-only root failed: {why}", why=done.stderr.strip()[-300:]))
    return version
