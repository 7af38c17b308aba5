"""The box under QEMU, as the boot test reaches it: its power, its console, a shell, its USB port, its page.

- :class:`Guest`: one power-on of the disk under ``qemu-system-aarch64 -M virt``; its console read into a
  log as it comes; :meth:`Guest.cut_power` is SIGKILL to the emulator (nothing the guest had not written
  out survives, as when the plug is pulled).
- :class:`Shell`: a root shell inside the guest on a virtio port (a boot-test unit starts it; a card has no
  such port): what a technician would type at the box.
- :class:`Monitor`: QEMU's machine protocol (QMP), to pull the modem's USB plug and put it back.
- :class:`Browser`: the shop's browser on the forwarded page: a cookie jar, the forms' CSRF tokens, the
  Referer a browser sends (Flask-WTF checks it over HTTPS).
"""

from __future__ import annotations

import html.parser
import http.cookiejar
import json
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

#: The modem's USB adapter in the guest (QEMU's usb-serial, an FTDI): its id for QMP's device_del/add.
MODEM_USB = {"driver": "usb-serial", "id": "modem-usb", "chardev": "modem", "bus": "xhci.0"}


class GuestError(RuntimeError):
    """The guest did not do what the test asked in time (the message says what, and where its log is)."""


class Guest:
    """One power-on of ``disk`` under QEMU with the kernel's command line ``cmdline`` (the card's cmdline.txt):
    the modem's pty on a USB serial adapter, the page on ``port``."""

    def __init__(self, work: Path, disk: Path, cmdline: str, modem_pty: str, port: int, log: Path):
        self.log_path = log
        self.lines: list[str] = []
        self.qmp_path = work / "qmp.sock"
        self.shell_path = work / "shell.sock"
        for path in (self.qmp_path, self.shell_path):
            path.unlink(missing_ok=True)
        kvm = os.access("/dev/kvm", os.R_OK | os.W_OK) and os.uname().machine == "aarch64"
        usb = ",".join(f"{k}={v}" for k, v in MODEM_USB.items() if k != "driver")
        cmd = ["qemu-system-aarch64", "-M", "virt", "-accel", "kvm" if kvm else "tcg",
               "-cpu", "host" if kvm else "cortex-a72", "-smp", "2", "-m", "1536", "-nographic", "-no-reboot",
               "-kernel", str(work / "vmlinuz"), "-initrd", str(work / "initrd.img"),
               "-append", cmdline,
               "-drive", f"file={disk},format=raw,if=virtio",
               "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:443",
               "-device", "virtio-net-pci,netdev=n0",
               "-chardev", f"serial,id=modem,path={modem_pty}",
               "-device", "qemu-xhci,id=xhci", "-device", f"usb-serial,{usb}",
               "-chardev", f"socket,id=shell,path={self.shell_path},server=on,wait=off",
               "-device", "virtio-serial-pci,id=vser",
               "-device", "virtserialport,bus=vser.0,chardev=shell,name=boottest.shell",
               "-qmp", f"unix:{self.qmp_path},server=on,wait=off"]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._shell: Shell | None = None

    def _read(self) -> None:
        with open(self.log_path, "w", encoding="utf-8", errors="replace") as log:
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                self.lines.append(line)
                log.write(line + "\n")
                log.flush()

    def wait_for(self, pattern: re.Pattern, timeout: float) -> re.Match | None:
        """The first console line since power on that matches, or None (timed out, or the guest is off)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for line in self.lines[seen:]:
                found = pattern.search(line)
                if found:
                    return found
            seen = len(self.lines)
            if self.proc.poll() is not None and seen == len(self.lines):
                return None
            time.sleep(0.5)
        return None

    def shell(self) -> "Shell":
        if self._shell is None:
            self._shell = Shell(self.shell_path)
        return self._shell

    def monitor(self) -> "Monitor":
        return Monitor(self.qmp_path)

    def unplug_modem(self) -> None:
        with self.monitor() as qmp:
            qmp.command("device_del", id=MODEM_USB["id"])

    def plug_modem(self) -> None:
        with self.monitor() as qmp:
            qmp.command("device_add", **MODEM_USB)

    def cut_power(self) -> None:
        """SIGKILL to the emulator: the box's power cut."""
        if self._shell is not None:
            self._shell.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)


def _connect(path: Path, timeout: float = 30.0) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
            return sock
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                raise GuestError(f"QEMU's socket {path} does not answer") from None
            time.sleep(0.2)


class Shell:
    """A root shell in the guest: :meth:`run` sends one command line and waits for its exit status."""

    def __init__(self, path: Path):
        self.sock = _connect(path)
        self.buffer = b""

    def run(self, command: str, timeout: float = 120.0) -> tuple[int, str]:
        """(exit status, what it printed); a guest that has not started the shell yet is waited for."""
        marker = f"@@boot-test-{secrets.token_hex(4)}"
        self.sock.sendall(f"( {command} ) 2>&1; echo {marker} $?\n".encode())
        done = re.compile(rf"{marker} (\d+)\n".encode())
        deadline = time.monotonic() + timeout
        while not (found := done.search(self.buffer)):
            left = deadline - time.monotonic()
            if left <= 0:
                raise GuestError(f"the guest's shell did not finish {command!r} in {timeout:.0f} s")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                raise GuestError("the guest's shell went away")
            self.buffer += chunk
        out, self.buffer = self.buffer[:found.start()], self.buffer[found.end():]
        return int(found.group(1)), out.decode("utf-8", "replace")

    def out(self, command: str, timeout: float = 120.0) -> str:
        """What ``command`` printed, stripped; a command that fails is the guest's error."""
        status, text = self.run(command, timeout)
        if status != 0:
            raise GuestError(f"{command!r} in the guest exited {status}: {text.strip()}")
        return text.strip()

    def close(self) -> None:
        self.sock.close()


