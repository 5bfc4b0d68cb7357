# The zoo's models learn and behave as docs/models.md says, on a small
# generated data set (300 users, 300 items, 20,000 ratings), one worker
# and fixed seeds throughout (deterministic):
#  - neumf, gmf and inttower on an explicit store beat the item-popularity
#    baseline's test AUC (inttower also with its CIR term, which it learns);
#    autorec on an implicit store beats the item-mean test RMSE;
#  - ncf, gmf and neumf train on an implicit store (sampled negatives) with a
#    finite loss and report "auc":null (valid and test hold only positives);
#  - one worker and one seed replay a neumf run with sampled negatives
#    byte for byte (timing fields aside);
#  - autorec trains with one worker; --threads 2 lends the second thread
#    to its optimizer steps and prints the same lines as --threads 1;
#  - autorec's early stopping selects on the valid RMSE: the closing lines
#    are the best epoch's;
#  - --predict on autorec's checkpoint prints one finite rating per record,
#    within the train ratings' range, whose RMSE is the closing line's;
#  - autoint beats the item-popularity baseline's test AUC; with dropout,
#    one worker and one seed replay its run.
#  - din beats the popularity baseline, and reads its history's content and
#    order (bin/mlgen --interest 3, histories shuffled at evaluation);
#  - dien beats the popularity baseline (its aux_loss falling), and reads its
#    whole history's order and content (bin/mlgen data with a strong
#    interest term, histories shuffled at evaluation).
# Margins, and the spread over seeds they were chosen from, are given with
# each check.  A check marked "product bug" documents a known defect: it
# fails the script at the end, after the other checks have run.
source "$(dirname "$0")/_lib.sh"

bugs=0
product_bug() { echo "FAIL (product bug): $*" >&2; bugs=$((bugs + 1)); }

"$BIN/mlgen" -q -o "$T/ml" --users 300 --items 300 --ratings 20000 --seed 5
"$BIN/ingest" -q --split user -o "$T/ex.lmdb" "$T/ml"
"$BIN/ingest" -q --split user --label implicit -o "$T/im.lmdb" "$T/ml"
train() { "$BIN/trainer" -q --threads 1 "$@"; }

# Under a sanitizer (make asan, make tsan) the checks below, whose margins
# need thousands of steps, give way to a smoke run of every model that
# bin/trainer lists: one epoch on a small store with two workers (Hogwild
# under TSan), the ranking metrics and their baselines, and --predict from
# the checkpoint.  make test runs the checks themselves; sanitized, they
# took three quarters of CI's time.
if [ -n "${HOGREC_SANITIZER:-}" ]; then
	"$BIN/mlgen" -q -o "$T/small" --users 80 --items 60 --ratings 3000 --seed 2
	"$BIN/ingest" -q --split user -o "$T/small.lmdb" "$T/small"
	"$BIN/ingest" -q --split user --label implicit -o "$T/small-im.lmdb" "$T/small"
	models=$("$BIN/trainer" --help | sed -n '/^models:/,/^$/s/^  \([a-z]*\)  .*/\1/p')
	[ "$(echo "$models" | wc -w)" -ge 9 ] || fail "trainer --help lists too few models: $models"
	for m in $models; do
		store="$T/small.lmdb"
		[ "$m" = autorec ] && store="$T/small-im.lmdb"
		small=(--emb-dim 8) # the code paths, not the defaults' sizes
		case $m in
		gmf) ;;
		autorec) small+=(--hidden 16) ;;
		inttower) small+=(--hidden 16,8 --heads 4 --head-dim 8) ;;
		*) small+=(--hidden 16,8) ;;
		esac
		"$BIN/trainer" -q --threads 2 --data "$store" --model "$m" --out "$T/smoke-$m" \
			--epochs 1 --batch 32 --rank-metrics yes "${small[@]}" >"$T/smoke-$m.jsonl" ||
			fail "$m: one epoch under $HOGREC_SANITIZER"
		grep -q '"split":"test".*"recall@10"' "$T/smoke-$m.jsonl" || fail "$m: no ranked test line"
		"$BIN/trainer" --data "$store" --out "$T/smoke-$m" --predict test --limit 50 \
			>/dev/null || fail "$m: --predict under $HOGREC_SANITIZER"
	done
	ok "every model ($(echo $models | wc -w)) trains, ranks and predicts under $HOGREC_SANITIZER"
	exit 0
