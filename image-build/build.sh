#!/usr/bin/env bash
# Build the SMS Genie SD-card image: Raspberry Pi OS Lite (bookworm, arm64) + stage-smsgenie.
#
#   TECH_PASSWORD='...' image-build/build.sh                  # pi-gen in docker (build-docker.sh)
#   TECH_PASSWORD='...' image-build/build.sh --native         # pi-gen on this Debian host, as root
#
# Settings (environment):
#   TECH_PASSWORD   the technician's login password (user "tech", console and sudo); required:
#                   the image has no default password
#   TECH_SSH_KEY    a public key file: SSH enabled, key-only logins for "tech"
#   VENDOR_PUB      the vendor's vendor.pub: its key goes into the box's config (else: fill in later)
#   VENDOR_KEYWORDS the vendor's signed forbidden-word list (smsgenie vendor sign-keywords --baseline OUT):
#                   imported at first start; without it the box refuses marketing until one is imported
#   PIGEN_REF       pi-gen branch or tag to build with (default: arm64, the bookworm 64-bit branch)
#   WORK            where pi-gen is checked out and builds (default: image-build/work)
# Output: image-build/deploy/*-smsgenie.img.xz, ready for Raspberry Pi Imager or dd (README.md).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
work="${WORK:-$here/work}"
ref="${PIGEN_REF:-arm64}"
native=0
[ "${1:-}" = "--native" ] && native=1
die() { echo "build.sh: $*" >&2; exit 1; }

tech_password="${TECH_PASSWORD:-}"
[ "${#tech_password}" -ge 10 ] ||
    die "set TECH_PASSWORD (10 characters or more): the image ships with no default password"
[ -z "${TECH_SSH_KEY:-}" ] || [ -f "$TECH_SSH_KEY" ] || die "TECH_SSH_KEY: no such file $TECH_SSH_KEY"
[ -z "${VENDOR_PUB:-}" ] || grep -q '^ed25519:' "$VENDOR_PUB" || die "VENDOR_PUB is not a vendor.pub file"
[ -z "${VENDOR_KEYWORDS:-}" ] || head -1 "$VENDOR_KEYWORDS" | grep -q '^# smsgenie keywords' ||
    die "VENDOR_KEYWORDS is not a signed keyword list (smsgenie vendor sign-keywords --baseline OUT)"
if [ "$native" = 1 ]; then
    [ "$(id -u)" = 0 ] || die "--native builds as root (pi-gen needs it)"
else
    docker info >/dev/null 2>&1 || die "docker is not running (or use --native on a Debian host)"
fi

echo "== pi-gen ($ref) in $work/pi-gen" >&2
mkdir -p "$work"
if [ ! -d "$work/pi-gen/.git" ]; then
    git clone --branch "$ref" https://github.com/RPi-Distro/pi-gen.git "$work/pi-gen"
fi
git -C "$work/pi-gen" fetch --quiet origin "$ref" && git -C "$work/pi-gen" checkout --quiet FETCH_HEAD

echo "== the wheel and the stage" >&2
stage="$work/pi-gen/stage-smsgenie"
rm -rf "$stage"
cp -a "$here/stage-smsgenie" "$stage"
files="$stage/00-smsgenie/files"
python3 -m venv "$work/build-venv"
"$work/build-venv/bin/pip" wheel --quiet --disable-pip-version-check --no-deps -w "$files/dist" "$repo"
[ -z "${VENDOR_PUB:-}" ] || cp "$VENDOR_PUB" "$files/vendor.pub"
[ -z "${VENDOR_KEYWORDS:-}" ] || cp "$VENDOR_KEYWORDS" "$files/vendor-keywords.txt"
touch "$work/pi-gen/stage2/SKIP_IMAGES"   # only our stage's image, not plain Lite

{
    echo "IMG_NAME=smsgenie"
    echo "RELEASE=bookworm"
    echo "DEPLOY_COMPRESSION=none"
    echo "STAGE_LIST=\"stage0 stage1 stage2 stage-smsgenie\""
    echo "TARGET_HOSTNAME=smsgenie"            # smsgenie-xxxx at first boot, from the device id
    echo "LOCALE_DEFAULT=zh_CN.UTF-8"
    echo "TIMEZONE_DEFAULT=Asia/Shanghai"
    echo "KEYBOARD_KEYMAP=us"
    echo "KEYBOARD_LAYOUT='English (US)'"
    echo "FIRST_USER_NAME=tech"
    echo "DISABLE_FIRST_BOOT_USER_RENAME=1"
    printf 'FIRST_USER_PASS=%q\n' "$tech_password"
    if [ -n "${TECH_SSH_KEY:-}" ]; then
        echo "ENABLE_SSH=1"
        printf 'PUBKEY_SSH_FIRST_USER=%q\n' "$(cat "$TECH_SSH_KEY")"
        echo "PUBKEY_ONLY_SSH=1"
    else
        echo "ENABLE_SSH=0"
    fi
} > "$work/pi-gen/config"
chmod 600 "$work/pi-gen/config"

echo "== building (an hour or more)" >&2
cd "$work/pi-gen"
if [ "$native" = 1 ]; then
    ./build.sh
else
    ./build-docker.sh
fi

img="$(find "$work/pi-gen/deploy" -name '*-smsgenie.img' -newer "$work/pi-gen/config" | sort | tail -n 1)"
[ -n "$img" ] || die "pi-gen made no *-smsgenie.img in $work/pi-gen/deploy"

echo "== data partition" >&2
"$here/add-data-partition" "$img"
sfdisk -l "$img"

mkdir -p "$here/deploy"
out="$here/deploy/$(basename "$img").xz"
xz -T0 -6 -c "$img" > "$out.part" && mv "$out.part" "$out"
(cd "$here/deploy" && sha256sum "$(basename "$out")" | tee "$(basename "$out").sha256")
echo "build.sh: $out (flash it: image-build/README.md)" >&2
