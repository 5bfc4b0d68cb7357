# The trainer's checkpoints: published after every epoch and on SIGTERM
# (exit 0), resumed exactly (one worker, fixed seed), refused when they do
# not match, and never corrupt under a final name even when the trainer is
# killed with SIGKILL in any phase of a save.  Signals are sent while the
# trainer is paused at a named phase (HOGREC_PAUSE_AT), never after a
# guessed delay; every wait is bounded and fails loudly.
source "$(dirname "$0")/_lib.sh"

if [ -n "${HOGREC_SANITIZER:-}" ]; then ratings=4000 users=60 items=80; else ratings=20000 users=200 items=250; fi
"$BIN/mlgen" -q -o "$T/ml" --users $users --items $items --ratings $ratings --seed 21
"$BIN/ingest" -q --split user -o "$T/ml.lmdb" "$T/ml"
train() { "$BIN/trainer" --data "$T/ml.lmdb" --threads 1 --batch 32 "$@"; }
metrics() { tail -1 "$1/metrics.jsonl" | cut -d, -f1-8; }

# Two epochs at once, or one then one more after a restart: the same numbers.
train --model ncf --out "$T/a" --epochs 2 >/dev/null 2>&1
train --model ncf --out "$T/b" --epochs 1 >/dev/null 2>&1
[ -L "$T/b/latest" ] || fail "no latest checkpoint after an epoch"
"$BIN/ckpt" verify "$T/b" >/dev/null || fail "the epoch checkpoint does not verify"
train --model ncf --out "$T/b" --epochs 2 2>"$T/err" >/dev/null
grep -q "resuming from" "$T/err" || fail "the second run did not resume"
[ "$(metrics "$T/a")" = "$(metrics "$T/b")" ] || fail "resumed run differs: $(metrics "$T/a") vs $(metrics "$T/b")"
ok "resume at an epoch boundary is exact"

# Mid-epoch checkpoints by step count, then a restart from one of them.
train --model ncf --out "$T/c" --epochs 1 --ckpt-every-steps 10 >/dev/null 2>&1
n=$(ls "$T/c"/ckpt-*.safetensors | wc -l)
[ "$n" -eq 3 ] || fail "--keep 3 should leave 3 checkpoints, found $n"
ok "checkpoints every N steps, retention keeps 3"

# SIGTERM: final checkpoint, exit 0; the resumed run ends where an
# uninterrupted one does.
train --model dssm --hidden 64,32 --out "$T/d" --epochs 30 >/dev/null 2>&1
# Signal while the first epoch's checkpoint is being published (paused in
# its retention step): 29 epochs remain.
start_paused ckpt.retention "$T/err" "$BIN/trainer" --data "$T/ml.lmdb" --threads 1 --batch 32 --model dssm \
	--hidden 64,32 --out "$T/e" --epochs 30
kill -TERM $pid
rc=0; wait $pid || rc=$?
[ "$rc" -eq 0 ] || fail "SIGTERM: exit status $rc"
grep -q "stopped by a signal" "$T/err" || fail "the trainer finished before the signal (test too slow?)"
"$BIN/ckpt" verify "$T/e" >/dev/null || fail "SIGTERM left no valid checkpoint"
train --model dssm --hidden 64,32 --out "$T/e" --epochs 30 >/dev/null 2>&1
[ "$(metrics "$T/d")" = "$(metrics "$T/e")" ] || fail "interrupted+resumed differs from uninterrupted"
ok "SIGTERM writes a final checkpoint, exits 0, and resumes exactly"

# Retention keeps the newest --keep checkpoints plus the best by valid AUC.
train --model ncf --out "$T/best" --epochs 6 --keep 1 --early-stop 0 >/dev/null 2>&1
best_epoch=$(/usr/bin/python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if "\"valid\"" in l]
print(max(rows, key=lambda r: r["auc"])["epoch"])' "$T/best/metrics.jsonl")
steps_per_epoch=$(( $(basename "$(readlink "$T/best/latest")" .safetensors | sed 's/ckpt-0*//') / 6 ))
want=$(printf 'ckpt-%012d.safetensors' $(( best_epoch * steps_per_epoch )))
[ -f "$T/best/$want" ] || { ls "$T/best"; fail "best checkpoint $want (epoch $best_epoch) not kept"; }
[ "$(ls "$T/best"/ckpt-*.safetensors | wc -l)" -le 2 ] || fail "retention kept too many"
ok "retention keeps the newest and the best by valid AUC"

# SIGHUP re-reads the config file's log level and checkpoint cadence.
printf '[trainer]\ndata = %s\nmodel = ncf\nout = %s\nepochs = 200\nthreads = 1\nbatch = 32\n' \
	"$T/ml.lmdb" "$T/h" >"$T/h.ini"
