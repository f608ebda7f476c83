#!/usr/bin/env bash
# apk install benchmark: the 96 installable packages of the alpine-3.19.1 medium into a fresh
# tmpfs, with our static apk and with the real apk-tools (2.14.4, Alpine minirootfs, chroot),
# alternating, RUNS times each. Prints the medians and the ratio ours/apk-tools.
# Usage: bench-apk.sh APK_BIN [RUNS]
set -euo pipefail
APK=$(readlink -f "$1")
RUNS=${2:-7}
HERE=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED_DIR:-$HERE/../shared}
FIX=$SHARED/fixtures
W=$(mktemp -d /tmp/bench-apk.XXXXXX)
O=$W/oracle
cleanup() {
    for m in "$O/target" "$O/media/apks" "$W/ours"; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$O" "$W/ours"
tar xzf "$FIX/alpine-minirootfs-3.20.3-x86_64.tar.gz" -C "$O"
mkdir -p "$O/media/apks" "$O/target"
mount --bind "$FIX/alpine-3.19.1/apks" "$O/media/apks"
PKGS=$(tar xzf "$FIX/alpine-3.19.1/apks/x86_64/APKINDEX.tar.gz" -O APKINDEX 2>/dev/null | sed -n 's/^P://p' | grep -vxE 'vlan|bonding|bridge|network-extras' | sort -u)
[ "$(echo "$PKGS" | wc -l)" = 96 ] || { echo "expected 96 packages" >&2; exit 1; }

now() { date +%s%N; }
fresh() { umount -l "$1" 2>/dev/null || true; mount -t tmpfs tmpfs "$1"; mkdir -p "$1/etc/apk"; cp -a "$O/etc/apk/keys" "$1/etc/apk/"; }
ours=(); theirs=()
for i in $(seq "$RUNS"); do
    fresh "$W/ours"
    t0=$(now); "$APK" add -q --root "$W/ours" --initdb --no-network --repository "$FIX/alpine-3.19.1/apks" $PKGS >/dev/null; t1=$(now)
    ours+=($(( (t1 - t0) / 1000 )))
    umount -l "$W/ours/proc" 2>/dev/null || true
    fresh "$O/target"
    t0=$(now); chroot "$O" apk add -q --root /target --initdb --no-network --repository /media/apks $PKGS >/dev/null; t1=$(now)
    theirs+=($(( (t1 - t0) / 1000 )))
    umount -l "$O/target/proc" 2>/dev/null || true
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mo=$(median "${ours[@]}"); mt=$(median "${theirs[@]}")
echo "apk install of 96 packages into tmpfs, $RUNS runs each (microseconds): ours ${ours[*]}; apk-tools ${theirs[*]}"
awk -v a="$mo" -v b="$mt" 'BEGIN { printf "apk: median ours %.3f s, apk-tools 2.14.4 %.3f s, ratio %.2fx (target <= 0.50x)\n", a/1e6, b/1e6, a/b }'
