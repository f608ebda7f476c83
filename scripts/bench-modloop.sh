#!/usr/bin/env bash
# Macro benchmark: the modloop of the installed Debian kernel (its whole module tree and
# /lib/firmware, full size) built by `mkinitfs --modloop` against plain `mksquashfs` of the same
# tree in the same layout, side by side in one run, for xz and zstd. Runs alternate (ours, theirs,
# ours, ...) so drift in the machine's state hits both alike; prints medians, the ratio, sizes.
#
# usage: scripts/bench-modloop.sh MKINITFS_BINARY [RUNS] [KERNELVERSION]
#   RUNS defaults to 3 (an xz build of Debian's ~400 MiB tree takes about a minute on 2 cores).
set -euo pipefail

die() { echo "bench-modloop: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: $0 MKINITFS_BINARY [RUNS] [KERNELVERSION]"
ours=$(readlink -f "$1")
runs=${2:-3}
kver=${3:-$(ls /lib/modules | sort -V | tail -1)}
[ -x "$ours" ] || die "$1: not an executable"
[ -f "/lib/modules/$kver/modules.dep" ] || die "/lib/modules/$kver: no modules.dep"
command -v mksquashfs >/dev/null || die "mksquashfs not found (make deps)"

work=$(mktemp -d /var/tmp/bench-modloop.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The reference: Alpine's layout staged with cp, then mksquashfs with the same settings.
ref_tree() {
    rm -rf "$work/tree"
    mkdir -p "$work/tree/modules"
    cp -a "/lib/modules/$kver" "$work/tree/modules/$kver"
    [ -d /lib/firmware ] && cp -a /lib/firmware "$work/tree/modules/firmware"
    mksquashfs "$work/tree" "$1" -comp "$2" -all-root -no-xattrs -noappend -no-progress -quiet \
        -all-time 0 -mkfs-time 0 >/dev/null
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }

echo "   kernel $kver: $(du -sh "/lib/modules/$kver" | cut -f1) of modules, $(du -sh /lib/firmware 2>/dev/null | cut -f1) of firmware; $runs runs each"
for comp in zstd xz; do
    : >"$work/ours.t"; : >"$work/ref.t"
    for _ in $(seq "$runs"); do
        t0=$(now); SOURCE_DATE_EPOCH=0 "$ours" -q --modloop "$work/ours.img" --modloop-comp "$comp" "$kver"; t1=$(now)
        awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}' >>"$work/ours.t"
        t0=$(now); ref_tree "$work/ref.img" "$comp"; t1=$(now)
        awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}' >>"$work/ref.t"
    done
    o=$(median <"$work/ours.t"); r=$(median <"$work/ref.t")
    os=$(stat -c %s "$work/ours.img"); rs=$(stat -c %s "$work/ref.img")
    awk -v c="$comp" -v o="$o" -v r="$r" -v os="$os" -v rs="$rs" 'BEGIN {
        printf "   %-5s mkinitfs --modloop %7.1f s %7.1f MiB | cp + mksquashfs %7.1f s %7.1f MiB | time ratio %.2f, size ratio %.3f\n",
            c, o, os / 1048576, r, rs / 1048576, o / r, os / rs }'
done