fi

# py FILE CODE... : runs a Python check with the JSON lines of FILE in `rows`
py() {
	local f=$1; shift
	/usr/bin/python3 -c "
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
$*" "$f"
}

# --- 1. Learning --------------------------------------------------------------

# NeuMF on explicit labels: the closing test line's AUC against the item
# popularity baseline on the same rows (0.7250).  Measured margins (auc -
# baseline_auc) over --seed 1..20: 0.0885 .. 0.0978 with --threads 1, the
# same with --threads 2; over mlgen --seed 1..7 (train seed 1): 0.082 ..
# 0.101.  Asserted: >= 0.04, under half the smallest; an untrained model
# is near 0.5 and one that only learnt popularity near the baseline.
train --data "$T/ex.lmdb" --model neumf --out "$T/neumf" --batch 64 --epochs 4 --seed 1 >/dev/null
py "$T/neumf/metrics.jsonl" '
r = rows[-1]
assert r["split"] == "test" and r.get("final") is True and r["model"] == "neumf", r
assert math.isfinite(r["auc"]) and math.isfinite(r["baseline_auc"]), r
assert r["auc"] - r["baseline_auc"] >= 0.04, \
    "neumf test auc %.4f is not 0.04 above baseline_auc %.4f" % (r["auc"], r["baseline_auc"])
print("neumf: auc %.4f, baseline_auc %.4f" % (r["auc"], r["baseline_auc"]))
' || fail "neumf does not beat the popularity baseline (explicit store)"
ok "neumf learns: test AUC at least 0.04 above the popularity baseline"

# GMF alone (one linear layer over the product of the embeddings) learns
# more slowly: from N(0, 0.05^2) tables the product starts near 0, and
# epoch 1 is near chance.  Up to --epochs 20 with early stopping (the run
# stops after epoch 10 or 11, best epoch 8 or 9).  Measured margins (auc -
# baseline_auc) over --seed 1..10: 0.0459 .. 0.0614 with --threads 1,
# 0.055 .. 0.061 with --threads 2 (seeds 1..3); over mlgen --seed 1..7
# (train seed 1): 0.0498 .. 0.074.  Asserted: >= 0.02, under half the
# smallest.
train --data "$T/ex.lmdb" --model gmf --out "$T/gmf" --batch 64 --epochs 20 --seed 1 >/dev/null
py "$T/gmf/metrics.jsonl" '
r = rows[-1]
assert r["split"] == "test" and r.get("final") is True and r["model"] == "gmf", r
assert r["auc"] - r["baseline_auc"] >= 0.02, \
    "gmf test auc %.4f is not 0.02 above baseline_auc %.4f" % (r["auc"], r["baseline_auc"])
print("gmf: auc %.4f, baseline_auc %.4f" % (r["auc"], r["baseline_auc"]))
' || fail "gmf does not beat the popularity baseline (explicit store)"
ok "gmf learns: test AUC at least 0.02 above the popularity baseline"

# IntTower on explicit labels, its defaults (32 heads of 32, fe_score mean):
# the closing test line's AUC against popularity's on the same rows
# (0.7250).  Measured margins (auc - baseline_auc) over --seed 1..10:
# 0.0664 .. 0.0877 (early stopping closed them at epochs 1..4).  Asserted:
# >= 0.03, under half the smallest.
train --data "$T/ex.lmdb" --model inttower --out "$T/inttower" --batch 64 --epochs 4 --seed 1 \
	>/dev/null
py "$T/inttower/metrics.jsonl" '
r = rows[-1]
assert r["split"] == "test" and r.get("final") is True and r["model"] == "inttower", r
assert math.isfinite(r["auc"]) and math.isfinite(r["baseline_auc"]), r
assert r["auc"] - r["baseline_auc"] >= 0.03, \
    "inttower test auc %.4f is not 0.03 above baseline_auc %.4f" % (r["auc"], r["baseline_auc"])
