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

# store_reseal DIR : rewrites the seal DIR/data.crc after a test edited the
# store DIR with python-lmdb (docs/FORMAT.md, "The seal"); without it the
# tools refuse the edited store as damaged
store_reseal() {
	/usr/bin/python3 - "$1" <<'PY'
import sys, zlib
d = open(sys.argv[1] + "/data.mdb", "rb").read()
open(sys.argv[1] + "/data.crc", "w").write("hogrec-crc32 %08x %d\n" % (zlib.crc32(d), len(d)))
PY
}

tree_sum() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum; }

# Signals in a proven phase (common/faultpoint.h): a test starts a program
# with HOGREC_PAUSE_AT=POINT, waits for its "paused at" line, then signals
# it.  Every wait is bounded (HOGREC_WAIT_SECS, default 120: room for the
# sanitizer builds) and fails loudly.
WAIT_SECS=${HOGREC_WAIT_SECS:-120}

# wait_for WHAT CMD... : polls CMD every 0.1 s until it succeeds; fails
# naming WHAT when $pid exits first ("phase missed", printing $errf) or on
# timeout (killing $pid).
wait_for() {
	local what=$1 i; shift
	for ((i = 0; i < WAIT_SECS * 10; i++)); do
		"$@" && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			"$@" && return 0
			cat "$errf" >&2
			fail "phase missed: the process exited before $what"
		fi
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	cat "$errf" >&2
	fail "timed out after ${WAIT_SECS} s waiting for $what"
}

# start_paused POINT ERRFILE CMD... : runs CMD in the background with
# HOGREC_PAUSE_AT=POINT (pid in $pid, stdout discarded, stderr in ERRFILE,
# also $errf) and waits until it reports the pause.
start_paused() {
	local point=$1; errf=$2; shift 2
	HOGREC_PAUSE_AT=$point "$@" >/dev/null 2>"$errf" & pid=$!
	wait_for "pausing at $point" grep -qs "hogrec: paused at ${point%@*} (pid $pid)" "$errf"
}

# ckpt_edit FILE OUT PYTHON: OUT is FILE with its metadata dict `meta` (and the
# header dict `hdr`, the payload bytearray `pay`) changed by PYTHON, then
# resealed with a correct version 2 crc unless RESEAL=no.
ckpt_edit() {
	/usr/bin/python3 - "$1" "$2" "$3" "${RESEAL:-yes}" <<'PY'
import json, struct, sys, zlib
src, dst, code, reseal = sys.argv[1:]
data = open(src, "rb").read()
(n,) = struct.unpack("<Q", data[:8])
hdr = json.loads(data[8:8 + n])
meta, pay = hdr["__metadata__"], bytearray(data[8 + n:])
exec(code)
text = json.dumps(hdr, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)
out = struct.pack("<Q", len(text)) + text + bytes(pay)
if reseal == "yes":
    at = out.index(b'"crc32":"') + 9
    out = out[:at] + b"00000000" + out[at + 8:]
    out = out[:at] + b"%08x" % zlib.crc32(out) + out[at + 8:]
open(dst, "wb").write(out)
PY
}
