#!/usr/bin/env bash
# The project's own package repository (run by `make repo` after `make build`):
#   out/repo/x86_64/lbu-<version>-r0.apk   /sbin/lbu (0755), no dependencies, replaces alpine-conf
#   out/repo/x86_64/APKINDEX.tar.gz        index of the packages there, signed with the build key
# The build key is made once with `apk keygen` and kept across builds:
#   out/keys/project-build.rsa (private, 0600) and out/keys/project-build.rsa.pub (trusted by
#   images and by stock apk-tools, which verifies RSA only).
# Everything goes through out/bin/apk (mkpkg, index, sign, keygen); reproducible with
# SOURCE_DATE_EPOCH (default: the last commit's time).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=${PROJECT_OUT:-$top/out}
apk=$out/bin/apk
arch=x86_64
repo=$out/repo/$arch
keydir=$out/keys
key=$keydir/project-build.rsa

for b in apk lbu; do
    [ -x "$out/bin/$b" ] || { echo "build-repo: $out/bin/$b missing (run make build first)" >&2; exit 1; }
done

version=$(sed -n '/^\[workspace\.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$top/Cargo.toml")
[ -n "$version" ] || { echo "build-repo: no [workspace.package] version in Cargo.toml" >&2; exit 1; }
pkgver="$version-r0"
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$top" log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH

mkdir -p "$keydir" "$repo"
if [ ! -s "$key" ] || [ ! -s "$key.pub" ]; then
    rm -f "$key" "$key.pub"
    "$apk" keygen --rsa 4096 -o "$key"
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -D -m 0755 "$out/bin/lbu" "$stage/payload/sbin/lbu"

pkg="$repo/lbu-$pkgver.apk"
"$apk" mkpkg -o "$stage/lbu.apk" \
    -I pkgname=lbu \
    -I "pkgver=$pkgver" \
    -I "pkgdesc=Alpine-compatible local backup utility (crash-safe apkovl commits)" \
    -I url=https://alpinelinux.org \
    -I license=GPL-2.0-only \
    -I "arch=$arch" \
    -I origin=lbu \
    -I replaces=alpine-conf \
    -k "$key" \
    "$stage/payload"
# Other versions of lbu would make the index offer stale packages.
find "$repo" -maxdepth 1 -name 'lbu-*.apk' ! -name "lbu-$pkgver.apk" -delete
mv -f "$stage/lbu.apk" "$pkg"

# The packages are signed with the build key, so the index trusts exactly that key.
"$apk" --keys-dir "$keydir" index -o "$stage/APKINDEX.tar.gz" "$repo"/*.apk
"$apk" sign -k "$key" "$stage/APKINDEX.tar.gz"
mv -f "$stage/APKINDEX.tar.gz" "$repo/APKINDEX.tar.gz"
echo "build-repo: $pkg and $repo/APKINDEX.tar.gz (key $(basename "$key").pub)"