# the CIR term is reported, off by default: 0 in every epoch line
cir = [x["cir_loss"] for x in rows if x.get("train_loss") is not None]
assert cir and all(c == 0 for c in cir), rows
print("inttower: auc %.4f, baseline_auc %.4f" % (r["auc"], r["baseline_auc"]))
' || fail "inttower does not beat the popularity baseline (explicit store)"
ok "inttower learns: test AUC at least 0.03 above the popularity baseline"

# IntTower's CIR term at weight 1: an in-batch InfoNCE over each batch's
# positive pairs (about 64 * 0.77 = 49 of them: chance is ln 49 = 3.9)
# must be learnt, not just reported.  Measured over --seed 1..10 (3
# epochs, no early stopping): cir_loss 3.44..3.47, 2.77..2.82,
# 2.52..2.56 by epoch, falling every epoch; AUC margin over popularity
# 0.046..0.074.  Asserted: falling, epoch 3 at most 3.2 (under half the
# smallest distance to chance, 1.33), margin >= 0.02.  A CIR gradient
# dropped from the backward leaves it at chance.
train --data "$T/ex.lmdb" --model inttower --out "$T/inttower-cir" --batch 64 --epochs 3 \
	--early-stop 0 --seed 1 --cir-weight 1 >/dev/null
py "$T/inttower-cir/metrics.jsonl" '
r = rows[-1]
c = [x["cir_loss"] for x in rows if x["split"] == "test"]
assert len(c) == 3 and all(math.isfinite(x) for x in c), rows
assert c[0] > c[1] > c[2] and c[2] <= 3.2, "cir_loss by epoch %s" % c
assert r["auc"] - r["baseline_auc"] >= 0.02, \
    "inttower (cir) test auc %.4f is not 0.02 above baseline_auc %.4f" % (r["auc"], r["baseline_auc"])
print("inttower, cir_weight 1: cir_loss %s, auc %.4f" % (" ".join("%.3f" % x for x in c), r["auc"]))
' || fail "inttower does not learn its CIR term"
ok "inttower's CIR term falls below chance (weight 1), and it still beats popularity"

# I-AutoRec on every rating (implicit store): 298 item rows, batch 16, 19
# steps per epoch.  The closing test line's RMSE against the train item
# means' (1.0530).  Measured margins (rmse_item_mean - rmse) over --seed
# 1..20: 0.0316 .. 0.0551 (one worker whatever --threads says).  Asserted: >= 0.01, under half the smallest;
# epoch 1's model (1.26) and an untrained one are far above the baseline.
# The margin belongs to this data set: over mlgen --seed 1..7 (train seed
# 1) it ranged 0.011 .. 0.049, so another data seed needs measuring again.
train --data "$T/im.lmdb" --model autorec --out "$T/autorec" --batch 16 --l2 0.01 --epochs 20 \
	--seed 1 >/dev/null
py "$T/autorec/metrics.jsonl" '
r = rows[-1]
assert r["split"] == "test" and r.get("final") is True and r["model"] == "autorec", r
assert r["rmse_item_mean"] - r["rmse"] >= 0.01, \
    "autorec test rmse %.4f is not 0.01 below rmse_item_mean %.4f" % (r["rmse"], r["rmse_item_mean"])
assert r["rmse"] < r["rmse_global_mean"], r
print("autorec: rmse %.4f, rmse_item_mean %.4f" % (r["rmse"], r["rmse_item_mean"]))
' || fail "autorec does not beat the item-mean RMSE (implicit store)"
ok "autorec learns: test RMSE at least 0.01 below the item means'"

# ncf, gmf and neumf on an implicit store: each positive plus num_neg
# sampled negatives.  The valid and test splits hold positives only: AUC
# undefined.
for model in ncf gmf neumf; do
	train --data "$T/im.lmdb" --model $model --out "$T/im-$model" --batch 64 --epochs 2 \
		--early-stop 0 --seed 2 >/dev/null
	py "$T/im-$model/metrics.jsonl" '
