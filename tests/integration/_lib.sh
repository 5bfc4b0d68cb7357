# Shared helpers for the shell integration tests (sourced, not run).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${BIN:-bin}
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
T=$(mktemp -d /tmp/hogrec-it.XXXXXX)
trap 'rm -rf "$T"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok $*"; }

# expect_exit CODE CMD... : runs CMD, checks its exit status, keeps stderr in $T/err
expect_exit() {
	local want=$1; shift
	local got=0
	"$@" >"$T/out" 2>"$T/err" || got=$?
	[ "$got" -eq "$want" ] || { cat "$T/err" >&2; fail "'$*' exited $got, expected $want"; }
}

# expect_err TEXT : the last command's stderr contains TEXT
expect_err() {
	grep -qF -- "$1" "$T/err" || { cat "$T/err" >&2; fail "stderr lacks '$1'"; }
}

# no_leftovers DIR : no temporary store directories left in DIR
no_leftovers() {
	if ls "$1" | grep -q '\.tmp-'; then ls -la "$1" >&2; fail "temporary directory left in $1"; fi
}

tree_sum() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum; }
