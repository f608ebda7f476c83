#!/usr/bin/env bash
# apk on the real indexes: Alpine 3.19's main + community (23k packages, signed), loaded by
# `apk add --simulate` on an empty root, for a small world (mostly the cost of loading and
# verifying both indexes) and a large one (loading plus a 1,000-package solve). Ours (static)
# against apk-tools 2.14.4 (the Alpine minirootfs, chroot), alternating, RUNS times each.
# Prints the median wall time, CPU time (user + system: steadier than wall time on a shared
# machine), peak RSS (GNU time's %M) and the ratios ours/apk-tools,
# and checks that both sides chose the same packages.
# Usage: bench-apk-indexes.sh APK_BIN [RUNS]
set -euo pipefail
APK=$(readlink -f "$1")
RUNS=${2:-5}
HERE=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED_DIR:-$HERE/../shared}
FIX=$SHARED/fixtures
IDX=$FIX/alpine-3.19-indexes
W=$(mktemp -d /tmp/bench-apk-indexes.XXXXXX)
O=$W/oracle
cleanup() {
    umount -l "$O/media/idx" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$O"
tar xzf "$FIX/alpine-minirootfs-3.20.3-x86_64.tar.gz" -C "$O"
mkdir -p "$O/media/idx"
mount --bind -o ro "$IDX" "$O/media/idx"

# An empty root as the real indexes need it (see ../shared/fixtures/README.md).
empty_root() {
    mkdir -p "$1/lib/apk/db" "$1/etc/apk" "$1/tmp" "$1/var/log"
    : >"$1/lib/apk/db/installed"
    : >"$1/etc/apk/world"
    echo x86_64 >"$1/etc/apk/arch"
    cp -a "$O/etc/apk/keys" "$1/etc/apk/"
}
empty_root "$O/sysroot"
empty_root "$W/ours"

TIME=(/usr/bin/time -f '%e %M %U %S' -o "$W/time")
ours() {
    "${TIME[@]}" "$APK" add --root "$W/ours" --no-network --simulate --no-progress \
        --repository "$IDX/main" --repository "$IDX/community" "$@" >"$W/ours.out"
}
theirs() {
    "${TIME[@]}" chroot "$O" apk add --root /sysroot --no-network --simulate --no-progress \
        --repository /media/idx/main --repository /media/idx/community "$@" >"$W/theirs.out"
}
# `(n/N) Installing NAME (VERSION)` lines, without counters, sorted.
selection() { sed -n 's/^([ 0-9]*\/[0-9]*) Installing //p' "$1" | sort; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

bench() {
    local label=$1; shift
    local ot=() om=() oc=() tt=() tm=() tc=() t m u s
    for _ in $(seq "$RUNS"); do
        ours "$@"; read -r t m u s <"$W/time"; ot+=("$t"); om+=("$m"); oc+=("$(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')")
        theirs "$@"; read -r t m u s <"$W/time"; tt+=("$t"); tm+=("$m"); tc+=("$(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')")
    done
    if ! cmp -s <(selection "$W/ours.out") <(selection "$W/theirs.out"); then
        echo "$label: the two sides chose different packages:" >&2
        diff <(selection "$W/ours.out") <(selection "$W/theirs.out") >&2 || true
        exit 1
    fi
    local n; n=$(selection "$W/ours.out" | wc -l)
    echo "   $label ($n packages), $RUNS runs each (load $(cut -d" " -f1-3 /proc/loadavg)): ours ${ot[*]} s wall / ${oc[*]} s CPU / ${om[*]} KiB; apk-tools ${tt[*]} s wall / ${tc[*]} s CPU / ${tm[*]} KiB"
    awk -v label="$label" -v a="$(median "${ot[@]}")" -v b="$(median "${tt[@]}")" \
        -v e="$(median "${oc[@]}")" -v f="$(median "${tc[@]}")" \
        -v c="$(median "${om[@]}")" -v d="$(median "${tm[@]}")" 'BEGIN {
        printf "apk real indexes, %s: wall ours %.2f s, apk-tools 2.14.4 %.2f s, ratio %.2fx (target <= 0.50x); CPU ours %.2f s, apk-tools %.2f s, ratio %.2fx; peak RSS ours %.1f MiB, apk-tools %.1f MiB, ratio %.2fx (target <= 1.00x)\n",
            label, a, b, a/b, e, f, e/f, c/1024, d/1024, c/d }'
}

bench "alpine-base" alpine-base
bench "large world" xfce4 firefox libreoffice gnome-desktop chromium texlive linux-lts \
    build-base clang17 rust go openjdk17 postgresql16 mariadb nginx samba docker