# Paused after the first checkpoint; SIGHUP itself ends the pause.
HOGREC_PAUSE_AT=ckpt.retention "$BIN/trainer" --config "$T/h.ini" >/dev/null 2>"$T/h.err" & pid=$!
errf=$T/h.err
wait_for "the first checkpoint" grep -q "hogrec: paused at ckpt.retention (pid $pid)" "$T/h.err"
printf 'ckpt_every_steps = 10\n' >>"$T/h.ini"
kill -HUP $pid
wait_for "a checkpoint at the new cadence" grep -q "batch 10, " "$T/h.err"
kill -TERM $pid; wait $pid || fail "SIGTERM after SIGHUP: non-zero exit"
grep -q "reloaded: checkpoint every 10 steps" "$T/h.err" || { cat "$T/h.err"; fail "no reload"; }
grep -q "batch 10, " "$T/h.err" || fail "the new cadence was not applied"
ok "SIGHUP reloads the checkpoint cadence"

# A checkpoint of another model or shape is refused with a reason.
expect_exit 64 "$BIN/trainer" -q --data "$T/ml.lmdb" --model dssm --out "$T/a" --epochs 3
expect_err "is of model 'ncf'"
expect_exit 64 "$BIN/trainer" -q --data "$T/ml.lmdb" --model ncf --hidden 8 --out "$T/a" --epochs 3
expect_err "other model options"
ok "mismatched checkpoints refused"

# An unwritable output and a full disk (simulated): a clear message, a
# non-zero exit, and the checkpoints already there are untouched.
echo x >"$T/plainfile"
expect_exit 74 "$BIN/trainer" -q --data "$T/ml.lmdb" --model ncf --out "$T/plainfile/run"
expect_err "plainfile"
before=$(ls -l "$T/a"/ckpt-*; readlink "$T/a/latest")
HOGREC_CKPT_FAULT=4096 expect_exit 74 "$BIN/trainer" -q --data "$T/ml.lmdb" --model ncf \
	--out "$T/a" --epochs 3 --threads 1 --batch 32
[ "$(ls -l "$T/a"/ckpt-*; readlink "$T/a/latest")" = "$before" ] || fail "a failed save changed the checkpoint directory"
"$BIN/ckpt" verify "$T/a" >/dev/null || fail "checkpoints damaged by a failed save"
ok "unwritable output and full disk: clear error, nothing lost"

# A file that is not a checkpoint at all: one line saying so, not two.
printf 'hello world, this is not a checkpoint\n' >"$T/noise"
expect_exit 65 "$BIN/ckpt" verify "$T/noise"
n=$(cat "$T/out" "$T/err" | grep -c "'$T/noise': not a safetensors file: its header length .* is larger than the file (38 bytes)" || true)
[ "$n" -eq 1 ] || { cat "$T/out" "$T/err"; fail "ckpt verify of a non-checkpoint: $n messages, expected 1"; }
ok "ckpt verify names a non-checkpoint once"

# A damaged newest checkpoint: resume falls back to the previous good one.
train --model ncf --out "$T/f" --epochs 2 >/dev/null 2>&1
newest=$(ls "$T/f"/ckpt-*.safetensors | tail -1)
truncate -s 1000 "$newest"
train --model ncf --out "$T/f" --epochs 3 2>"$T/err" >/dev/null || { cat "$T/err"; fail "no fallback"; }
grep -q "resuming from .*ckpt-0*$(( $(basename "$newest" .safetensors | sed 's/ckpt-0*//') / 2 ))" "$T/err" \
	|| { cat "$T/err"; fail "did not resume from the previous checkpoint"; }
ok "a truncated latest checkpoint falls back to the previous one"

