#!/usr/bin/env bash
# make bench: every benchmark side by side with its reference, in one run.
#  1. apk: 96 packages into a tmpfs, ours vs apk-tools 2.14.4 (chroot), medians and ratio; then
#     the real 23k-package indexes (load both, solve a small and a large world): time and peak RSS;
#  2. mkinitfs: default features vs Debian's mkinitramfs (MODULES=most, MODULES=dep); the modloop
#     of the whole Debian module tree vs mksquashfs of the same tree (xz and zstd);
#  3. boot (qemu, TCG, -smp 1 and 2): alpine-base (from a medium and netbooted: ip=dhcp, the
#     repository and the overlay over HTTP) and the jumphost appliance, each phase of the
#     init's timeline, kernel start -> /sbin/init and power-on -> OpenRC's default runlevel,
#     beside a stand-in that installs nothing (the floor), with ratios; the initramfs's zstd
#     levels (size vs the kernel's unpack);
#  4. sizes: binaries, default initramfs, media.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${PROJECT_OUT:-$here/out}
shared=${SHARED_DIR:-$here/../shared}
bin=$out/bin
echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"

echo; echo "== 1. apk"
"$here/scripts/bench-apk.sh" "$bin/apk" "${BENCH_RUNS:-7}"
"$here/scripts/bench-apk-indexes.sh" "$bin/apk" "${BENCH_RUNS_INDEXES:-5}"

echo; echo "== 2. mkinitfs"
"$here/scripts/bench-mkinitfs.sh" "$bin/mkinitfs" "$bin/init" "${BENCH_RUNS_MKINITFS:-5}"

echo; echo "== 2b. modloop (full Debian module tree, ours vs mksquashfs of the same tree)"
"$here/scripts/bench-modloop.sh" "$bin/mkinitfs" "${BENCH_RUNS_MODLOOP:-3}"

echo; echo "== 3. boot (qemu TCG: slower than hardware; compare phases and ratios, not totals)"
# alpine-base and the jumphost appliance (appliances/jumphost) vs the stand-ins that install
# nothing (each case's own), -smp 1 and 2, medians of BENCH_RUNS_BOOT boots; then the initramfs's zstd levels.
work=$(mktemp -d /tmp/bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$here/target/x86_64-unknown-linux-gnu/release/bootbench" --runs "${BENCH_RUNS_BOOT:-5}" \
    --levels "${BENCH_ZSTD_LEVELS:-1,3,9,19}"
kver=$(ls /lib/modules | sort -V | tail -1)
mkdir -p "$work/keys"
tar xzf "$shared/fixtures/alpine-minirootfs-3.20.3-x86_64.tar.gz" -C "$work" ./etc/apk/keys
"$bin/apk" keygen -q --rsa 2048 -o "$work/medium.rsa"
cp "$work/medium.rsa.pub" "$work"/etc/apk/keys/* "$work/keys/"
"$bin/mkinitfs" -q --keys-dir "$work/keys" -o "$work/initramfs" "$kver"
"$bin/mkimage" -q -o "$work/base.img" --format vfat --repository "$shared/fixtures/alpine-3.19.1/apks" \
    --keys-dir "$work/keys" --world alpine-base --kernel "/boot/vmlinuz-$kver" --initramfs "$work/initramfs" \
    --sign-key "$work/medium.rsa"

echo; echo "== 4. sizes"
for b in apk init lbu mkinitfs mkimage; do printf '   %-10s %8s KiB (static)\n' "$b" $(( $(stat -c %s "$bin/$b") / 1024 )); done
printf '   %-38s %8s KiB\n' "default initramfs (zstd, $kver)" $(( $(stat -c %s "$work/initramfs") / 1024 ))
printf '   %-38s %8s KiB (apparent: %s KiB)\n' "alpine-base medium (vfat)" $(( $(du -k "$work/base.img" | cut -f1) )) $(( $(stat -c %s "$work/base.img") / 1024 ))
