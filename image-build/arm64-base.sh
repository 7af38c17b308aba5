# shellcheck shell=bash
# Shared by smoke-arm64 and boot-test (sourced, as root): the cached Debian bookworm arm64 root file
# system they both start from, and the mounts a chroot into one needs.

# arm64_base: make sure the base exists; sets $cache and $base (a tar of the root file system).
# Built once with mmdebstrap, arm64 programs running through qemu-user-static and binfmt_misc.
arm64_base() {
    : "${stage:?the caller sets stage: the pi-gen stage 00-smsgenie directory}"
    local missing=() smoke_extra key packages
    local mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
    local security="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
    command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
    [ -x /usr/bin/qemu-aarch64-static ] || missing+=(qemu-user-static)
    command -v update-binfmts >/dev/null || missing+=(binfmt-support)
    command -v python3 >/dev/null || missing+=(python3)
    if [ "${#missing[@]}" -gt 0 ]; then
        command -v apt-get >/dev/null || { echo "install ${missing[*]} (Debian packages) first" >&2; return 1; }
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    fi
    update-binfmts --enable qemu-aarch64 2>/dev/null || true
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || { echo "qemu-aarch64 is not registered with binfmt_misc" >&2; return 1; }
    cache="${SMSGENIE_IMAGE_CACHE:-${HOME:-/root}/.cache/smsgenie-image}"
    mkdir -p "$cache/pip"
    # Raspberry Pi OS Lite has systemd and udev; Debian's minbase has not: added here.
    smoke_extra="systemd,systemd-sysv,udev"
    key="$( { echo "bookworm-arm64-minbase-v1 $smoke_extra"; cat "$stage/files/packages"; } | sha256sum | cut -c1-12)"
    base="$cache/bookworm-arm64-$key.tar"
    if [ -f "$base" ]; then
        printf '\n== base root filesystem: cached %s\n' "$base" >&2
        return 0
    fi
    printf '\n== base root filesystem: mmdebstrap bookworm arm64 (several minutes under emulation; cached after)\n' >&2
    packages="$(grep -v '^#' "$stage/files/packages" | tr -s ' \n' ',' | sed 's/,$//')"
    mmdebstrap --arch=arm64 --variant=minbase --include="$packages,$smoke_extra" \
        --aptopt='Acquire::Retries "3"' --dpkgopt='path-exclude=/usr/share/doc/*' \
        bookworm "${base%.tar}.part.tar" "deb $mirror bookworm main" "deb $security bookworm-security main"
    mv "${base%.tar}.part.tar" "$base"
}

# chroot_mounts ROOT: /proc, /sys, /dev, /dev/pts, the pip cache and DNS for a chroot into ROOT;
# chroot_unmount takes them down again (safe to call twice).
chroot_mounted=()
chroot_mounts() {
    local root="$1"
    mount -t proc proc "$root/proc"; chroot_mounted+=("$root/proc")
    local d
    for d in sys dev dev/pts; do
        mkdir -p "$root/$d"; mount --bind "/$d" "$root/$d"; chroot_mounted+=("$root/$d")
    done
    mkdir -p "$root/root/.cache/pip"; mount --bind "$cache/pip" "$root/root/.cache/pip"
    chroot_mounted+=("$root/root/.cache/pip")
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
}
chroot_unmount() {
    local i
    for ((i = ${#chroot_mounted[@]} - 1; i >= 0; i--)); do umount -l "${chroot_mounted[$i]}" 2>/dev/null || true; done
    chroot_mounted=()
}
