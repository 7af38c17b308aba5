#!/bin/bash
# Install SMS Genie on Raspberry Pi OS (or Debian) bookworm, as root. One script for three callers:
#   - pi-gen, inside the image being built (stage-smsgenie/00-smsgenie/00-run.sh, via on_chroot);
#   - image-build/smoke-arm64, inside a Debian arm64 chroot;
#   - a technician, on a Pi that already runs Raspberry Pi OS Lite:
#       sudo ./install.sh DIR      # DIR holds this script's rootfs/, packages and dist/smsgenie-*.whl
# It is safe to run again: it upgrades the program and keeps the data dir and the config.
set -euo pipefail
src="$(cd "${1:-$(dirname "$0")}" && pwd)"
prefix=/opt/smsgenie
data=/var/lib/smsgenie
user=smsgenie

say() { echo "install.sh: $*" >&2; }
die() { echo "install.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"
wheel="$(find "$src/dist" -maxdepth 1 -name 'smsgenie-*.whl' | sort -V | tail -n 1)"
[ -n "$wheel" ] || die "no smsgenie-*.whl in $src/dist (build one with: pip wheel --no-deps -w dist .)"

# --- Debian packages (pi-gen installed 00-packages already; an existing Pi may lack some) -------
mapfile -t wanted < <(grep -v '^#' "$src/packages" | tr -s ' ' '\n' | sed '/^$/d')
missing=()
for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- the service user and its groups ------------------------------------------------------------
# dialout: the modem's AT port; i2c: the OLED; gpio: the buttons and the modem's power pin.
for g in dialout i2c gpio; do
    getent group "$g" >/dev/null || groupadd --system "$g"
done
if ! id "$user" >/dev/null 2>&1; then
    useradd --system --user-group --home-dir "$data" --no-create-home --shell /usr/sbin/nologin "$user"
fi
usermod -a -G dialout,i2c,gpio "$user"
install -d -m 0700 -o "$user" -g "$user" "$data"
install -d -m 0750 -o root -g "$user" /etc/smsgenie

# --- the program: one venv per release, "current" points at the one that runs --------------------
version="$(basename "$wheel" | cut -d- -f2)"
release="$prefix/releases/$version"
say "installing SMS Genie $version into $release"
install -d -m 0755 "$prefix/releases"
rm -rf "$release.partial"
python3 -m venv "$release.partial"
pip=("$release.partial/bin/python" -m pip --quiet --disable-pip-version-check)
"${pip[@]}" install "$wheel"
# The pin libraries this board takes (appliance/board.py): "pi" = lgpio and RPi.GPIO, "pi5" = lgpio
# alone (a Pi 5), none off a Pi. RPi.GPIO comes as source only: its wheel is built once and kept in
# $wheelhouse, where updates (no network, no compiler) find it.
plan="$("$release.partial/bin/python" -m appliance.board)"
read -r extra rpi_gpio <<<"$plan"
wheelhouse="$prefix/wheelhouse"
if [ -n "${rpi_gpio:-}" ]; then
    install -d -m 0755 "$wheelhouse"
    # --use-pep517: RPi.GPIO has no pyproject.toml; this builds it with setuptools and wheel of its own
    build=("${pip[@]}" wheel --use-pep517 --no-deps -w "$wheelhouse" "$rpi_gpio")
    # built on an earlier run, or in pip's cache: no compiler needed
    if ! "${build[@]}" --no-index --find-links "$wheelhouse" 2>/dev/null && ! "${build[@]}" 2>/dev/null; then
        say "building $rpi_gpio (source only): gcc and python3-dev for the build, removed after"
        installed() { dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' | awk '$1 == "ii" {print $2}' | sort; }
        before="$(installed)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev python3-dev \
            >/dev/null
        built=0
        "${build[@]}" && built=1
        mapfile -t added < <(comm -13 <(echo "$before") <(installed))
        if [ "${#added[@]}" -gt 0 ]; then
            DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "${added[@]}" >/dev/null
        fi
        [ "$built" = 1 ] || die "$rpi_gpio did not build (its error is above): check the network and apt's sources, then run install.sh again"
    fi
fi
own=()
[ -d "$wheelhouse" ] && own=(--find-links "$wheelhouse")
"${pip[@]}" install "${own[@]}" "$wheel${extra:+[$extra]}"
say "pin libraries: ${extra:-none (not a Pi)}${rpi_gpio:+ (with $rpi_gpio)}"
"$release.partial/bin/smsgenie" --help >/dev/null
rm -rf "$release"
mv "$release.partial" "$release"
# python3 -m venv wrote absolute paths of the .partial dir into the scripts' #! lines
grep -rlF "$release.partial" "$release/bin" | xargs -r sed -i "s|$release.partial|$release|g"
ln -sfn "releases/$version" "$prefix/current.new"
mv -T "$prefix/current.new" "$prefix/current"
ln -sfn "$prefix/current/bin/smsgenie" /usr/local/bin/smsgenie

# --- files into place: units, udev rules, first-boot scripts ------------------------------------
cp -r --preserve=mode "$src/rootfs/." /
chmod 0755 /opt/smsgenie/lib/*
if [ ! -e /etc/smsgenie/config.toml ]; then
    install -m 0640 -o root -g "$user" /etc/smsgenie/config.toml.example /etc/smsgenie/config.toml
    if [ -f "$src/vendor.pub" ]; then  # the vendor's public key, if the image is built with one
        sed -i "s|^public_key = .*|public_key = \"$(tr -d '\n' < "$src/vendor.pub")\"|" /etc/smsgenie/config.toml
    fi
fi
if [ -f "$src/vendor-keywords.txt" ]; then  # the vendor's signed word list: the daemon imports it at start
    install -m 0644 "$src/vendor-keywords.txt" /etc/smsgenie/vendor-keywords.txt
fi

# --- Raspberry Pi settings: I2C (the OLED), the UART (a HAT's AT port), no serial console --------
# Written here rather than through raspi-config, which also pokes the running kernel (dtparam,
# modprobe) and so fails inside an image being built.
boot=/boot/firmware
[ -f "$boot/config.txt" ] || boot=/boot
if [ -f "$boot/config.txt" ]; then
    set_boot_config() {  # KEY=VALUE: replace any line setting KEY (commented out or not), else append
        local key="${1%=*}"
        if grep -qE "^#?[[:space:]]*${key}=" "$boot/config.txt"; then
            sed -i -E "s|^#?[[:space:]]*${key}=.*|$1|" "$boot/config.txt"
        else
            printf '[all]\n%s\n' "$1" >> "$boot/config.txt"
        fi
    }
    set_boot_config dtparam=i2c_arm=on
    set_boot_config enable_uart=1
    grep -qx i2c-dev /etc/modules 2>/dev/null || echo i2c-dev >> /etc/modules
    if [ -f "$boot/cmdline.txt" ]; then
        # the UART is the modem's, not a login console's
        sed -i -E 's/console=(serial0|ttyAMA0|ttyS0),[0-9]+ ?//g' "$boot/cmdline.txt"
        # Releases of Raspberry Pi OS that grow the root from the initramfs do it when cmdline.txt
        # says "resize"; the card's free space is the data partition's (smsgenie-datapart.service).
        sed -i -E 's/(^| )resize( |$)/\1/; s/ +$//' "$boot/cmdline.txt"
    fi
    systemctl disable serial-getty@ttyS0.service serial-getty@ttyAMA0.service >/dev/null 2>&1 || true
    say "I2C and the UART on, serial console and root resize off ($boot/config.txt, cmdline.txt)"
else
    say "no $boot/config.txt (not Raspberry Pi OS): I2C and the UART are left as they are"
fi

# --- services: ours on, what a counter box does not need off -------------------------------------
systemctl enable smsgenie.service smsgenie-firstboot.service smsgenie-update.path avahi-daemon.service
if [ "${SMSGENIE_DATA_PARTITION:-0}" = 1 ]; then
    systemctl enable smsgenie-datapart.service
fi
for unit in bluetooth.service hciuart.service triggerhappy.service ModemManager.service \
            dphys-swapfile.service apt-daily.timer apt-daily-upgrade.timer man-db.timer cups.service; do
    systemctl disable "$unit" >/dev/null 2>&1 || true
done
systemctl mask ModemManager.service >/dev/null 2>&1 || true  # it would grab the modem's AT port

# The data partition (the image has one; image-build/build.sh adds it): mounted on the data dir;
# nofail so the box still boots and says what is wrong (smsgenie.service will not start without it:
# RequiresMountsFor). On a Pi installed by hand: SMSGENIE_DATA_PARTITION=1 once the card has
# 256 MiB unpartitioned at its end (/opt/smsgenie/lib/datapart makes the partition at boot);
# without it the data dir stays on the root file system, which must then stay writable.
if [ "${SMSGENIE_DATA_PARTITION:-0}" = 1 ] && ! grep -q "LABEL=smsgenie-data" /etc/fstab 2>/dev/null; then
    echo "LABEL=smsgenie-data $data ext4 defaults,noatime,data=journal,nofail,x-systemd.device-timeout=20s 0 2" \
        >> /etc/fstab
fi
say "done: SMS Genie $version; config /etc/smsgenie/config.toml; data $data"
