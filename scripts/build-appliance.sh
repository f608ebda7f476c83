#!/usr/bin/env bash
# Build a bootable medium for an appliance profile (appliances/NAME): the way an admin would on a
# workstation, with the project's own tools only.
#   1. apk installs the profile's world into a scratch root (Alpine's packages from ALPINE_MIRROR,
#      default the alpine-3.19.1 medium fixture, and the project's repository out/repo);
#   2. the profile's files are copied over it;
#   3. lbu --root packages what differs from the packages into NAME.apkovl.tar.gz, signed;
#   4. mkinitfs builds the initramfs holding the index and overlay keys;
#   5. mkimage writes the vfat medium: boot repository (closure of the world, index re-signed with
#      the medium key), kernel, initramfs, overlay and its signature.
# Keys live in out/keys and are made on first use: medium.rsa (RSA, so that the stock apk-tools
# of the booted system can verify the medium's index too) and overlay.key (ed25519).
# ALPINE_MIRROR: where Alpine's packages come from, one or more repositories separated by spaces,
# each a directory (DIR/x86_64/APKINDEX.tar.gz) or an http(s):// URL, e.g.
#   ALPINE_MIRROR="https://dl-cdn.alpinelinux.org/alpine/v3.19/main https://dl-cdn.alpinelinux.org/alpine/v3.19/community"
# Downloads are verified against Alpine's keys and shared by apk and mkimage through one cache.
# usage: scripts/build-appliance.sh NAME    -> out/appliance/NAME.img (+ NAME.initramfs)
set -euo pipefail
name=${1:?usage: build-appliance.sh NAME}
here=$(cd "$(dirname "$0")/.." && pwd)
out=${PROJECT_OUT:-$here/out}
shared=${SHARED_DIR:-$here/../shared}
prof=$here/appliances/$name
bin=$out/bin
keys=$out/keys
dest=$out/appliance
[ -d "$prof" ] || { echo "build-appliance: $prof: no such appliance profile" >&2; exit 1; }
for b in apk lbu mkinitfs mkimage; do [ -x "$bin/$b" ] || { echo "build-appliance: $bin/$b missing: run make first" >&2; exit 1; }; done
[ -f "$out/repo/x86_64/APKINDEX.tar.gz" ] || { echo "build-appliance: $out/repo missing: run make first" >&2; exit 1; }
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$here" log -1 --format=%ct 2>/dev/null || date +%s)}

work=$(mktemp -d /tmp/build-appliance.XXXXXX)
trap 'umount -l "$work/root/proc" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$keys" "$dest" "$work/index-keys" "$work/ovl-keys"

mirror=${ALPINE_MIRROR:-$shared/fixtures/alpine-3.19.1/apks}
repos=() net=(--no-network) cache=()
for r in $mirror; do
    repos+=(--repository "$r")
    case $r in http://*|https://*) net=() cache=(--cache-dir "$work/cache") ;; esac
done
[ ${#repos[@]} -gt 0 ] || { echo "build-appliance: ALPINE_MIRROR is empty" >&2; exit 1; }

[ -f "$keys/medium.rsa" ] || "$bin/apk" keygen -q --rsa 2048 -o "$keys/medium.rsa"
[ -f "$keys/overlay.key" ] || "$bin/apk" keygen -q -o "$keys/overlay.key"

echo "== keys: Alpine's, the project's build key, the medium key"
tar xzf "$shared/fixtures/alpine-minirootfs-3.20.3-x86_64.tar.gz" -C "$work" ./etc/apk/keys
cp "$work"/etc/apk/keys/* "$work/index-keys/"
cp "$keys/medium.rsa.pub" "$keys/project-build.rsa.pub" "$work/index-keys/"
cp "$keys/overlay.key.pub" "$work/ovl-keys/"

echo "== installing $(tr '\n' ' ' < "$prof/world")into a scratch root"
mkdir -p "$work/root/etc/apk"
cp "$work/index-keys/"* "$work/root/etc/apk/keys/" 2>/dev/null || { mkdir -p "$work/root/etc/apk/keys"; cp "$work/index-keys/"* "$work/root/etc/apk/keys/"; }
# shellcheck disable=SC2046
"$bin/apk" add -q --root "$work/root" --initdb "${net[@]}" "${cache[@]}" \
    "${repos[@]}" --repository "$out/repo" $(cat "$prof/world")

echo "== applying the profile's files"
cp -a "$prof/rootfs/." "$work/root/"
# Reproducible: nothing in the overlay is newer than SOURCE_DATE_EPOCH (files made by this build,
# e.g. etc/apk/keys, would otherwise carry today's time).
find "$work/root" -xdev -newermt "@$SOURCE_DATE_EPOCH" -print0 | xargs -0r touch -h -d "@$SOURCE_DATE_EPOCH"

echo "== lbu package (signed with $keys/overlay.key)"
SIGNING_KEY="$keys/overlay.key" "$bin/lbu" --root "$work/root" package "$work/$name.apkovl.tar.gz"
"$bin/lbu" --root "$work/root" list | sed 's/^/   /'

echo "== mkinitfs"
kver=$(ls /lib/modules | sort -V | tail -1)
"$bin/mkinitfs" -q -F "base virtio ata scsi nvme usb mmc cdrom ext4 vfat squashfs network" \
    --keys-dir "$work/index-keys" --ovl-keys-dir "$work/ovl-keys" -o "$dest/$name.initramfs" "$kver"

echo "== mkimage"
"$bin/mkimage" -o "$dest/$name.img" --format vfat --label "$(echo "$name" | tr a-z A-Z | cut -c1-11)" \
    "${repos[@]}" --repository "$out/repo" "${cache[@]}" \
    --keys-dir "$work/index-keys" --world "$(tr '\n' ' ' < "$prof/world")" \
    --kernel "/boot/vmlinuz-$kver" --initramfs "$dest/$name.initramfs" \
    --apkovl "$work/$name.apkovl.tar.gz" --sign-key "$keys/medium.rsa" \
    --cmdline "$(cat "$prof/cmdline")"
cp "/boot/vmlinuz-$kver" "$dest/$name.vmlinuz"
echo "$dest/$name.img: $(du -h --apparent-size "$dest/$name.img" | cut -f1) (write it to a USB stick with: dd if=$dest/$name.img of=/dev/sdX bs=4M conv=fsync)"
