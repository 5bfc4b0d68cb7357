#!/usr/bin/env bash
# Runs every test and prints one closing line "N passed, N failed".
# Unit programs (cmocka) count one per test case; each integration script
# (tests/integration/*.sh, tests/integration/*.py) counts as one.
set -u
BUILD=${BUILD:-build}
BIN=${BIN:-bin}
export BUILD BIN
here=$(cd "$(dirname "$0")" && pwd)
pass=0
fail=0
failed=()
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	if "$t" >"$tmp/$name.out" 2>&1; then rc=0; else rc=$?; fi
	p=$(sed -n 's/.*\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$tmp/$name.out" | tail -1)
	f=$(sed -n 's/.*\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$tmp/$name.out" | tail -1)
	p=${p:-0}; f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	pass=$((pass + p)); fail=$((fail + f))
	if [ "$f" -ne 0 ]; then
		failed+=("$name"); echo "FAIL $name"; tail -30 "$tmp/$name.out"
	else
		echo "ok   $name ($p)"
	fi
done

if [ "${1:-}" != "--unit-only" ]; then
	for s in "$here"/integration/*.sh "$here"/integration/*.py; do
		[ -e "$s" ] || continue
		name=$(basename "$s")
		case "$name" in _*) continue ;; esac # helpers, not tests
		case "$s" in
		*.py) cmd=(/usr/bin/python3 "$s") ;;
		*) cmd=(bash "$s") ;;
		esac
		start=$(date +%s)
		if "${cmd[@]}" >"$tmp/$name.out" 2>&1; then
			pass=$((pass + 1)); echo "ok   $name ($(( $(date +%s) - start ))s)"
		else
			fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name"; tail -40 "$tmp/$name.out"
		fi
	done
fi

[ ${#failed[@]} -eq 0 ] || echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
