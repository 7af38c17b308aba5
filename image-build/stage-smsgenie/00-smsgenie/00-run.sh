#!/bin/bash -e
# pi-gen runs this on the build host with ROOTFS_DIR set, after installing 00-packages.
# The install itself is files/install.sh, run inside the image: the same script the smoke test
# (image-build/smoke-arm64) runs in an arm64 chroot and a technician runs on an existing Pi.
# image-build/build.sh has put the wheel (files/dist/) and, if given, files/vendor.pub here.
install -d "${ROOTFS_DIR}/tmp/smsgenie-install"
cp -a files/. "${ROOTFS_DIR}/tmp/smsgenie-install/"
on_chroot << CHROOT
SMSGENIE_DATA_PARTITION=1 bash /tmp/smsgenie-install/install.sh /tmp/smsgenie-install
CHROOT
rm -rf "${ROOTFS_DIR}/tmp/smsgenie-install"
