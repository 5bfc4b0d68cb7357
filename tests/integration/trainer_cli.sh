# bin/trainer end to end on a small generated store: metrics as JSON lines
# on stdout and in OUT/metrics.jsonl, both models, 1 and 2 workers, and
# every class of bad input giving a clear message and its exit status.
source "$(dirname "$0")/_lib.sh"

# Sanitizer builds run 5-50x slower: a smaller data set and narrower towers.
if [ -n "${HOGREC_SANITIZER:-}" ]; then
	ratings=4000 users=60 items=80 small=(--hidden 32,16)
else
	ratings=15000 users=150 items=200 small=()
fi
"$BIN/mlgen" -q -o "$T/ml" --users $users --items $items --ratings $ratings --seed 11
"$BIN/ingest" -q --split user -o "$T/ml.lmdb" "$T/ml"

for model in ncf dssm; do
	extra=()
	[ $model = dssm ] && extra=("${small[@]}")
	for threads in 1 2; do
		expect_exit 0 "$BIN/trainer" -q --data "$T/ml.lmdb" --model $model \
			--out "$T/out-$model-$threads" --epochs 2 --threads $threads --batch 64 "${extra[@]}"
		lines=$(wc -l <"$T/out-$model-$threads/metrics.jsonl")
		[ "$lines" -eq 6 ] || fail "$model: $lines metric lines, expected 6 (2 epochs x valid, test; the closing pair)"
		cmp -s "$T/out" "$T/out-$model-$threads/metrics.jsonl" || fail "stdout differs from metrics.jsonl"
		/usr/bin/python3 - "$T/out-$model-$threads/metrics.jsonl" <<'PY' || fail "$model metrics"
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["split"] for r in rows] == ["valid", "test"] * 3, rows
# The closing pair (early stopping, on by default): the best epoch's model.
close, rows = rows[4:], rows[:4]
assert close[1].get("final") is True and "final" not in rows[-1], close
k = close[0]["best_epoch"]
assert k in (1, 2) and close[1]["best_epoch"] == k, close
assert close[0]["auc"] == max(r["auc"] for r in rows if r["split"] == "valid"), close
assert close[1]["train_loss"] is None, close
for r in rows:
    for k in ("auc", "logloss", "gauc", "baseline_auc", "train_loss", "samples_per_s"):
        assert isinstance(r[k], (int, float)) and math.isfinite(r[k]), (k, r)
    assert 0.5 < r["auc"] <= 1.0, r          # the model learnt something
    assert r["logloss"] < 0.69, r            # better than a coin
assert rows[2]["train_loss"] < rows[0]["train_loss"], "train loss did not fall"
PY
	done
	ok "$model trains with 1 and 2 workers; metrics valid"
done

# Same seed, one worker: identical metrics (the whole pipeline is deterministic),
# whether the loader reads the store's map or its in-memory copy.
"$BIN/trainer" -q --data "$T/ml.lmdb" --model dssm --out "$T/det1" --threads 1 --batch 64 \
	--records map >/dev/null
"$BIN/trainer" -q --data "$T/ml.lmdb" --model dssm --out "$T/det2" --threads 1 --batch 64 \
	--records memory >/dev/null
cut -d, -f1-8 "$T/det1/metrics.jsonl" >"$T/a"; cut -d, -f1-8 "$T/det2/metrics.jsonl" >"$T/b"
[ -s "$T/a" ] || fail "no metrics from the determinism runs"
cmp -s "$T/a" "$T/b" || fail "one-worker runs with the same seed differ (map vs memory)"
ok "deterministic with one worker, map or memory"

# The copy is made for training, not for --predict (which reads no train records).
"$BIN/trainer" -v --data "$T/ml.lmdb" --model dssm --out "$T/det2" --records memory \
	--bench-loader >/dev/null 2>"$T/err"
grep -q "copied to memory" "$T/err" || fail "--records memory made no copy"
"$BIN/trainer" -v --data "$T/ml.lmdb" --model dssm --out "$T/det2" --records memory \
	--predict test --limit 2 >/dev/null 2>"$T/err"
grep -q "copied to memory" "$T/err" && fail "--predict copied the train records"
ok "train records copied for training only"

# --predict: the checkpoint names the model and its shape; nothing is written.
"$BIN/trainer" -q --data "$T/ml.lmdb" --model ncf --out "$T/pred" --threads 1 --batch 64 \
	--emb-dim 8 --hidden 16,4 >/dev/null