# kill -9 in each phase of publishing the 4th checkpoint (3 complete ones
# exist): temporary written and synced, not renamed (publish.synced);
# renamed, directory not synced (publish.renamed); renamed and synced,
# `latest` not yet re-pointed (ckpt.published); during retention
# (ckpt.retention).  Every file under a final name verifies, `latest`
# verifies, and a restart resumes and removes the killed run's temporaries.
kargs=(--data "$T/ml.lmdb" --threads 1 --batch 32 --model ncf --epochs 50 --ckpt-every-steps 10)
for point in publish.synced@4 publish.renamed@4 ckpt.published@4 ckpt.retention@4; do
	rm -rf "$T/k"
	start_paused $point "$T/k.err" "$BIN/trainer" "${kargs[@]}" --out "$T/k" --no-resume
	kill -KILL $pid; wait $pid 2>/dev/null || true
	n=0
	for f in "$T/k"/ckpt-*.safetensors; do
		[ -e "$f" ] || continue
		"$BIN/ckpt" verify "$f" >/dev/null || fail "kill -9 at $point: corrupt $f"
		n=$((n + 1))
	done
	[ "$n" -ge 3 ] || fail "kill -9 at $point: $n checkpoints, expected at least 3"
	[ -L "$T/k/latest" ] || fail "kill -9 at $point: no latest"
	"$BIN/ckpt" verify "$T/k/latest" >/dev/null || fail "kill -9 at $point: latest broken"
	newest=$(ls "$T/k" | grep '^ckpt-' | tail -1)
	case $point in
	publish.synced*)
		ls -a "$T/k" | grep -q '^\.ckpt-.*\.tmp-' || fail "kill -9 at $point: no temporary left (wrong phase?)"
		[ "$(readlink "$T/k/latest")" = "$newest" ] || fail "kill -9 at $point: latest is not the newest" ;;
	publish.renamed* | ckpt.published*)
		[ "$(readlink "$T/k/latest")" != "$newest" ] || fail "kill -9 at $point: latest already re-pointed" ;;
	ckpt.retention*)
		[ "$(readlink "$T/k/latest")" = "$newest" ] || fail "kill -9 at $point: latest not re-pointed" ;;
	esac
	# Restart: resumes; its first save's retention removes the temporaries
	# of the dead run; stopped (SIGTERM, exit 0) once that is done.
	start_paused ckpt.published@2 "$T/k.err" "$BIN/trainer" "${kargs[@]}" --out "$T/k"
	kill -TERM $pid
	rc=0; wait $pid || rc=$?
	[ "$rc" -eq 0 ] || { cat "$T/k.err" >&2; fail "restart after kill -9 at $point: exit $rc"; }
	grep -q "resuming from" "$T/k.err" || fail "restart after kill -9 at $point did not resume"
	if ls -a "$T/k" | grep -q '\.tmp-'; then ls -la "$T/k" >&2; fail "temporaries left after the restart ($point)"; fi
	"$BIN/ckpt" verify "$T/k" >/dev/null || fail "restart after kill -9 at $point: checkpoints do not verify"
	ok "kill -9 at $point: every checkpoint verifies; restart resumes and cleans up"
done

# One trainer per --out: a second one is refused (exit 73, naming the first
# one's pid) and changes nothing there; the first goes on; after a kill -9
# the kernel has dropped the lock and a new trainer may start.
start_paused ckpt.retention@1 "$T/l.err" "$BIN/trainer" --data "$T/ml.lmdb" --threads 1 \
	--batch 32 --model ncf --out "$T/l" --epochs 2
before=$(ls -l --full-time "$T/l"; cat "$T/l/metrics.jsonl")
expect_exit 73 "$BIN/trainer" -q --data "$T/ml.lmdb" --threads 1 --batch 32 --model ncf \
	--out "$T/l" --epochs 2
expect_err "is in use by another trainer (pid $pid)"
[ "$(ls -l --full-time "$T/l"; cat "$T/l/metrics.jsonl")" = "$before" ] ||
	fail "the refused trainer changed the output directory"
kill -USR1 $pid
wait $pid || { cat "$T/l.err" >&2; fail "the first trainer failed after the refusal"; }
# two epochs and early stopping's closing line
[ "$(grep -c '"split":"test"' "$T/l/metrics.jsonl")" -eq 3 ] || fail "the first trainer's metrics are not complete"
start_paused ckpt.retention@1 "$T/l.err" "$BIN/trainer" --data "$T/ml.lmdb" --threads 1 \
	--batch 32 --model ncf --out "$T/l" --epochs 3
kill -KILL $pid; wait $pid 2>/dev/null || true
train --model ncf --out "$T/l" --epochs 3 >/dev/null 2>"$T/err" || { cat "$T/err"; fail "no start after kill -9"; }
ok "one trainer per --out: the second refused (73), the lock gone with a killed holder"

# Killed after writing an epoch's metrics, before its checkpoint (paused as
# the epoch-2 checkpoint file is begun): the restart re-does epoch 2 and
# first drops its lines (and a torn line), so metrics.jsonl holds each split
# and epoch once, with the numbers of an uninterrupted run.
train --model ncf --out "$T/m1" --epochs 3 >/dev/null 2>&1
start_paused publish.begun@2 "$T/m.err" "$BIN/trainer" --data "$T/ml.lmdb" --threads 1 \
	--batch 32 --model ncf --out "$T/m2" --epochs 3
kill -KILL $pid; wait $pid 2>/dev/null || true
[ "$(grep -c '"epoch":2' "$T/m2/metrics.jsonl")" -eq 2 ] || fail "epoch 2's lines were not written before the kill"
printf '{"split":"valid","epoch":3,"au' >>"$T/m2/metrics.jsonl"
train --model ncf --out "$T/m2" --epochs 3 >/dev/null 2>"$T/err" || { cat "$T/err"; fail "restart failed"; }
grep -q "dropped 3 lines of epoch 2 and later" "$T/err" || { cat "$T/err"; fail "no drop reported"; }
strip() { sed 's/,"samples_per_s".*//' "$1/metrics.jsonl"; }
[ "$(strip "$T/m1")" = "$(strip "$T/m2")" ] || { diff <(strip "$T/m1") <(strip "$T/m2"); fail "metrics after the restart differ"; }
ok "a restart drops the metrics lines of the epochs it re-does: one line per split and epoch"