assert [r["split"] for r in rows] == ["valid", "test"] * 2, rows
assert rows[-1].get("final") is True, rows[-1]
for r in rows:
    for k in ("auc", "gauc", "baseline_auc"):
        assert r[k] is None, "%s is %r, expected null: %s" % (k, r[k], r)
    assert r["positive_rate"] == 1, r
    assert isinstance(r["logloss"], float) and math.isfinite(r["logloss"]), r
    # The negatives are in the loss: on positives alone it would fall to ~0.
    assert isinstance(r["train_loss"], float) and math.isfinite(r["train_loss"]), r
    assert r["train_loss"] > 0.05, r
' || fail "$model on an implicit store: metrics"
done
ok "ncf, gmf and neumf train on an implicit store (finite loss, auc null)"

# Early stopping watches the valid AUC, which an implicit store does not
# define: training should run its --epochs (as with no valid split), not
# stop after --early-stop epochs of "no better valid auc".
train --data "$T/im.lmdb" --model neumf --out "$T/im-es" --batch 64 --epochs 4 --seed 2 >/dev/null
n=$(grep -c '"split":"valid","epoch":[0-9]*,.*"samples_per_s":[0-9]' "$T/im-es/metrics.jsonl" || true)
if [ "$n" -eq 4 ]; then
	ok "neumf on an implicit store trains its --epochs 4"
else
	product_bug "'bin/trainer --data IMPLICIT --model neumf --epochs 4' (default --early-stop 2)" \
		"trained $n epochs, expected 4: early stopping counts the undefined valid AUC as" \
		"'no better' and stops after 2 ('best 0.0000 at epoch 0' in the log)"
fi

# --- 2. Reproducibility -------------------------------------------------------

# One worker, one seed: the sampled negatives come from the per-batch
# stream, so two runs print the same lines but for samples_per_s and
# gflops.  Another seed changes them (the comparison is not vacuous).
for r in a b; do
	train --data "$T/im.lmdb" --model neumf --out "$T/rep-$r" --batch 64 --epochs 2 \
		--early-stop 0 --seed 7 >/dev/null
done
train --data "$T/im.lmdb" --model neumf --out "$T/rep-c" --batch 64 --epochs 2 --early-stop 0 \
	--seed 8 >/dev/null
untimed() { sed -E 's/"(samples_per_s|gflops)":[^,}]*/"\1":T/g' "$1/metrics.jsonl"; }
[ "$(wc -l <"$T/rep-a/metrics.jsonl")" -eq 4 ] || fail "reproducibility run: not 4 metrics lines"
cmp -s <(untimed "$T/rep-a") <(untimed "$T/rep-b") || {
	diff <(untimed "$T/rep-a") <(untimed "$T/rep-b") >&2
	fail "neumf with sampled negatives, --threads 1 --seed 7: two runs differ"
}
cmp -s <(untimed "$T/rep-a") <(untimed "$T/rep-c") && fail "--seed 7 and --seed 8 give the same lines"
ok "neumf with sampled negatives: one worker, one seed, the same lines"

# autorec caps its workers at one; with --threads 2 the spare thread
# applies part of each optimizer step, every value by the same arithmetic,
# so the run is the --threads 1 run of section 1 line for line.
"$BIN/trainer" --threads 2 --data "$T/im.lmdb" --model autorec --out "$T/autorec-2" --batch 16 \
	--l2 0.01 --epochs 20 --seed 1 2>"$T/autorec-2.log" >/dev/null ||
	fail "autorec --threads 2 failed"
grep -q "the other threads share its optimizer steps" "$T/autorec-2.log" ||
	fail "autorec --threads 2 does not say what the second thread does"
cmp -s <(untimed "$T/autorec") <(untimed "$T/autorec-2") || {
	diff <(untimed "$T/autorec") <(untimed "$T/autorec-2") >&2
	fail "autorec: --threads 2 (shared optimizer steps) and --threads 1 print different lines"
}
ok "autorec --threads 2: the optimizer steps shared by two threads, the same lines as one"

# --- 5. Early stopping on the valid RMSE --------------------------------------

