#!/usr/bin/env bash
# Macro benchmark: our mkinitfs (default features) against Debian's mkinitramfs (MODULES=most and
# MODULES=dep) on the same installed kernel. Runs alternate (ours, most, dep, ours, ...) so drift
# in the machine's state hits all three alike; prints medians, ratios, image sizes, machine, date.
#
# usage: scripts/bench-mkinitfs.sh MKINITFS_BINARY INIT_BINARY [RUNS] [KERNELVERSION]
#   RUNS defaults to 5; KERNELVERSION to the newest /lib/modules/<kver> with a /boot/vmlinuz.
# Needs root (mkinitramfs reads root-only files) and initramfs-tools (make deps).
set -euo pipefail

die() { echo "bench-mkinitfs: $*" >&2; exit 1; }

[ $# -ge 2 ] || die "usage: $0 MKINITFS_BINARY INIT_BINARY [RUNS] [KERNELVERSION]"
ours=$(readlink -f "$1")
init=$(readlink -f "$2")
runs=${3:-5}
kver=${4:-}
[ -x "$ours" ] || die "$1: not an executable"
[ -f "$init" ] || die "$2: not a file"
command -v mkinitramfs >/dev/null || die "mkinitramfs not found (apt-get install initramfs-tools)"
if [ -z "$kver" ]; then
    for d in /lib/modules/*; do
        k=${d##*/}
        [ -f "$d/modules.dep" ] && [ -f "/boot/vmlinuz-$k" ] && kver=$k
    done
fi
[ -n "$kver" ] && [ -d "/lib/modules/$kver" ] || die "no installed kernel found (linux-image-amd64)"

work=$(mktemp -d /tmp/bench-mkinitfs.XXXXXX)
# Both builders write their images to a tmpfs: the comparison measures building, not the disk
# (ours fsyncs its output, mkinitramfs does not; on tmpfs fsync costs nothing).
mount -t tmpfs -o size=1g tmpfs "$work" 2>/dev/null || true
trap 'umount -l "$work" 2>/dev/null; rm -rf "$work"' EXIT

# Debian config dirs: a copy of /etc/initramfs-tools with MODULES set, so the host's own
# configuration (hooks, conf.d, modules) is used but the host's /etc is never touched.
make_confdir() {
    local dir="$work/conf-$1"
    mkdir -p "$dir"
    if [ -d /etc/initramfs-tools ]; then
        cp -a /etc/initramfs-tools/. "$dir/"
    fi
    touch "$dir/initramfs.conf"
    sed -i '/^MODULES=/d' "$dir/initramfs.conf"
    echo "MODULES=$1" >>"$dir/initramfs.conf"
    echo "$dir"
}
conf_most=$(make_confdir most)
conf_dep=$(make_confdir dep)

# MODULES=dep needs the block device and filesystem of / (read from /proc/mounts, then checked
# with blkid); in containers and chroots / is often not a block device (overlay, tmpfs, 9p) and
# initramfs-tools has no setting to name it instead. Probe once and report clearly if it fails.
dep_ok=1
if ! mkinitramfs -d "$conf_dep" -o "$work/probe-dep.img" "$kver" >"$work/dep.log" 2>&1; then
    dep_ok=0
    echo "bench-mkinitfs: MODULES=dep cannot run here (/ is $(awk '$2 == "/" {print $1 " (" $3 ")"; exit}' /proc/mounts)):" >&2
    sed 's/^/    /' "$work/dep.log" >&2
fi

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
now() { date +%s.%N; }
time_run() { # label cmd... ; appends seconds to $work/<label>.times
    local label=$1; shift
    local t0 t1
    t0=$(now)
    "$@" >"$work/$label.log" 2>&1 || { cat "$work/$label.log" >&2; die "$label run failed"; }
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f\n", b - a}' >>"$work/$label.times"
}

for i in $(seq 1 "$runs"); do
    time_run ours "$ours" -q -i "$init" -o "$work/ours.img" "$kver"
    time_run most mkinitramfs -d "$conf_most" -o "$work/most.img" "$kver"
    if [ "$dep_ok" = 1 ]; then
        time_run dep mkinitramfs -d "$conf_dep" -o "$work/dep.img" "$kver"
    fi
    echo "bench-mkinitfs: round $i/$runs done" >&2
done

median() { sort -n "$1" | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
size() { stat -c %s "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", a / b}'; }

m_ours=$(median "$work/ours.times")
m_most=$(median "$work/most.times")
echo
echo "mkinitfs benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "kernel:  $kver, $runs runs each, alternating"
echo "load:    $load_start at start, $(cut -d' ' -f1-3 /proc/loadavg) at end (other work on the machine skews both sides)"
echo
printf '%-34s %10s %12s %10s\n' "builder" "median s" "image bytes" "vs ours"
printf '%-34s %10.3f %12d %10s\n' "mkinitfs (default features)" "$m_ours" "$(size "$work/ours.img")" "1.0x"
printf '%-34s %10.3f %12d %9sx\n' "mkinitramfs MODULES=most" "$m_most" "$(size "$work/most.img")" "$(ratio "$m_most" "$m_ours")"
if [ "$dep_ok" = 1 ]; then
    m_dep=$(median "$work/dep.times")
    printf '%-34s %10.3f %12d %9sx\n' "mkinitramfs MODULES=dep" "$m_dep" "$(size "$work/dep.img")" "$(ratio "$m_dep" "$m_ours")"
else
    printf '%-34s %10s %12s %10s\n' "mkinitramfs MODULES=dep" "n/a" "n/a" "n/a"
    echo "(MODULES=dep could not determine the root device here; see the message above)"
fi