class Monitor:
    """QEMU's QMP: one JSON object per line; a command's answer is the next line with "return" or "error"."""

    def __init__(self, path: Path):
        self.sock = _connect(path)
        self.file = self.sock.makefile("rwb")
        self._answer()  # the greeting
        self.command("qmp_capabilities")

    def _answer(self) -> dict:
        while True:
            line = self.file.readline()
            if not line:
                raise GuestError("QEMU's monitor closed")
            message = json.loads(line)
            if "event" not in message:
                return message

    def command(self, name: str, **arguments) -> dict:
        self.file.write(json.dumps({"execute": name, "arguments": arguments}).encode() + b"\n")
        self.file.flush()
        answer = self._answer()
        if "error" in answer:
            raise GuestError(f"QEMU refused {name}: {answer['error'].get('desc')}")
        return answer.get("return", {})

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()
        self.sock.close()


# --- the shop's browser ---------------------------------------------------------------------------------


@dataclass
class Form:
    action: str
    method: str
    multipart: bool
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class Page:
    status: int
    url: str
    text: str
    forms: list[Form] = field(default_factory=list)

    def form(self, action_part: str = "") -> Form:
        """The page's first form whose action contains ``action_part`` (the page's own URL when empty)."""
        own = self.url.split("?")[0]
        for form in self.forms:
            if (action_part in form.action) if action_part else form.action.split("?")[0] == own:
                return form
        raise GuestError(f"{self.url} ({self.status}) has no form for {action_part!r}: {self.text[:300]!r}")


class _Forms(html.parser.HTMLParser):
    """Each form's action and the values it would send as it stands (hidden fields, checked radios)."""

    def __init__(self, url: str):
        super().__init__()
        self.url, self.forms = url, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append(Form(urllib.parse.urljoin(self.url, a.get("action") or self.url),
                                   (a.get("method") or "get").lower(), a.get("enctype") == "multipart/form-data"))
        elif tag in ("input", "textarea") and self.forms and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("radio", "checkbox") and "checked" not in a:
                return
            if kind != "file":
                self.forms[-1].fields.setdefault(a["name"], a.get("value") or "")


class Browser:
    """The shop's browser on the box's page (its own CA, not trusted here: this run's)."""

    def __init__(self, base: str):
        self.base = base
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  urllib.request.HTTPSHandler(context=context))

    def _open(self, request: urllib.request.Request, timeout: float) -> Page:
        try:
            with self.opener.open(request, timeout=timeout) as r:
                status, url, body = r.status, r.url, r.read()
        except urllib.error.HTTPError as r:  # a page all the same (400 with the form's error, 507, ...)
            status, url, body = r.code, r.url, r.read()
        text = body.decode("utf-8", "replace")
        parser = _Forms(url)
        parser.feed(text)
        return Page(status, url, text, parser.forms)

    def get(self, path: str, timeout: float = 30.0) -> Page:
        return self._open(urllib.request.Request(urllib.parse.urljoin(self.base, path)), timeout)

    def json(self, path: str, timeout: float = 30.0) -> dict:
        page = self.get(path, timeout)
        try:
            if page.status == 200:
                return json.loads(page.text)
        except ValueError:
            pass
        raise GuestError(f"{path} answered {page.status} {page.url}: {page.text[:300]!r}")

    def submit(self, page: Page, form: Form, values: dict[str, str], files: dict[str, tuple[str, bytes]] = None,
               timeout: float = 60.0) -> Page:
        """Post ``form`` from ``page`` with ``values`` filled in (and ``files``: name -> (filename, bytes))."""
        fields = {**form.fields, **values}
        headers = {"Referer": page.url}
        if form.multipart:
            boundary = secrets.token_hex(16)
            parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                     for k, v in fields.items()]
            for name, (filename, content) in (files or {}).items():
                parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                             f'filename="{filename}"\r\nContent-Type: text/csv\r\n\r\n'.encode() + content + b"\r\n")
            body = b"".join(parts) + f"--{boundary}--\r\n".encode()
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        else:
            body = urllib.parse.urlencode(fields).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return self._open(urllib.request.Request(form.action, data=body, headers=headers, method="POST"), timeout)

    def until_done(self, page: Page, timeout: float = 300.0) -> Page:
        """A list's reading or queueing shows a progress page (202) that goes on to its result: follow it."""
        deadline = time.monotonic() + timeout
        while page.status == 202:
            found = re.search(r'data-next="([^"]+)"', page.text)
            if not found or time.monotonic() > deadline:
                raise GuestError(f"the progress page at {page.url} did not finish")
            time.sleep(1)
            page = self.get(found.group(1).replace("&amp;", "&"))
        return page