# A higher learning rate: the valid RMSE falls, then turns up (measured
# with --seed 1..5 at --lr 0.003 and 0.01: the turn after epoch 4..6 in
# every run).  With --early-stop 1 the run stops one epoch after the best
# and closes with that epoch's valid and test lines.
train --data "$T/im.lmdb" --model autorec --out "$T/es" --batch 16 --lr 0.003 --epochs 15 \
	--early-stop 1 --seed 1 >/dev/null
py "$T/es/metrics.jsonl" '
epochs = [r for r in rows if "best_epoch" not in r]
close = [r for r in rows if "best_epoch" in r]
valid = {r["epoch"]: r for r in epochs if r["split"] == "valid"}
test = {r["epoch"]: r for r in epochs if r["split"] == "test"}
assert sorted(valid) == sorted(test) == list(range(1, len(valid) + 1)), rows
best = min(valid, key=lambda e: valid[e]["rmse"])
last = max(valid)
assert last < 15, "the valid rmse never turned up in 15 epochs: %s" % [valid[e]["rmse"] for e in valid]
assert last == best + 1, "stopped after epoch %d, best %d (--early-stop 1)" % (last, best)
assert [r["split"] for r in close] == ["valid", "test"] and rows[-2:] == close, rows[-2:]
assert close[1].get("final") is True and "final" not in close[0], close
for c in close:
    assert c["best_epoch"] == best and c["epoch"] == last, c
    assert c["train_loss"] is None and c["samples_per_s"] is None and c["gflops"] is None, c
    want = (valid if c["split"] == "valid" else test)[best]
    for k in ("n", "rmse", "rmse_global_mean", "rmse_item_mean", "rmse_user_mean"):
        assert c[k] == want[k], "closing %s %s: %r, epoch %d printed %r" % (c["split"], k, c[k], best, want[k])
print("early stop: best epoch %d of %d, valid rmse %s" % (best, last, [valid[e]["rmse"] for e in valid]))
' || fail "autorec early stopping on the valid RMSE"
ok "autorec --early-stop 1: stops after the valid RMSE turns; closing lines are the best epoch's"

# --- 6. --predict with an autorec checkpoint ----------------------------------

# The early-stopped checkpoint (`latest`: the best epoch's parameters).
# Every test record gets one line (--limit above the split's size) with a
# finite predicted rating within the train ratings' range, and their RMSE
# against the ratings in ratings.dat is the closing test line's.
expect_exit 0 "$BIN/trainer" -q --data "$T/im.lmdb" --out "$T/es" --predict test --limit 1000000
mv "$T/out" "$T/p-test"
expect_exit 0 "$BIN/trainer" -q --data "$T/im.lmdb" --out "$T/es" --predict train --limit 1000000
mv "$T/out" "$T/p-train"
/usr/bin/python3 - "$T/ml/ratings.dat" "$T/p-train" "$T/p-test" "$T/es/metrics.jsonl" <<'PY' ||
import json, math, sys
stars = {}
for line in open(sys.argv[1]):
    u, i, r, _ = line.split("::")
    assert (int(u), int(i)) not in stars, "user %s rated item %s twice" % (u, i)
    stars[(int(u), int(i))] = int(r)
train = [json.loads(l) for l in open(sys.argv[2])]
test = [json.loads(l) for l in open(sys.argv[3])]
final = [json.loads(l) for l in open(sys.argv[4])][-1]
assert final["split"] == "test" and final.get("final") is True, final
assert len(test) == final["n"], "%d lines for %d test records" % (len(test), final["n"])
assert [p["key"] for p in test] == list(range(len(test))), "keys are not 0..n-1"
lo = min(stars[(p["user_raw"], p["item_raw"])] for p in train)
hi = max(stars[(p["user_raw"], p["item_raw"])] for p in train)
for p in train + test:
    v = p["logit"]
    assert type(v) in (int, float) and math.isfinite(v), p  # %.9g: a clamped 5 prints as 5
    assert lo <= v <= hi, "prediction %r outside the train ratings' range [%d, %d]: %s" % (v, lo, hi, p)
assert all(p["split"] == "test" for p in test), test[:3]
se = sum((p["logit"] - stars[(p["user_raw"], p["item_raw"])]) ** 2 for p in test)
rmse = math.sqrt(se / len(test))
assert abs(rmse - final["rmse"]) < 1e-5, "--predict's test rmse %.6f, the closing line's %.6f" % (rmse, final["rmse"])
PY
	fail "--predict with the autorec checkpoint"
