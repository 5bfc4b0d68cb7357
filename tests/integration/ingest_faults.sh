# Failure injection: an ingest that fails, is interrupted or is killed
# leaves no store and never damages the store already in place.
source "$(dirname "$0")/_lib.sh"

"$BIN/mlgen" -o "$T/ml" --users 600 --items 800 --ratings 120000 --seed 5 2>/dev/null
"$BIN/ingest" -q -o "$T/ok.lmdb" "$T/ml"
good=$(tree_sum "$T/ok.lmdb")

# An I/O failure mid-way (injected after N records): exit 74, nothing left.
HOGREC_FAULT_AFTER=5000 expect_exit 74 "$BIN/ingest" -q -o "$T/new.lmdb" "$T/ml"
expect_err "injected fault"
[ ! -e "$T/new.lmdb" ] || fail "partial store left after a failure"
no_leftovers "$T"
HOGREC_FAULT_AFTER=5000 expect_exit 74 "$BIN/ingest" -q --force -o "$T/ok.lmdb" "$T/ml"
[ "$(tree_sum "$T/ok.lmdb")" = "$good" ] || fail "failed --force run damaged the old store"
no_leftovers "$T"
ok "injected I/O failure"

# SIGTERM: clean up and exit 130.
"$BIN/ingest" -q --force -o "$T/ok.lmdb" "$T/ml" & pid=$!
sleep 0.05; kill -TERM $pid 2>/dev/null || true
rc=0; wait $pid || rc=$?
[ "$rc" -eq 130 ] || [ "$rc" -eq 0 ] || fail "SIGTERM exit status $rc"
[ "$rc" -eq 0 ] || [ "$(tree_sum "$T/ok.lmdb")" = "$good" ] || fail "interrupted run damaged the store"
no_leftovers "$T"
ok "SIGTERM (exit $rc)"

# kill -9 at spread-out moments: the target is always the old store or a
# complete new one; a leftover temporary dir is removed by the next run.
for i in 1 2 3 4 5 6 7 8; do
	"$BIN/ingest" -q --force -o "$T/ok.lmdb" "$T/ml" & pid=$!
	sleep "0.0$((i * 11 % 97))"; kill -KILL $pid 2>/dev/null || true
	wait $pid 2>/dev/null || true
	[ -f "$T/ok.lmdb/data.mdb" ] || fail "kill -9 round $i left no store at the target"
	"$BIN/ingest" --inspect "$T/ok.lmdb" >/dev/null 2>&1 || fail "kill -9 round $i left a broken store"
done
"$BIN/ingest" -q --force -o "$T/ok.lmdb" "$T/ml"
no_leftovers "$T"
[ "$(tree_sum "$T/ok.lmdb")" = "$good" ] || fail "same input and seed gave a different store"
ok "kill -9 in a loop; deterministic output"
