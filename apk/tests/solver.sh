#!/bin/sh
# Replays apk-tools v3's solver test harness (test/solver.sh + testlib.sh) against any apk binary,
# so v3's own test/solver/*.test cases (or ours in apk/tests/solver/) can run against this
# project's apk. POSIX sh; needs tar, gzip, cmp, diff, realpath.
#
#   APK=/path/to/apk sh apk/tests/solver.sh [TEST.test ...]
#
# Without arguments it runs every *.test beside this script in solver/. Repository files named by
# @REPO are packed into a scratch directory (not beside the tests) as FILE.tar.gz holding one
# member APKINDEX, exactly as v3 packs them. Prints FAIL lines with a diff, then
# "N passed, M failed"; exits non-zero when a case failed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
APK=${APK:-"$here/../../out/bin/apk"}
[ -x "$APK" ] || { echo "solver.sh: $APK is not executable (set APK=)" >&2; exit 2; }
scratch=$(mktemp -d "${TMPDIR:-/tmp}/apk-solver.XXXXXX")
trap 'rm -rf "$scratch"' EXIT INT TERM

pass=0
fail=0

pack_repo() {
	# $1: index text file; prints the packed index path
	packed="$scratch/repos$(realpath "$1").tar.gz"
	if [ ! -f "$packed" ]; then
		mkdir -p "$(dirname "$packed")" "$scratch/pack"
		cp "$1" "$scratch/pack/APKINDEX"
		tar czf "$packed.$$" -C "$scratch/pack" APKINDEX && mv "$packed.$$" "$packed"
		rm -f "$scratch/pack/APKINDEX"
	fi
	echo "$packed"
}

run_test() {
	test=$1
	testfile=$(realpath "$test")
	testdir=$(dirname "$testfile")
	root="$scratch/root"
	rm -rf "$root"
	mkdir -p "$root/etc/apk/cache" "$root/lib/apk/db" "$root/tmp" "$root/var/log"
	: >"$root/etc/apk/world"
	: >"$root/lib/apk/db/installed"
	: >"$scratch/expected"
	args=""
	run_found=""
	in_expect=""
	while IFS="" read -r ln || [ -n "$ln" ]; do
		if [ -n "$in_expect" ]; then
			printf '%s\n' "$ln" >>"$scratch/expected"
			continue
		fi
		case "$ln" in
		"@ARGS "*)
			args="$args ${ln#* }"
			run_found=yes
			;;
		"@WORLD "*)
			for dep in ${ln#* }; do echo "$dep"; done >"$root/etc/apk/world"
			;;
		"@INSTALLED "*)
			ln -snf "$testdir/${ln#* }" "$root/lib/apk/db/installed"
			;;
		"@REPO @"*)
			tag=${ln#* }
			repo=${tag#* }
			tag=${tag%% *}
			echo "$tag test:/$(pack_repo "$testdir/$repo")" >>"$root/etc/apk/repositories"
			;;
		"@REPO "*)
			repo=${ln#* }
			echo "test:/$(pack_repo "$testdir/$repo")" >>"$root/etc/apk/repositories"
			;;
		"@CACHE "*)
			ln -snf "$testdir/${ln#* }" "$root/etc/apk/cache/installed"
			;;
		"@EXPECT")
			in_expect=yes
			;;
		"@"*)
			echo "$test: invalid spec: $ln"
			run_found=""
			break
			;;
		esac
	done <"$testfile"
	[ -e "$root/etc/apk/cache/installed" ] || args="--no-cache $args"
	[ "$run_found" = yes ] || return 0
	# shellcheck disable=SC2086 # word splitting of $args is the harness contract
	(cd "$root/tmp" && "$APK" --root "$root" --allow-untrusted --simulate --force-no-chroot \
		--no-interactive --cache-max-age 0 $args) >"$scratch/output" 2>&1 </dev/null
	if cmp -s "$scratch/output" "$scratch/expected"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "FAIL: $test"
		diff -u "$scratch/expected" "$scratch/output"
	fi
}

if [ $# -eq 0 ]; then
	set -- "$here"/solver/*.test
fi
for t in "$@"; do
	run_test "$t"
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
