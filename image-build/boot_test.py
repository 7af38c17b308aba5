"""The boot test's outside view (run by image-build/boot-test): boot the card's disk, use it and hurt it as a
shop and a technician would, and print what happened.

The guest is qemu-system-aarch64 -M virt with the disk image-build/boot-test made (image-build/guest.py);
the modem is the project's simulated SIM7600 on a host pty behind the guest's USB serial adapter (named
/dev/smsgenie-modem by a boot-test udev rule); the page is forwarded to a host port. In order:

1. first boot: READY (a boot-test unit ordered after the Type=notify service prints its state), the
   hostname from the device id, the set-up PIN, the service's own user and its hardening as the kernel
   sees it, the RAM overlay root, the data partition, the page asking for the first-run set-up;
2. the shop: set-up with the PIN, a top-up code minted for this box, a send list uploaded and confirmed
   on the page, its messages taken by the simulated modem;
3. power cuts (SIGKILL to QEMU): the first while a message is with the network, the others at random
   moments; after each the data partition is read from the disk on the host (the record and the ledger
   are there: nothing sent twice, nothing lost, the ledger exact), the box boots again (nothing written
   to the root survives, the data partition mounts clean) and sending resumes;
4. a frozen daemon (SIGSTOP): systemd's watchdog restarts it and sending resumes;
5. the modem unplugged (USB, through QEMU's monitor): the page says so, nothing is sent; plugged back,
   sending resumes;
6. the list sent to the end; then a full data partition: the page says so, the box still boots;
7. the last power cut: every message delivered once, or "uncertain" (the ones in flight at a cut), and
   the ledger exact.

``--try`` boots the disk and leaves it running with the simulated modem until Ctrl-C (a try-out or a demo).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from guest import Browser, Guest, GuestError  # noqa: E402 - after the paths

from appliance.clock import SystemClock  # noqa: E402
from appliance.db import DB_NAME, Database  # noqa: E402
from appliance.sendqueue import SendQueue  # noqa: E402
from hw.modem.sim import SimulatedModem  # noqa: E402

CONSOLE_LINE = re.compile(r"BOOT-TEST state (\S+) uptime ([\d.]+) hostname (\S+) pin (\S+) user (\S+) root (\S+) "
                          r"data (\S+)")
BOOT_TIMEOUT = float(os.environ.get("SMSGENIE_BOOT_TIMEOUT", "900"))
SMSGENIE = "runuser -u smsgenie -- /opt/smsgenie/current/bin/smsgenie --config /etc/smsgenie/config.toml"
MESSAGES = 24
CREDITS = 100
CUTS = int(os.environ.get("SMSGENIE_BOOT_CUTS", "3"))
SEND_LATENCY = 2.0          # the simulated network's seconds to take a message: a cut can land in it
WATCHDOG_SEC = 120          # smsgenie.service's WatchdogSec
RESTART_MARGIN = 90         # systemd's RestartSec, the abort, and a start under emulation
TEXT = "您的订单已备好，请到店取货。"
CAP_NET_BIND_SERVICE = 1 << 10
DATA_DIR = "/var/lib/smsgenie"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(predicate, timeout: float, interval: float = 1.0):
    """predicate()'s first true value within ``timeout`` seconds, or None."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value or None
        time.sleep(interval)


