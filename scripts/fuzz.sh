#!/usr/bin/env bash
# Run every cargo-fuzz target briefly (FUZZ_SECONDS each, default 20). Installs cargo-fuzz when
# missing. cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-20}
unset RUSTFLAGS   # the static-binary flags of the Makefile do not mix with sanitizers
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
cd fuzz
# Seed corpora from real inputs so the fuzzers start from valid structures.
seed() { mkdir -p "corpus/$1"; cp -f "${@:2}" "corpus/$1/" 2>/dev/null || true; }
fx=../../shared/fixtures
seed package $fx/alpine-3.19.1/apks/x86_64/busybox-binsh-*.apk $fx/abuild-repo/libglvnd-0-r1.apk
seed index $fx/abuild-repo/APKINDEX.tar.gz
mkdir -p corpus/version corpus/dependency corpus/pkginfo corpus/installed_db corpus/overlay_text corpus/overlay_signature \
    corpus/kmod_metadata corpus/initramfs
mkdir -p corpus/overlay_archive seedroot/etc/apk && printf 'hi\n' > seedroot/etc/motd && ln -sf motd seedroot/etc/issue \
    && printf 'alpine-base\n' > seedroot/etc/apk/world && tar --format=gnu -C seedroot -czf corpus/overlay_archive/seed etc && rm -rf seedroot
mkdir -p corpus/boot_network && printf 'ip=10.0.2.15::10.0.2.2:255.255.255.0:fw1:eth0:off:10.0.2.3 BOOTIF=01-52-54-00-12-34-56 apkovl=http://10.0.2.2/{MAC}.apkovl.tar.gz modloop=https://u:p@x/m#f' > corpus/boot_network/seed
printf '42\n' > corpus/overlay_text/seed
printf '# apkovl-deleted v1\netc/motd\netc/we\\\\ird\\nname\n' > corpus/overlay_text/manifest
printf 'overlay\0apkovl-signature v2\nkey-name: fuzz.pub\nkey-id: 00\nsha256: 00\nhost: fw1\ntime: 1\ngeneration: 2\nsignature: AA==\n' > corpus/overlay_signature/seed
printf '1.2.3_rc1-r4\n1.2.3' > corpus/version/seed
printf 'so:libc.musl-x86_64.so.1 busybox>=1.36 !vlan foo@edge~2' > corpus/dependency/seed
printf 'pkgname = x\npkgver = 1.0-r0\ndepend = a b>=2\nprovides = so:x=1\n' > corpus/pkginfo/seed
printf 'C:Q1jeRAF+EpaHQSmKZxtA9fmuD6Hv8=\nP:x\nV:1\nF:etc\nR:f\na:0:0:600\nZ:Q1jeRAF+EpaHQSmKZxtA9fmuD6Hv8=\n\n' > corpus/installed_db/seed
printf 'kernel/fs/fat/vfat.ko: kernel/fs/fat/fat.ko\nkernel/fs/fat/fat.ko:\n\0alias fs-vfat vfat\n\0softdep vfat pre: nls_cp437\n\0kernel/fs/ext4/ext4.ko\n\0fs-vfat' > corpus/kmod_metadata/seed
newc() { printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' "$@"; }
{ newc 1 0x81A4 0 0 1 0 2 0 0 0 0 2 0; printf 'a\0xy\0\0'; newc 0 0 0 0 1 0 0 0 0 0 0 11 0; printf 'TRAILER!!!\0\0\0\0'; } > corpus/initramfs/seed
status=0
for t in $(cargo fuzz list); do
    echo "== fuzz $t (${secs}s)"
    if ! cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -max_len=262144 2>&1 | tail -4; then
        status=1
    fi
done
exit $status