ok "autorec --predict: one finite rating per record, in the train range; their RMSE is the closing line's"

# twotower (softmax over positives) learns what it is trained for: to rank a
# user's held-out positives above random items ("sampled_auc"), beyond
# ranking by item popularity on the same pairs ("baseline_sampled_auc",
# 0.5955 on this store).  Its label AUC is not the measure: it never sees a
# negative label.  Measured margins over --seed 1..3 (3 epochs, batch 64,
# one thread): 0.073 .. 0.095; asserted 0.035.
train --data "$T/ex.lmdb" --model twotower --out "$T/tt" --epochs 3 --batch 64 --early-stop 0 \
	>"$T/tt.jsonl" || fail "twotower training"
py "$T/tt.jsonl" '
t = [r for r in rows if r["split"] == "test"][-1]
m = t["sampled_auc"] - t["baseline_sampled_auc"]
assert m >= 0.035, "twotower sampled AUC %.4f, popularity %.4f" % (t["sampled_auc"], t["baseline_sampled_auc"])
' || fail "twotower does not beat popularity on the sampled AUC"
ok "twotower ranks held-out positives above random items, beyond popularity"

# --predict takes the model options from the checkpoint: a flag that names one is refused.
expect_exit 64 "$BIN/trainer" -q --data "$T/im.lmdb" --out "$T/es" --predict test --kind user
grep -q "takes the model's options from checkpoint" "$T/err" ||
	fail "--predict --kind: no message saying the checkpoint holds the options"
ok "--predict refuses model options"

# --- autoint (issue 11) -------------------------------------------------------

# AutoInt (FuxiCTR's defaults: 2 attention layers, DNN 64,64,64) on explicit
# labels: the closing test line's AUC against the item popularity baseline
# on the same rows (0.7250).  Measured margins (auc - baseline_auc), batch
# 64, 4 epochs: 0.0863 .. 0.0938 over --seed 1..10 with --threads 1,
# 0.0858 .. 0.0924 over --seed 1..5 with --threads 2; over mlgen --seed 1..7
# (train seed 1): 0.0827 .. 0.1013.  Asserted: >= 0.04, under half the
# smallest.
train --data "$T/ex.lmdb" --model autoint --out "$T/autoint" --batch 64 --epochs 4 --seed 1 \
	>/dev/null
py "$T/autoint/metrics.jsonl" '
r = rows[-1]
assert r["split"] == "test" and r.get("final") is True and r["model"] == "autoint", r
assert math.isfinite(r["auc"]) and math.isfinite(r["baseline_auc"]), r
assert r["auc"] - r["baseline_auc"] >= 0.04, \
    "autoint test auc %.4f is not 0.04 above baseline_auc %.4f" % (r["auc"], r["baseline_auc"])
print("autoint: auc %.4f, baseline_auc %.4f" % (r["auc"], r["baseline_auc"]))
' || fail "autoint does not beat the popularity baseline (explicit store)"
ok "autoint learns: test AUC at least 0.04 above the popularity baseline"

# Its dropout (net_dropout, on the attention weights and the DNN) draws from
# the worker's per-batch stream: one worker and one seed replay a run line
# for line (timing fields aside), and another seed differs.
for r in a b c; do
	seed=7
	[ $r = c ] && seed=8
	train --data "$T/ex.lmdb" --model autoint --out "$T/ai-rep-$r" --batch 64 --epochs 2 \
		--early-stop 0 --net-dropout 0.2 --use-wide yes --layer-norm yes --seed $seed \
		>/dev/null
done
cmp -s <(untimed "$T/ai-rep-a") <(untimed "$T/ai-rep-b") || {
	diff <(untimed "$T/ai-rep-a") <(untimed "$T/ai-rep-b") >&2
	fail "autoint with dropout, --threads 1 --seed 7: two runs differ"
}
cmp -s <(untimed "$T/ai-rep-a") <(untimed "$T/ai-rep-c") &&
	fail "autoint: --seed 7 and --seed 8 give the same lines"