class BootTest:
    def __init__(self, work: Path, vendor_key: Path):
        self.work, self.vendor_key = work, vendor_key
        self.disk = work / "run.img"
        subprocess.run(["cp", "--sparse=always", str(work / "disk.img"), str(self.disk)], check=True)
        self.sim = SimulatedModem(directory=str(work / "sim"), send_latency=SEND_LATENCY, report_delay=1.0).start()
        self.port = free_port()
        self.browser = Browser(f"https://127.0.0.1:{self.port}")
        self.report: list[tuple[str, bool, str]] = []
        self.figures: dict[str, list[float]] = {"ready": [], "cut": []}
        self.boots = 0
        self.guest: Guest | None = None
        self.console: re.Match | None = None  # the last boot's console line
        self.hostname: str | None = None  # the first boot's: every later boot must have it too
        self.in_flight: set[int] = set()
        self.numbers = [f"1391234{i:04d}" for i in range(MESSAGES)]
        self.expected = MESSAGES  # messages the record should hold (one more after the full partition)

    # --- helpers ---------------------------------------------------------------------------------------

    def check(self, what: str, ok: bool, detail: str = "") -> bool:
        self.report.append((what, bool(ok), detail))
        print(f"  {'ok  ' if ok else 'FAIL'} {what}: {detail}", flush=True)
        return bool(ok)

    def sent(self) -> int:
        return len(self.sim.accepted)

    def offset(self, n: int) -> int:
        """Where partition ``n`` of the disk starts, in bytes (sfdisk's table)."""
        table = subprocess.run(["sfdisk", "-d", str(self.disk)], check=True, capture_output=True, text=True).stdout
        return int(table.split("start=")[n].split(",")[0]) * 512

    def partition(self, n: int) -> str:
        """Partition ``n`` of the disk as e2fsprogs opens it (the disk image at the partition's offset)."""
        return f"{self.disk}?offset={self.offset(n)}"

    def cmdline(self) -> str:
        """What the Pi's firmware would read: cmdline.txt, from the disk as the last boot left it."""
        out = self.root_file("/boot/firmware/cmdline.txt")
        if "root=" not in out:
            raise GuestError(f"the disk's /boot/firmware/cmdline.txt is not a kernel command line: {out!r}")
        return out

    def root_file(self, path: str) -> str:
        """A file on the root partition as the card holds it (not the RAM overlay's)."""
        return subprocess.run(["debugfs", "-R", f"cat {path}", self.partition(1)], check=True, capture_output=True,
                              text=True).stdout.strip()

    def power_on(self) -> Guest:
        self.boots += 1
        self.guest = Guest(self.work, self.disk, self.cmdline(), self.sim.port, self.port,
                           self.work / f"console-{self.boots}.log")
        return self.guest

    def boot(self, label: str) -> bool:
        """Power on; READY, the console's readings, and the same name as every boot before (returns whether
        it came up)."""
        guest = self.power_on()
        console = guest.wait_for(CONSOLE_LINE, BOOT_TIMEOUT)
        if console is None:
            return self.check(f"{label}: smsgenie.service READY", False, f"the console never said ({guest.log_path})")
        state, uptime, host, *_ = console.groups()
        self.figures["ready"].append(float(uptime))
        self.console = console
        ready = self.check(f"{label}: smsgenie.service READY (Type=notify)", state == "active/running",
                           f"{state}, {float(uptime):.0f} s after power on")
        self.hostname = self.hostname or host
        self.check(f"{label}: the same hostname (the shop's bookmark, the device id, the CA)", host == self.hostname,
                   host)
        return ready

    def page_answers(self) -> str | None:
        def ask():
            try:
                return self.browser.get("/", timeout=20)
            except OSError:
                return None
        answer = wait(ask, 180, 2)
        return answer.url if answer and answer.status == 200 else None

    def status(self) -> dict:
        return self.browser.json("/status.json")

    def sending_resumes(self, before: int, timeout: float = 240) -> bool:
        return wait(lambda: self.sent() > before or self.sent() >= MESSAGES, timeout) is not None

    # --- 1. first boot ---------------------------------------------------------------------------------

    def first_boot(self) -> bool:
        """A new card: the first boot, on the writable root, names the box and turns the read-only root on,
        then reboots (QEMU's -no-reboot: the emulator exits); the second is the box as it stays."""
        guest = self.power_on()
        up = guest.wait_for(CONSOLE_LINE, BOOT_TIMEOUT)  # firstboot's reboot waits for nothing; this may come
        try:
            guest.proc.wait(timeout=120 if up else 1)
        except subprocess.TimeoutExpired:
            pass
        rebooted = any("reboot: Restarting system" in line for line in guest.lines)
        guest.cut_power()
        cmdline = self.cmdline()
        host = self.root_file("/etc/hostname")
        self.check("first boot: firstboot names the box, turns the read-only root on (cmdline.txt) and reboots",
                   rebooted and "overlayroot=tmpfs:recurse=0" in cmdline and host.startswith("smsgenie-"),
                   f"{'rebooted' if rebooted else 'no reboot'}; hostname {host}; cmdline.txt: {cmdline}")
        if not self.boot("after the first boot's reboot"):
            return False
        _, _, host, pin, user, root, data = self.console.groups()
        self.pin = pin
        shell = self.guest.shell()
        self.device = shell.out(f"{SMSGENIE} device-id")
        self.check("hostname from the device id", host == "smsgenie-" + self.device.split("-")[0].lower(),
                   f"{host}, device id {self.device}")
        self.check("set-up PIN shown to the technician", pin.isdigit() and len(pin) == 6,
                   "6 digits" if pin.isdigit() and len(pin) == 6 else pin)
        self.check("the service runs as its own user", user == "smsgenie", user)
        self.check("the root is the RAM overlay (overlayroot=tmpfs:recurse=0 in cmdline.txt)",
                   root == "overlay" and "overlayroot=tmpfs:recurse=0" in self.cmdline(), root)
        self.check("the data partition is mounted on the data dir", data.startswith("/dev/vda2"), data)
        pid = shell.out("systemctl show -p MainPID --value smsgenie")
        status = dict(line.split(":\t", 1) for line in shell.out(f"cat /proc/{pid}/status").splitlines()
                      if ":\t" in line)
        caps = int(status.get("CapEff", "-1").strip(), 16), int(status.get("CapBnd", "-1").strip(), 16)
        self.check("the unit's hardening, as the kernel sees the service",
                   status.get("NoNewPrivs", "").strip() == "1" and caps == (CAP_NET_BIND_SERVICE,) * 2,
                   f"NoNewPrivs {status.get('NoNewPrivs', '?').strip()}, CapEff {caps[0]:#x}, CapBnd {caps[1]:#x}")
        root_opts = shell.out(f"awk '$5 == \"/\" {{print $6}}' /proc/{pid}/mountinfo")
        mode = shell.out(f"stat -c '%U %a' {DATA_DIR}")
        self.check("ProtectSystem=strict: the root is read-only to the service; the data dir its own, 0700",
                   root_opts.startswith("ro") and mode == "smsgenie 700", f"/ {root_opts.split(',')[0]}; data {mode}")
        url = self.page_answers()
        self.check("the page answers on the forwarded port", url is not None, url or "no answer")
        return self.check("the page asks for the first-run set-up", bool(url) and url.endswith("/setup"), url or "")

    # --- 2. the shop ----------------------------------------------------------------------------------

    def shop(self) -> bool:
        b = self.browser
        page = b.get("/setup")
        password = "boot-test-" + secrets.token_hex(6)
        page = b.submit(page, page.form(), {"pin": self.pin, "shop_name": "启动测试店", "username": "admin",
                                            "password": password, "password2": password})
        if not self.check("set-up with the PIN on the page", page.status == 200 and page.url.endswith("/"),
                          f"{page.status} {page.url}"):
            return False
        code = subprocess.run([sys.executable, "-m", "smsgenie", "vendor", "mint", "--key", str(self.vendor_key),
                               "--device", self.device, "--credits", str(CREDITS)],
                              check=True, capture_output=True, text=True, cwd=HERE.parent).stdout.split()[0]
        page = b.get("/topup")
        page = b.submit(page, page.form(), {"code": code})
        balance = self.status()["balance"]
        if not self.check("a top-up code minted for this box, entered on the page", balance == CREDITS,
                          f"balance {balance}"):
            return False
        if not self.send_list("boot-test.csv", self.numbers, "a send list uploaded on the page is read and confirmed"):
            return False
        return self.check("its messages go out through the host's simulated modem",
                          wait(lambda: self.sent() >= 2, 120) is not None, f"{self.sent()} taken so far")

    def send_list(self, name: str, numbers: list[str], what: str) -> bool:
        """A transactional list (it goes in quiet hours too: CI runs at any hour) through the page's forms."""
        b = self.browser
        page = b.get("/send")
        page = b.until_done(b.submit(page, page.form(), {"text": TEXT, "kind": "transactional"},
                                     files={"file": (name, ("手机号\n" + "\n".join(numbers) + "\n").encode())}))
        if "/send/confirm" not in page.text:
            return self.check(what, False, f"the preview did not come: {page.status} {page.url}")
        page = b.until_done(b.submit(page, page.form("/send/confirm"), {}))
        return self.check(what, page.status == 200 and "/history/" in page.url, f"{page.status} {page.url}")

    # --- 3. power cuts ----------------------------------------------------------------------------------

    def pull_data(self) -> SendQueue:
        """The data partition as the guest left it, read on the host: copied out of the disk, its journal
        replayed by e2fsck on the copy, the database files taken out with debugfs, opened as the box does."""
        out = self.work / f"data-{self.boots}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        part = out / "data.img"
        subprocess.run(["dd", f"if={self.disk}", f"of={part}", "bs=512", f"skip={self.offset(2) // 512}", "status=none",
                        "conv=sparse"], check=True)
        fsck = subprocess.run(["e2fsck", "-fy", str(part)], capture_output=True, text=True)
        if fsck.returncode not in (0, 1):
            raise GuestError(f"e2fsck on the data partition exited {fsck.returncode}: {fsck.stdout[-500:]}")
        for name in (DB_NAME, DB_NAME + "-wal"):
            subprocess.run(["debugfs", "-R", f"dump -p /{name} {out / name}", str(part)], check=True,
                           capture_output=True)
        part.unlink()
        return SendQueue(Database(out / DB_NAME), SystemClock())

    def check_record(self, q: SendQueue, label: str) -> list:
        """Nothing lost, nothing sent twice, every credit accounted for: what each message cost matches what
        became of it (queued: nothing; failed: what the network took; else every part) - tests/test_crash.py's
        rules, on the card's own data partition."""
        messages = q.messages(limit=self.expected + 10)
        states = Counter(m.state for m in messages)
        doubled = [n for n, k in Counter(a.recipient for a in self.sim.accepted).items() if k > 1]
        unknown = {a.recipient for a in self.sim.accepted} - {m.recipient for m in messages}
        cost = {m.id: q.ledger.charged(m.id) for m in messages}
        wrong = [m.id for m in messages if cost[m.id] != (0 if m.state == "queued" else
                                                          len(m.accepted) if m.state == "failed" else m.segments)]
        balance = q.ledger.balance()
        self.check(f"{label}: the record on the data partition: every message, none sent twice",
                   len(messages) == self.expected and not doubled and not unknown,
                   f"{dict(states)}; the network took {self.sent()}" + (f"; twice: {doubled}" if doubled else ""))
        self.check(f"{label}: the ledger exact", not wrong and balance == CREDITS - sum(cost.values()),
                   f"balance {balance} = {CREDITS} - {sum(cost.values())}" + (f"; wrong: {wrong}" if wrong else ""))
        self.in_flight |= {m.id for m in messages if m.state == "sending"}
        return messages

    def power_cuts(self) -> bool:
        seed = int(os.environ.get("SMSGENIE_BOOT_SEED", str(time.time_ns() % 10**9)))
        print(f"  (the cuts' moments: SMSGENIE_BOOT_SEED={seed} repeats them)", flush=True)
        rng = random.Random(seed)
        for cut in range(1, CUTS + 1):
            if self.sent() >= MESSAGES:
                break
            self.guest.shell().out("echo written > /etc/boot-test-written")  # to the root: must not survive
            if cut == 1:  # the network has the message, the box has not heard back
                wait(lambda: self.sim.busy, 120, 0.02)
                time.sleep(rng.uniform(0, SEND_LATENCY * 0.8))
            else:
                time.sleep(rng.uniform(1, 15))
            before = self.sent()
            cut_at, busy = time.monotonic(), self.sim.busy
            self.guest.cut_power()
            moment = ("while a message is with the network" if busy else "between messages") if cut == 1 else \
                "at a random moment" + (" (a message with the network)" if busy else "")
            label = f"power cut {cut} ({moment})"
            q = self.pull_data()
            uncertain = sum(m.state == "uncertain" for m in self.check_record(q, label))
            q.db.close()
            if not self.boot(f"after power cut {cut}"):
                return False
            shell = self.guest.shell()
            kept = shell.run("test -e /etc/boot-test-written")[0] == 0
            self.check(f"after power cut {cut}: the root is as built (what was written to it is gone)", not kept,
                       "a file written before the cut survived" if kept else "gone")
            errors = shell.out("dmesg | grep -c 'EXT4-fs error' || true")
            fsck = shell.out("systemctl show -p Result --value 'systemd-fsck@dev-disk-by\\x2dlabel-smsgenie\\x2ddata'")
            self.check(f"after power cut {cut}: the data partition mounts clean", errors == "0" and fsck == "success",
                       f"fsck {fsck}, {errors} ext4 errors")
            resumed = self.sending_resumes(before)
            self.figures["cut"].append(time.monotonic() - cut_at)
            if not self.check(f"after power cut {cut}: sending resumes", resumed,
                              f"{time.monotonic() - cut_at:.0f} s from the cut; {self.sent()} taken"):
                return False
            made = self.status()["lists"][0]["counts"]["uncertain"] - uncertain
            self.check(f"after power cut {cut}: at most the one message the modem had is uncertain; one claimed "
                       "but not handed over is sent (the hand-over journal held)", made <= 1,
                       f"{made} made uncertain; the network " + ("had one" if busy else "had none") + " at the cut")
        return True

    # --- 4. a frozen daemon ---------------------------------------------------------------------------

    def hang(self) -> bool:
        shell = self.guest.shell()
        pid = shell.out("systemctl show -p MainPID --value smsgenie")
        shell.out(f"kill -STOP {pid}")
        frozen_at, before = time.monotonic(), self.sent()

        def restarted():
            now = shell.out("systemctl show -p MainPID --value smsgenie")
            return now not in ("0", pid) and shell.out("systemctl is-active smsgenie || true") == "active"
        back = wait(restarted, WATCHDOG_SEC + RESTART_MARGIN, 5)
        took = time.monotonic() - frozen_at
        said = shell.out("journalctl -u smsgenie -o cat --no-pager | grep -c 'Watchdog timeout' || true")
        self.check("a frozen daemon (SIGSTOP): systemd's watchdog restarts it",
                   back is not None and said != "0",
                   f"restarted {took:.0f} s after the freeze (WatchdogSec={WATCHDOG_SEC})" if back else
                   f"not restarted in {took:.0f} s")
        return self.check("after the watchdog's restart: sending resumes", self.sending_resumes(before),
                          f"{self.sent()} taken")

    # --- 5. the modem unplugged ------------------------------------------------------------------------

    def modem_gone(self) -> bool:
        self.guest.unplug_modem()
        modem = wait(lambda: next((m for m in self.status()["modems"] if m["state"] == "disconnected"), None), 90, 2)
        self.check("the modem unplugged: the page says so", modem is not None,
                   f"{modem['state_text']}: {modem['detail']}" if modem else "the page never said")
        before = self.sent()
        time.sleep(10)
        self.check("nothing is sent while it is gone", self.sent() <= before + 1, f"{self.sent() - before} taken")
        before = self.sent()
        self.guest.plug_modem()
        return self.check("plugged back: sending resumes", self.sending_resumes(before), f"{self.sent()} taken")

    # --- 6. the end of the list, and a full data partition -------------------------------------------

    def drain(self) -> bool:
        def done():
            lists = self.status()["lists"]
            return lists and all(lst["waiting"] == 0 for lst in lists)
        finished = wait(done, 900, 5)
        return self.check("the list is sent to the end", finished is not None, f"{self.sent()} taken")

    def full_data(self) -> bool:
        shell = self.guest.shell()
        shell.out(f"fallocate -l $(df --output=avail -B1 {DATA_DIR} | tail -n 1) {DATA_DIR}/boot-test-filler")
        page = self.browser.get("/send")
        csv = b"\xe6\x89\x8b\xe6\x9c\xba\xe5\x8f\xb7\n13912349999\n"
        page = self.browser.submit(page, page.form(), {"text": TEXT, "kind": "transactional"},
                                   files={"file": ("full.csv", csv)})
        said = re.sub(r"<[^>]+>|\s+", " ", page.text)
        self.check("a full data partition: an upload fails clean, and says why (in Chinese)",
                   page.status == 507 and "已满" in said, f"{page.status}: {said[-200:].strip()}")
        self.guest.cut_power()
        if not self.boot("booted with the data partition full"):
            return False
        url = self.page_answers()
        self.check("booted full: the page answers", url is not None, url or "no answer")
        self.guest.shell().out(f"rm -f {DATA_DIR}/boot-test-filler")
        before = self.sent()
        if not self.send_list("room-again.csv", ["13912349999"], "the space freed: a list is taken again"):
            return False
        self.expected += 1

        def delivered():
            return any(lst["name"] == "room-again.csv" and lst["counts"]["delivered"] == 1
                       for lst in self.status()["lists"])
        return self.check("and sent, and delivered", wait(delivered, 240, 3) is not None,
                          f"{self.sent() - before} taken")

    # --- 7. the last word -----------------------------------------------------------------------------

    def last_cut(self) -> None:
        self.guest.cut_power()
        q = self.pull_data()
        messages = self.check_record(q, "at the end")
        q.db.close()
        taken = Counter(a.recipient for a in self.sim.accepted)
        wrong = [f"{m.id} {m.state}" for m in messages
                 if not (m.state == "delivered" and taken[m.recipient] == m.segments
                         or m.state == "uncertain" and taken[m.recipient] <= m.segments)]
        self.check("every message delivered once, or uncertain", not wrong,
                   f"{dict(Counter(m.state for m in messages))}" + (f"; wrong: {wrong}" if wrong else ""))
        in_flight = [m for m in messages if m.id in self.in_flight]
        self.check("the ones in flight at a cut are uncertain (unless the network confirmed every part)",
                   all(m.state == "uncertain" or len(m.accepted) == m.segments for m in in_flight),
                   ", ".join(f"{m.id} {m.state}" for m in in_flight) or "none was in flight")

    def run(self) -> None:
        steps = (self.first_boot, self.shop, self.power_cuts, self.hang, self.modem_gone, self.drain, self.full_data)
        try:
            for step in steps:
                try:
                    ok = step()
                except (GuestError, OSError, subprocess.CalledProcessError, KeyError, ValueError) as exc:
                    ok = self.check(step.__name__, False, f"{type(exc).__name__}: {exc}")
                if not ok:
                    return
            self.last_cut()
        finally:
            if self.guest is not None:
                self.guest.cut_power()
            self.sim.close()


