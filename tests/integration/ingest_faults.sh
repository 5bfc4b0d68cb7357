# Failure injection: an ingest that fails, is interrupted or is killed
# leaves no store and never damages the store already in place.  Signals
# are sent while the process is paused at a named phase (HOGREC_PAUSE_AT,
# common/faultpoint.h), never after a guessed delay.
source "$(dirname "$0")/_lib.sh"

# The phases (fault points) a signal is sent in.  ingest.records@2: the
# temporary store is being written (the second check, after 8192 records);
# publish.synced: the temporary store is complete and synced, not renamed;
# publish.renamed: renamed over the old store, the parent directory not yet
# synced.
MID=ingest.records@2

# has_tmp DIR : DIR holds a temporary store directory
has_tmp() { ls "$1" | grep -q '\.tmp-'; }

"$BIN/mlgen" -o "$T/ml" --users 600 --items 800 --ratings 120000 --seed 5 2>/dev/null
"$BIN/ingest" -q -o "$T/ok.lmdb" "$T/ml"
good=$(tree_sum "$T/ok.lmdb")
# A replacement that differs from the old store (another negative-history
# seed), so that the kill rounds can tell which of the two is in place.
"$BIN/ingest" -q --seed 2 -o "$T/new.lmdb" "$T/ml"
new=$(tree_sum "$T/new.lmdb")
rm -rf "$T/new.lmdb"
[ "$new" != "$good" ] || fail "--seed 2 gave the same store as seed 1"

# An I/O failure mid-way (injected after N records): exit 74, nothing left.
HOGREC_FAULT_AFTER=5000 expect_exit 74 "$BIN/ingest" -q -o "$T/new.lmdb" "$T/ml"
expect_err "injected fault"
[ ! -e "$T/new.lmdb" ] || fail "partial store left after a failure"
no_leftovers "$T"
HOGREC_FAULT_AFTER=5000 expect_exit 74 "$BIN/ingest" -q --force -o "$T/ok.lmdb" "$T/ml"
[ "$(tree_sum "$T/ok.lmdb")" = "$good" ] || fail "failed --force run damaged the old store"
no_leftovers "$T"
ok "injected I/O failure"

# SIGTERM while the temporary store is being built, and once it is complete
# but not yet renamed: exit 130, the old store untouched, nothing left.
for point in $MID publish.synced; do
	start_paused $point "$T/run.err" "$BIN/ingest" -q --seed 2 --force -o "$T/ok.lmdb" "$T/ml"
	has_tmp "$T" || fail "SIGTERM at $point: no temporary store while paused"
	kill -TERM $pid
	rc=0; wait $pid || rc=$?
	[ "$rc" -eq 130 ] || { cat "$T/run.err" >&2; fail "SIGTERM at $point: exit status $rc, expected 130"; }
	[ "$(tree_sum "$T/ok.lmdb")" = "$good" ] || fail "SIGTERM at $point damaged the store"
	no_leftovers "$T"
	ok "SIGTERM at $point: exit 130, old store intact, nothing left"
done

# SIGTERM once the new store is renamed into place: it is published, so
# the run succeeds (exit 0) with the new store; 130 always means "old store
# kept".
start_paused publish.renamed "$T/run.err" "$BIN/ingest" -q --seed 2 --force -o "$T/ok.lmdb" "$T/ml"
kill -TERM $pid
rc=0; wait $pid || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/run.err" >&2; fail "SIGTERM at publish.renamed: exit status $rc, expected 0"; }
[ "$(tree_sum "$T/ok.lmdb")" = "$new" ] || fail "SIGTERM at publish.renamed: not the new store"
no_leftovers "$T"
"$BIN/ingest" -q --force -o "$T/ok.lmdb" "$T/ml"
[ "$(tree_sum "$T/ok.lmdb")" = "$good" ] || fail "same input and seed gave a different store"
ok "SIGTERM at publish.renamed: exit 0, the new store published"

# kill -9 in each phase: the target is the old store or the complete new
# one, never anything else; the killed run's temporary directory is left
# behind and the next run removes it.
for point in $MID publish.synced publish.renamed; do
	start_paused $point "$T/run.err" "$BIN/ingest" -q --seed 2 --force -o "$T/ok.lmdb" "$T/ml"
	kill -KILL $pid
	wait $pid 2>/dev/null || true
	[ -f "$T/ok.lmdb/data.mdb" ] || fail "kill -9 at $point left no store at the target"
	"$BIN/ingest" --inspect "$T/ok.lmdb" >/dev/null 2>&1 || fail "kill -9 at $point left a broken store"
	case $point in
	publish.renamed) want=$new what="the new store" ;;
	*) want=$good what="the old store" ;;
	esac
	[ "$(tree_sum "$T/ok.lmdb")" = "$want" ] || fail "kill -9 at $point: the target is not $what"
	has_tmp "$T" || fail "kill -9 at $point: the temporary directory is gone (wrong phase?)"
	"$BIN/ingest" --force -o "$T/ok.lmdb" "$T/ml" >/dev/null 2>"$T/err"
	expect_err "left by an interrupted run"
	no_leftovers "$T"
	[ "$(tree_sum "$T/ok.lmdb")" = "$good" ] || fail "same input and seed gave a different store"
	ok "kill -9 at $point: $what in place, leftover removed by the next run"
done

# Two runs to one new output without --force: the first to publish wins,
# the other refuses when it finds the target at its own publish (exit 73),
# never replacing it.  A is held after building its store (fault point),
# B runs to the end, then SIGUSR1 lets A go on.
rm -rf "$T/race.lmdb"
start_paused publish.synced "$T/a.err" "$BIN/ingest" -q --seed 2 -o "$T/race.lmdb" "$T/ml"
"$BIN/ingest" -q -o "$T/race.lmdb" "$T/ml" || fail "the second ingest failed"
kill -USR1 $pid
rc=0; wait $pid || rc=$?
[ "$rc" -eq 73 ] || { cat "$T/a.err" >&2; fail "racing ingest: exit $rc, expected 73"; }
grep -q "appeared while this run was building it" "$T/a.err" || { cat "$T/a.err" >&2; fail "no message"; }
[ "$(tree_sum "$T/race.lmdb")" = "$good" ] || fail "the racing ingest replaced the published store"
no_leftovers "$T"
ok "two ingests to one output: the second to publish refuses (73), the first's store kept"