ok "autoint with dropout: one worker, one seed, the same lines"

# --- end autoint --------------------------------------------------------------
# --- din: begin --------------------------------------------------------------

# DIN on explicit labels beats the item-popularity baseline (0.7250), as
# neumf above.  Measured margins (auc - baseline_auc) over --seed 1..10:
# 0.0911 .. 0.1076.  Asserted: 0.045, under half the smallest.
train --data "$T/ex.lmdb" --model din --out "$T/din" --batch 64 --epochs 4 --seed 1 >/dev/null
py "$T/din/metrics.jsonl" '
r = rows[-1]
assert r["split"] == "test" and r.get("final") is True and r["model"] == "din", r
assert r["auc"] - r["baseline_auc"] >= 0.045, \
    "din test auc %.4f is not 0.045 above baseline_auc %.4f" % (r["auc"], r["baseline_auc"])
print("din: auc %.4f, baseline_auc %.4f" % (r["auc"], r["baseline_auc"]))
' || fail "din does not beat the popularity baseline (explicit store)"
ok "din learns: test AUC at least 0.045 above the popularity baseline"

# DIN reads its history's content and order, on the generator with a strong
# planted interest: bin/mlgen --interest 3 (the default 0.4 is worth 0.005
# of the oracle's AUC, too little to show; 3 raises the oracle from 0.873
# to 0.948 on this shape: a movie of the user's current interest genre, a
# sticky chain along the timeline, gains 3 logits).  Histories of the last
# 30 positives (user split); evaluation shuffles them (HOGREC_EVAL_SHUFFLE,
# trainer/eval.c: "order" permutes each record's history, "rows" gives each
# record another record's); training does not see it, so with one worker
# and one seed each run trains the same model and only its test lines
# differ.
"$BIN/mlgen" -q -o "$T/interest" --users 600 --items 500 --ratings 60000 --interest 3 --seed 1
"$BIN/ingest" -q --split user --hist-len 30 -o "$T/interest.lmdb" "$T/interest"
# din_interest NAME SHUFFLE [options...]: the test AUC of din trained on it
din_interest() {
	local name=$1 shuffle=$2
	shift 2
	env HOGREC_EVAL_SHUFFLE="$shuffle" "$BIN/trainer" -q --threads 1 --data "$T/interest.lmdb" \
		--model din --out "$T/di-$name" --batch 64 --epochs 4 --early-stop 0 --seed 1 "$@" \
		>"$T/di-$name.jsonl" || fail "din on the interest data ($name)"
}
din_interest w5 none --hist-window 5
din_interest w5-order order --hist-window 5
din_interest w5-rows rows --hist-window 5
din_interest all none
din_interest all-order order
/usr/bin/python3 - "$T" <<'PY' || fail "din: the history's content and order"
import json, sys
def auc(name):
    r = [json.loads(l) for l in open("%s/di-%s.jsonl" % (sys.argv[1], name))][-1]
    assert r["split"] == "test" and r.get("final") is True, r
    return r["auc"]
a = {k: auc(k) for k in ("w5", "w5-order", "w5-rows", "all", "all-order")}
print("din on the interest data: %s" % a)
# Margins measured over --seed 1..10 (and over mlgen --seed 2..4 with
# --seed 1); asserted: half the smallest of the thirteen.
# Content: another record's history (drops 0.031 .. 0.040; asserted 0.015).
assert a["w5"] - a["w5-rows"] >= 0.015, a
# Order: with the last 5 items attended, a shuffled history puts older
# interests there (drops 0.021 .. 0.033, other data 0.014 .. 0.020;
# asserted 0.007).
assert a["w5"] - a["w5-order"] >= 0.007, a
# The recent items carry the interest: the 5-item window beats the whole
# 30-item history (margins 0.017 .. 0.027, other data 0.007 .. 0.014;
# asserted 0.0035) ...
assert a["w5"] - a["all"] >= 0.0035, a
# ... which a weighted sum reads without its order: shuffled, the same AUC
# (only float rounding of the sums differs).
assert abs(a["all"] - a["all-order"]) < 1e-4, a
PY
ok "din reads its history: another record's or a shuffled one (5-item window) lowers its AUC; the whole history's order does not matter"