ls -lA --full-time "$T/pred" >"$T/ls-before"
sum_before=$(tree_sum "$T/pred")
expect_exit 0 "$BIN/trainer" --data "$T/ml.lmdb" --out "$T/pred" --predict test --limit 20
expect_err "predicting with $T/pred/ckpt-"
grep -q "resuming" "$T/err" && fail "--predict logs 'resuming'"
[ "$(wc -l <"$T/out")" -eq 20 ] || fail "--predict --limit 20 printed $(wc -l <"$T/out") lines"
cp "$T/out" "$T/pred-auto"
expect_exit 0 "$BIN/trainer" --data "$T/ml.lmdb" --model ncf --out "$T/pred" --predict test \
	--limit 20
cmp -s "$T/out" "$T/pred-auto" || fail "--predict without --model differs from --model ncf"
/usr/bin/python3 - "$T/pred-auto" <<'PY' || fail "--predict output"
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["key"] for r in rows] == list(range(20)), rows
assert all(r["split"] == "test" and math.isfinite(r["logit"]) for r in rows), rows
PY
expect_exit 64 "$BIN/trainer" --data "$T/ml.lmdb" --model dssm --out "$T/pred" --predict test
expect_err "is of model 'ncf', not 'dssm'"
grep -q "another --out" "$T/err" && fail "--predict advises another --out"
ls -lA --full-time "$T/pred" | cmp -s - "$T/ls-before" || fail "--predict changed '$T/pred'"
[ "$(tree_sum "$T/pred")" = "$sum_before" ] || fail "--predict changed a file in '$T/pred'"
ok "--predict: model and shape from the checkpoint, logged as predicting, writes nothing"

# --predict checks its arguments before it loads anything, and creates nothing.
expect_exit 64 "$BIN/trainer" --data "$T/none.lmdb" --out "$T/none" --predict tset
expect_err "--predict: 'tset' is not train, valid or test"
expect_exit 64 "$BIN/trainer" --data "$T/ml.lmdb" --model ncf --out "$T/pred" --predict tset
expect_err "'tset' is not train, valid or test"
expect_exit 66 "$BIN/trainer" --data "$T/ml.lmdb" --out "$T/none" --predict test
expect_err "--predict: '$T/none' does not exist"
[ ! -e "$T/none" ] || fail "--predict created '$T/none'"
mkdir "$T/nockpt"
expect_exit 66 "$BIN/trainer" --data "$T/ml.lmdb" --out "$T/nockpt" --predict test
expect_err "no checkpoint in '$T/nockpt'"
[ -z "$(ls -A "$T/nockpt")" ] || fail "--predict wrote into '$T/nockpt'"
expect_exit 66 "$BIN/trainer" --data "$T/none.lmdb" --out "$T/pred" --predict test
expect_err "none.lmdb"
ok "--predict: bad split, missing or empty --out and missing store refused; nothing created"

# Bad input.
expect_exit 66 "$BIN/trainer" --data "$T/none.lmdb" --model ncf --out "$T/x"
expect_err "none.lmdb"
expect_exit 65 "$BIN/trainer" --data "$T/ml" --model ncf --out "$T/x"
expect_err "'$T/ml' is a raw MovieLens directory (ratings.dat), not a hogrec store: make one with 'bin/ingest $T/ml', which writes '$T/ml.lmdb'"
mkdir "$T/empty"
expect_exit 65 "$BIN/trainer" --data "$T/empty" --model ncf --out "$T/x"
expect_err "'$T/empty' is not a hogrec store (no data.mdb)"
expect_exit 64 "$BIN/trainer" --data "$T/ml.lmdb" --model nope --out "$T/x"
expect_err "unknown model 'nope'"
expect_exit 64 "$BIN/trainer" --data "$T/ml.lmdb" --model ncf
expect_err "--out"
expect_exit 64 "$BIN/trainer" --data "$T/ml.lmdb" --model ncf --out "$T/x" --batch 0
expect_exit 64 "$BIN/trainer" --data "$T/ml.lmdb" --model ncf --out "$T/x" --optim rmsprop
"$BIN/mlgen" -q -o "$T/csv" --users 60 --items 80 --ratings 3000 --format csv
"$BIN/ingest" -q -o "$T/csv.lmdb" "$T/csv"
expect_exit 65 "$BIN/trainer" --data "$T/csv/" --model ncf --out "$T/x"
expect_err "is a raw MovieLens directory (ratings.csv)"
expect_err "which writes '$T/csv.lmdb'"
"$BIN/mlgen" -q -o "$T/m100k" --users 30 --items 40 --ratings 1000 --format ml-100k
expect_exit 65 "$BIN/trainer" --data "$T/m100k" --model ncf --out "$T/x"
expect_err "is a raw MovieLens directory (u.data)"
[ ! -e "$T/x" ] || fail "a refused store left '$T/x' behind"
expect_exit 64 "$BIN/trainer" --data "$T/csv.lmdb" --model dssm --out "$T/x"
expect_err "demographics"
# A store of another format version.
cp -r "$T/ml.lmdb" "$T/v2.lmdb"
/usr/bin/python3 - "$T/v2.lmdb" <<'PY'
import lmdb, msgpack, sys
env = lmdb.open(sys.argv[1], max_dbs=8)
db = env.open_db(b"meta", create=False)
with env.begin(write=True) as t:
    meta = msgpack.unpackb(t.get(b"meta", db=db))
    meta["version"] = 2
    t.put(b"meta", msgpack.packb(meta), db=db)
