# Early stopping (--early-stop N): on a tiny store with a high learning
# rate the valid AUC peaks at epoch 2 and falls (one worker, fixed seed:
# deterministic).  Training stops N epochs after the best one; the closing
# line ("final":true, "best_epoch":2) carries epoch 2's test metrics; the
# closing checkpoint (`latest`) holds epoch 2's tensors bit for bit, and
# --predict scores with them; a run stopped by SIGTERM and restarted ends
# exactly like an uninterrupted one; --early-stop 0 trains every epoch.
source "$(dirname "$0")/_lib.sh"

"$BIN/mlgen" -q -o "$T/ml" --users 100 --items 120 --ratings 6000 --seed 7
"$BIN/ingest" -q --split user -o "$T/ml.lmdb" "$T/ml"
args=(--data "$T/ml.lmdb" --model ncf --threads 1 --batch 32 --lr 0.03 --epochs 20 --early-stop 2)
train() { "$BIN/trainer" -q "${args[@]}" "$@"; }

# check_run DIR: the metrics and checkpoints of an early-stopped run.
check_run() {
	/usr/bin/python3 - "$1" <<'PY'
import json, os, struct, sys

d = sys.argv[1]
rows = [json.loads(l) for l in open(d + "/metrics.jsonl")]
epochs = [r for r in rows if "final" not in r and "best_epoch" not in r]
close = [r for r in rows if "best_epoch" in r]
valid = {r["epoch"]: r for r in epochs if r["split"] == "valid"}
test = {r["epoch"]: r for r in epochs if r["split"] == "test"}
best = max(valid, key=lambda e: valid[e]["auc"])
last = max(valid)
assert best == 2, "the valid AUC should peak at epoch 2: %s" % {e: valid[e]["auc"] for e in valid}
assert last == best + 2, "stopped after epoch %d, expected %d (best + patience)" % (last, best + 2)
assert all(valid[e]["auc"] < valid[best]["auc"] for e in valid if e > best)
assert [r["split"] for r in close] == ["valid", "test"], close
assert rows[-1] is close[1] and close[1]["final"] is True, rows[-1]
for c in close:
    assert c["best_epoch"] == best and c["epoch"] == last, c
    assert c["train_loss"] is None and c["samples_per_s"] is None, c
    want = valid[best] if c["split"] == "valid" else test[best]
    for k in ("n", "auc", "logloss", "gauc", "baseline_auc", "baseline_logloss", "positive_rate"):
        assert c[k] == want[k], (k, c[k], want[k])

def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    meta = h.pop("__metadata__")
    return meta, {k: b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in h.items()}

meta, tensors = load(os.path.join(d, "latest"))
doc = json.loads(meta["hogrec"])
assert doc["final"] is True and doc["best_epoch"] == best and doc["bad_epochs"] == 2, doc
assert int(meta["epoch"]) == last, meta
step_per_epoch = int(meta["step"]) // last
assert int(doc["best_step"]) == best * step_per_epoch, doc
bmeta, btensors = load(os.path.join(d, "ckpt-%012d.safetensors" % (best * step_per_epoch)))
assert int(bmeta["epoch"]) == best, bmeta
assert sorted(tensors) == sorted(btensors) and len(tensors) > 3
for k in tensors:  # weights and optimizer state
    assert tensors[k] == btensors[k], "tensor %s differs from epoch %d's checkpoint" % (k, best)
print(best * step_per_epoch)
PY
}

train --out "$T/a" >/dev/null
best_step=$(check_run "$T/a") || fail "early-stopped run"
ok "stops 2 epochs after the best; the closing line and checkpoint are epoch 2's, bit for bit"

# --predict reads `latest`: the same logits as the best epoch's own checkpoint.
mkdir "$T/best-only"
name=$(printf 'ckpt-%012d.safetensors' "$best_step")
cp "$T/a/$name" "$T/best-only/" && ln -s "$name" "$T/best-only/latest"
"$BIN/trainer" -q --data "$T/ml.lmdb" --out "$T/a" --predict test --limit 50 >"$T/p-latest"
"$BIN/trainer" -q --data "$T/ml.lmdb" --out "$T/best-only" --predict test --limit 50 >"$T/p-best"
[ "$(wc -l <"$T/p-latest")" -eq 50 ] || fail "--predict printed $(wc -l <"$T/p-latest") lines"
cmp -s "$T/p-latest" "$T/p-best" || fail "--predict after the run does not score with the best epoch's model"
ok "--predict after the run scores with the best epoch's parameters"

# A finished run started again trains nothing and writes nothing (but its
# lock file, which names the pid).
rm "$T/a/lock"
sum=$(tree_sum "$T/a")
train --out "$T/a" >/dev/null 2>"$T/err" -v
grep -q "nothing to train: the run in .* stopped early after epoch 4" "$T/err" || { cat "$T/err"; fail "restart of a finished run"; }
rm "$T/a/lock"
[ "$(tree_sum "$T/a")" = "$sum" ] || fail "restarting a finished run changed its directory"
ok "a finished run restarted trains nothing"