# --- din: end ----------------------------------------------------------------

# --- dien: begin (issue 11) ---------------------------------------------------

# DIEN on explicit labels: the closing test line's AUC against the item
# popularity baseline (0.7250).  Measured margins (auc - baseline_auc)
# over --seed 1..10: 0.0817 .. 0.0999.  Asserted: >= 0.034, under
# half the smallest.  Both loss terms are reported, the auxiliary one
# trained down from log 2 = 0.693 (last epoch over the seeds:
# 0.542 .. 0.544; asserted under 0.62).
train --data "$T/ex.lmdb" --model dien --out "$T/dien" --batch 64 --epochs 4 --seed 1 >/dev/null
py "$T/dien/metrics.jsonl" '
r = rows[-1]
assert r["split"] == "test" and r.get("final") is True and r["model"] == "dien", r
assert r["auc"] - r["baseline_auc"] >= 0.034, \
    "dien test auc %.4f is not 0.034 above baseline_auc %.4f" % (r["auc"], r["baseline_auc"])
e = [x for x in rows if x["split"] == "test" and "best_epoch" not in x]
assert all(x["aux_loss"] > 0 for x in e) and e[-1]["aux_loss"] < 0.62, e
print("dien: auc %.4f, baseline_auc %.4f, aux_loss %s" % (r["auc"], r["baseline_auc"],
      [x["aux_loss"] for x in e]))
' || fail "dien does not beat the popularity baseline (explicit store)"
ok "dien learns: test AUC at least 0.034 above the popularity baseline; aux_loss falls"

# DIEN reads its history's order and content, on bin/mlgen's data with a
# strong interest term (--interest 3: a movie of the user's current
# interest genre, a sticky chain along the user's timeline, gets +3 on the
# logit; the oracle's AUC is 0.948, 0.868 without the term), whose signal
# lives in the most recent history.  The whole 30-item history (user
# split), the same model scored with its histories as stored, each one
# shuffled, or another record's (HOGREC_EVAL_SHUFFLE=order|rows, trainer/
# eval.c; evaluation only: one worker and one seed train the same model in
# the three runs).  The evolution layer's last state is what sees the
# order (docs/models.md, "dien": the paper's AUGRU, whose gates a softmax
# over 30 positions keeps near 0, moves by -0.001 here).
"$BIN/mlgen" -q -o "$T/seq" --users 600 --items 500 --ratings 60000 --interest 3 --seed 1
"$BIN/ingest" -q --split user --hist-len 30 -o "$T/seq.lmdb" "$T/seq"
dien_seq() {
	env HOGREC_EVAL_SHUFFLE="$2" "$BIN/trainer" -q --threads 1 --data "$T/seq.lmdb" \
		--model dien --out "$T/ds-$1" --batch 64 --epochs 4 --early-stop 0 --seed 1 \
		>"$T/ds-$1.jsonl" || fail "dien on the interest data ($1)"
}
dien_seq keep none
dien_seq order order
dien_seq rows rows
/usr/bin/python3 - "$T" <<'PY' || fail "dien: the history's content and order"
import json, sys
def auc(name):
    r = [json.loads(l) for l in open("%s/ds-%s.jsonl" % (sys.argv[1], name))][-1]
    assert r["split"] == "test" and r.get("final") is True, r
    return r["auc"]
a = {k: auc(k) for k in ("keep", "order", "rows")}
print("dien on the interest data: %s" % a)
# Order: each history shuffled (measured drops over --seed 1..10:
# 0.0115 .. 0.0190, test AUC kept 0.819 .. 0.828; asserted 0.005, under
# half the smallest).  The MLP also reads the history's sum and its
# product with the candidate, which carry no order.
assert a["keep"] - a["order"] >= 0.005, a
# Content: another record's history (drops 0.0538 .. 0.0717; asserted
# 0.017).
assert a["keep"] - a["rows"] >= 0.017, a
PY
ok "dien reads its history: shuffled or another record's, the test AUC falls"

# --- dien: end ----------------------------------------------------------------

[ "$bugs" -eq 0 ] || fail "$bugs product bug(s) reported above"
