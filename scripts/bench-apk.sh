#!/usr/bin/env bash
# apk install benchmark: the 96 installable packages of the alpine-3.19.1 medium into a fresh
# tmpfs, with our static apk and with the real apk-tools (2.14.4, Alpine minirootfs, chroot),
# alternating, RUNS times each. Prints the medians of wall time, CPU time (user + system, scripts
# included: steadier than wall time on a shared machine) and peak RSS, with the ratios
# ours/apk-tools, and the load average.
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

TIME=(/usr/bin/time -f '%e %U %S %M' -o "$W/time")
fresh() { umount -l "$1" 2>/dev/null || true; mount -t tmpfs tmpfs "$1"; mkdir -p "$1/etc/apk"; cp -a "$O/etc/apk/keys" "$1/etc/apk/"; }
# wall, CPU, RSS of the last run, appended to the arrays named $1 $2 $3.
record() { local t u s m; read -r t u s m <"$W/time"; eval "$1+=($t) $2+=($(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')) $3+=($m)"; }
ow=(); oc=(); om=(); tw=(); tc=(); tm=()
for i in $(seq "$RUNS"); do
    fresh "$W/ours"
    "${TIME[@]}" "$APK" add -q --root "$W/ours" --initdb --no-network --repository "$FIX/alpine-3.19.1/apks" $PKGS >/dev/null
    record ow oc om
    umount -l "$W/ours/proc" 2>/dev/null || true
    fresh "$O/target"
    "${TIME[@]}" chroot "$O" apk add -q --root /target --initdb --no-network --repository /media/apks $PKGS >/dev/null
    record tw tc tm
    umount -l "$O/target/proc" 2>/dev/null || true
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "apk install of 96 packages into tmpfs, $RUNS runs each (load $(cut -d' ' -f1-3 /proc/loadavg)): ours ${ow[*]} s wall / ${oc[*]} s CPU; apk-tools ${tw[*]} s wall / ${tc[*]} s CPU"
awk -v a="$(median "${ow[@]}")" -v b="$(median "${tw[@]}")" -v c="$(median "${oc[@]}")" -v d="$(median "${tc[@]}")" \
    -v e="$(median "${om[@]}")" -v f="$(median "${tm[@]}")" 'BEGIN {
    printf "apk install: wall ours %.3f s, apk-tools 2.14.4 %.3f s, ratio %.2fx (target <= 0.50x); CPU ours %.2f s, apk-tools %.2f s, ratio %.2fx; peak RSS ours %.1f MiB, apk-tools %.1f MiB\n",
        a, b, a/b, c, d, c/d, e/1024, f/1024 }'
