#!/usr/bin/env bash
# make bench: every benchmark side by side with its reference, in one run.
#  1. apk: 96 packages into a tmpfs, ours vs apk-tools 2.14.4 (chroot), medians and ratio; then
#     the real 23k-package indexes (load both, solve a small and a large world): time and peak RSS;
#  2. mkinitfs: default features vs Debian's mkinitramfs (MODULES=most, MODULES=dep); the modloop
#     of the whole Debian module tree vs mksquashfs of the same tree (xz and zstd);
#  3. the init's boot timeline (qemu, TCG) for an alpine-base medium and for the life-cycle
#     appliance (alpine-base openssh chrony lbu, signed overlay);
#  4. sizes: binaries, default initramfs, media.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${PROJECT_OUT:-$here/out}
shared=${SHARED_DIR:-$here/../shared}
bin=$out/bin
demo=$here/target/x86_64-unknown-linux-gnu/release/demo
echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"

echo; echo "== 1. apk"
"$here/scripts/bench-apk.sh" "$bin/apk" "${BENCH_RUNS:-7}"
"$here/scripts/bench-apk-indexes.sh" "$bin/apk" "${BENCH_RUNS_INDEXES:-5}"

echo; echo "== 2. mkinitfs"
"$here/scripts/bench-mkinitfs.sh" "$bin/mkinitfs" "$bin/init" "${BENCH_RUNS_MKINITFS:-5}"

echo; echo "== 2b. modloop (full Debian module tree, ours vs mksquashfs of the same tree)"
"$here/scripts/bench-modloop.sh" "$bin/mkinitfs" "${BENCH_RUNS_MODLOOP:-3}"

echo; echo "== 3. boot timelines (qemu TCG: slower than hardware, compare phases, not totals)"
work=$(mktemp -d /tmp/bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
kver=$(ls /lib/modules | sort -V | tail -1)
mkdir -p "$work/keys"
tar xzf "$shared/fixtures/alpine-minirootfs-3.20.3-x86_64.tar.gz" -C "$work" ./etc/apk/keys
"$bin/apk" keygen -q --rsa 2048 -o "$work/medium.rsa"
cp "$work/medium.rsa.pub" "$work"/etc/apk/keys/* "$work/keys/"
"$bin/mkinitfs" -q --keys-dir "$work/keys" -o "$work/initramfs" "$kver"
"$bin/mkimage" -q -o "$work/base.img" --format vfat --repository "$shared/fixtures/alpine-3.19.1/apks" \
    --keys-dir "$work/keys" --world alpine-base --kernel "/boot/vmlinuz-$kver" --initramfs "$work/initramfs" \
    --sign-key "$work/medium.rsa"
echo "-- alpine-base (no overlay)"
"$demo" --timeline "$work/base.img" "$work/initramfs"
"$here/scripts/build-appliance.sh" jumphost > "$work/appliance.log" 2>&1 || { cat "$work/appliance.log"; exit 1; }
echo "-- life-cycle appliance (alpine-base openssh chrony lbu, signed overlay)"
"$demo" --timeline "$out/appliance/jumphost.img" "$out/appliance/jumphost.initramfs"

echo; echo "== 4. sizes"
for b in apk init lbu mkinitfs mkimage; do printf '   %-10s %8s KiB (static)\n' "$b" $(( $(stat -c %s "$bin/$b") / 1024 )); done
printf '   %-38s %8s KiB\n' "default initramfs (zstd, $kver)" $(( $(stat -c %s "$work/initramfs") / 1024 ))
printf '   %-38s %8s KiB (apparent: %s KiB)\n' "alpine-base medium (vfat)" $(( $(du -k "$work/base.img" | cut -f1) )) $(( $(stat -c %s "$work/base.img") / 1024 ))
printf '   %-38s %8s KiB (apparent: %s KiB)\n' "jumphost appliance medium (vfat)" $(( $(du -k "$out/appliance/jumphost.img" | cut -f1) )) $(( $(stat -c %s "$out/appliance/jumphost.img") / 1024 ))