PY
store_reseal "$T/v2.lmdb"
expect_exit 65 "$BIN/trainer" --data "$T/v2.lmdb" --model ncf --out "$T/x"
expect_err "format version 2"
ok "bad input: missing store, not a store (a raw MovieLens directory named as such), other version, unknown model, bad options, missing fields"

# A NaN in the input (one train record's dense feature) is refused when the
# record is decoded, naming the record; a loss that becomes non-finite in
# training (an absurd learning rate) is reported with its step.  Both exit 65.
cp -r "$T/ml.lmdb" "$T/nan.lmdb"
/usr/bin/python3 - "$T/nan.lmdb" <<'PY'
import lmdb, msgpack, struct, sys
env = lmdb.open(sys.argv[1], max_dbs=8)
db = env.open_db(b"train", create=False)
with env.begin(write=True) as t:
    key = struct.pack(">Q", 5)
    rec = msgpack.unpackb(t.get(key, db=db))
    rec[12][0] = float("nan")
    t.put(key, msgpack.packb(rec, use_single_float=True), db=db)
PY
store_reseal "$T/nan.lmdb"
expect_exit 65 "$BIN/trainer" -q --data "$T/nan.lmdb" --model dssm --out "$T/nan" --threads 1 \
	"${small[@]}"
expect_err "train record 5: field 'dense' element 0 is nan"
expect_exit 65 "$BIN/trainer" -q --data "$T/ml.lmdb" --model dssm --out "$T/nan2" --threads 1 \
	--optim sgd --lr 100 "${small[@]}"
expect_err "not finite at step"
ok "non-finite loss detected"

# A config file; flags override it; --check-config prints the effective options.
cat >"$T/trainer.ini" <<INI
[trainer]
data = $T/ml.lmdb
model = ncf
out = $T/cfg
epochs = 1
batch = 64
INI
expect_exit 0 "$BIN/trainer" --config "$T/trainer.ini" --check-config --batch 128
grep -q "^batch = 128" "$T/out" || fail "--check-config does not show the flag's override"
grep -q "^model = ncf" "$T/out" || fail "--check-config does not show the file's value"
cp "$T/out" "$T/effective.ini"
expect_exit 0 "$BIN/trainer" --config "$T/effective.ini" --check-config
expect_exit 0 "$BIN/trainer" -q --config "$T/trainer.ini"
[ -f "$T/cfg/metrics.jsonl" ] || fail "training from a config file wrote no metrics"
printf '[trainer]\nbach = 3\n' >"$T/bad.ini"
expect_exit 64 "$BIN/trainer" --config "$T/bad.ini" --check-config
expect_err "bad.ini:2:"
expect_err "did you mean 'batch'"
expect_exit 66 "$BIN/trainer" --config "$T/none.ini"
ok "config file, flag overrides, --check-config, file:line errors"

# (Into a file: grep -q closing the pipe early would make the trainer's
# second write fail with SIGPIPE, and pipefail report that.)
"$BIN/trainer" --help >"$T/help" || fail "--help failed"
grep -q "dssm" "$T/help" || fail "--help does not list the models"
ok "--help lists the models"