# SIGTERM after epoch 1's checkpoint, and after epoch 3's (the patience
# counter at 1, the best at epoch 2): the restart ends like run a.
for n in 1 3; do
	start_paused ckpt.retention@$n "$T/k$n.err" "$BIN/trainer" "${args[@]}" --out "$T/k$n"
	kill -TERM $pid
	rc=0; wait $pid || rc=$?
	[ "$rc" -eq 0 ] || { cat "$T/k$n.err"; fail "SIGTERM at checkpoint $n: exit $rc"; }
	grep -q "stopped by a signal" "$T/k$n.err" || fail "the run finished before the signal"
	train --out "$T/k$n" >/dev/null 2>"$T/err" -v
	grep -q "resuming from" "$T/err" || fail "no resume after checkpoint $n"
	check_run "$T/k$n" >/dev/null || fail "the resumed run (signal at checkpoint $n)"
	[ "$(tail -2 "$T/a/metrics.jsonl")" = "$(tail -2 "$T/k$n/metrics.jsonl")" ] ||
		fail "closing lines differ after a restart at checkpoint $n"
	# (Up to train_loss: a SIGTERM may land after the loader started the
	# next epoch, and a resumed epoch's train_loss covers only its rest.)
	cmp -s <(grep -v '"final"' "$T/a/metrics.jsonl" | sed 's/,"train_loss".*//') \
		<(grep -v '"final"' "$T/k$n/metrics.jsonl" | sed 's/,"train_loss".*//') ||
		fail "epoch lines differ after a restart at checkpoint $n"
done
ok "stopped by SIGTERM (epoch 1 or 3) and restarted: the same stop, closing line and tensors"

# --early-stop 0: every epoch, the last epoch's parameters and final line.
train --out "$T/z" --epochs 6 --early-stop 0 >/dev/null
[ "$(grep -c '"split":"valid"' "$T/z/metrics.jsonl")" -eq 6 ] || fail "--early-stop 0 did not train 6 epochs"
tail -1 "$T/z/metrics.jsonl" | grep -q '"epoch":6,.*"final":true}$' || fail "--early-stop 0: the final line is not epoch 6's"
grep -q best_epoch "$T/z/metrics.jsonl" && fail "--early-stop 0 wrote a best_epoch"
ok "--early-stop 0 trains every epoch and keeps the last"

# --early-stop-metric: what early stopping selects on.  twotower (trained
# on positives: its label AUC is near chance) selects on sampled_auc by
# default; a ranking metric with --rank-metrics; the closing pair is the
# epoch with the best valid value of that metric, and the log names it.
select_check() { # DIR METRIC: best_epoch is the argmax of METRIC over the valid lines
	/usr/bin/python3 - "$1" "$2" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl")]
valid = {r["epoch"]: r[sys.argv[2]] for r in rows
         if r["split"] == "valid" and "best_epoch" not in r}
best = max(valid, key=lambda e: (valid[e], -e))
assert rows[-1]["best_epoch"] == best, (rows[-1]["best_epoch"], valid)
PY
}
train --out "$T/tt" --model twotower --lr 0.01 --epochs 5 >/dev/null 2>"$T/tt.err" -v
select_check "$T/tt" sampled_auc || fail "twotower: early stopping did not select on sampled_auc"
grep -q "valid sampled_auc" "$T/tt.err" || fail "twotower: the log does not name sampled_auc"
train --out "$T/r20" --early-stop-metric recall@20 --rank-metrics yes >/dev/null
select_check "$T/r20" "recall@20" || fail "--early-stop-metric recall@20: not its best epoch"
ok "early stopping selects on twotower's sampled_auc by default, and on recall@20 when asked"

# Refused before anything is written (exit 64, naming the option).
for bad in "recall@20" "rmse" "recall@7"; do
	expect_exit 64 "$BIN/trainer" -q "${args[@]}" --out "$T/bad" --early-stop-metric "$bad"
	grep -q "early.stop.metric" "$T/err" || fail "--early-stop-metric $bad: the message names no option"
	[ ! -e "$T/bad" ] || fail "--early-stop-metric $bad: OUT was created"
done
ok "--early-stop-metric: a ranking metric without --rank-metrics, rmse on a label model, an unknown name: exit 64, nothing written"

# A run resumed under another metric starts its selection afresh, saying so.
train --out "$T/sw" --epochs 2 --early-stop 5 >/dev/null
train --out "$T/sw" --epochs 4 --early-stop 5 --early-stop-metric gauc >/dev/null 2>"$T/sw.err"
grep -q "selected on valid auc, this run on gauc: early stopping starts afresh" "$T/sw.err" ||
	fail "resumed under another metric: no warning"
ok "resumed under another --early-stop-metric: a warning, the selection afresh"