def try_out(work: Path) -> int:
    """The disk booted with the simulated modem, until Ctrl-C: the box on a PC (a reboot powers it on again,
    as the first boot's does)."""
    test = BootTest(work, Path(os.devnull))
    print(f"booting (about a minute); the page will be at {test.browser.base} (the box's own CA: accept it)")
    try:
        while True:
            guest = test.power_on()
            console = guest.wait_for(CONSOLE_LINE, BOOT_TIMEOUT)
            if console:
                print(console.group(0))
                print(f"the page: {test.browser.base}; the console log: {guest.log_path}; Ctrl-C powers it off")
            guest.proc.wait()
            print("the box rebooted (a new card's first boot names it and turns the read-only root on, then "
                  "reboots); powering it on again")
    except KeyboardInterrupt:
        pass
    finally:
        test.guest.cut_power()
        test.sim.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="boot-test's work dir (disk.img, vmlinuz, ...)")
    parser.add_argument("--vendor-key", type=Path, help="the vendor key the disk's image trusts")
    parser.add_argument("--try", dest="try_out", action="store_true", help="boot and leave it running")
    args = parser.parse_args()
    if args.try_out:
        return try_out(args.work)
    test = BootTest(args.work, args.vendor_key)
    print("\nboot-test", flush=True)
    test.run()
    ready, cuts = test.figures["ready"], test.figures["cut"]
    if ready:
        print(f"  READY {min(ready):.0f}-{max(ready):.0f} s after power on over {len(ready)} boots"
              + (f"; a power cut to sending again {min(cuts):.0f}-{max(cuts):.0f} s" if cuts else ""))
    failed = [what for what, ok, _ in test.report if not ok]
    if failed or not test.report:
        print(f"boot-test: FAILED ({'; '.join(failed) or 'nothing ran'}); the consoles are in {args.work}")
        return 1
    print("boot-test: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
