#!/usr/bin/env bash
# make bench: benchmarks as JSON lines on stdout (one object per line);
# progress and logs on stderr.  Ratios are measured within this one run, so
# a noisy shared machine moves both sides together.
#
#   BENCH_RATINGS  ratings in the synthetic data set (default: ml-1m's 1000209)
#   BENCH_REPEAT   hogrec ingest runs, the best is reported (default 3)
#   BENCH_PANDAS   0 skips the pandas reference (default 1)
#   BENCH_TRAIN    0 skips the training benchmarks (default 1)
#   BENCH_EPOCHS   training epochs for the accuracy comparison (default 2)
#   BENCH_TORCH    0 skips the PyTorch reference (default 1)
#   BENCH_ONLY     the sections to run, by name (default: all): ingest, loader,
#                  train (ncf and dssm; implied by din, inttower and dien, whose
#                  lines compare with dssm), zoo (neumf, twotower, autorec), din,
#                  inttower, autoint, dien, rank, retrieval, serve; e.g.
#                  BENCH_ONLY="inttower dien retrieval".  A section's body keeps
#                  the file's indentation: `if want NAME; then` ... `fi` mark it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-bin}
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
RATINGS=${BENCH_RATINGS:-1000209}
REPEAT=${BENCH_REPEAT:-3}
PANDAS=${BENCH_PANDAS:-1}
W="$ROOT/build/bench"

# What the references need comes from `make deps-bench` (not from `make
# deps`, which installs only what building, running and testing need).
missing=""
[ -x /usr/bin/time ] || missing="$missing /usr/bin/time (package time)"
if [ "$PANDAS" = 1 ] && ! /usr/bin/python3 -c 'import pandas' 2>/dev/null; then
	missing="$missing pandas (BENCH_PANDAS=0 skips it)"
fi
if [ "${BENCH_TORCH:-1}" = 1 ] && [ "${BENCH_TRAIN:-1}" = 1 ] &&
	! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
	missing="$missing PyTorch (BENCH_TORCH=0 skips it)"
fi
if [ -n "$missing" ]; then
	echo "bench: missing:$missing; install them with 'make deps-bench' (as root)" >&2
	exit 69
fi
mkdir -p "$W"
DATA="$W/ml-1m-$RATINGS"
want() { # NAME: whether BENCH_ONLY (empty: everything) names the section
	[ -z "${BENCH_ONLY:-}" ] && return 0
	case " ${BENCH_ONLY//,/ } " in *" $1 "*) return 0 ;; esac
	return 1
}

# Generated afresh each run (under a second): data from an older bin/mlgen
# would not match the oracle of this one.
echo "bench: generating $RATINGS synthetic ratings in $DATA" >&2
rm -rf "$DATA"
"$BIN/mlgen" -q -o "$DATA" --ratings "$RATINGS" >&2
oracle=$("$BIN/mlgen" --oracle "$DATA")
echo "{\"bench\":\"mlgen_oracle\",\"ratings\":$RATINGS,\"result\":$oracle}"

if want ingest; then
# hogrec ingest: best wall time of REPEAT runs, peak RSS of that run.
best=""
for i in $(seq "$REPEAT"); do
	rm -rf "$W/hogrec.lmdb"
	/usr/bin/time -f '%e %M' -o "$W/time.txt" \
		"$BIN/ingest" -q --json -o "$W/hogrec.lmdb" "$DATA" >"$W/ingest.json"
	read -r wall rss <"$W/time.txt"
	if [ -z "$best" ] || awk "BEGIN{exit !($wall < $best)}"; then
		best=$wall; best_rss=$rss; cp "$W/ingest.json" "$W/best.json"
	fi
done
store_mb=$(du -sm "$W/hogrec.lmdb" | cut -f1)
echo "{\"bench\":\"ingest\",\"impl\":\"hogrec\",\"ratings\":$RATINGS,\"wall_s\":$best,\"ratings_per_s\":$(awk "BEGIN{printf \"%.0f\", $RATINGS/$best}"),\"peak_rss_mb\":$(awk "BEGIN{printf \"%.1f\", $best_rss/1024}"),\"store_mb\":$store_mb,\"target_wall_s\":2.0,\"target_rss_mb\":1024,\"report\":$(cat "$W/best.json")}"

if [ "$PANDAS" = 1 ]; then
	rm -rf "$W/pandas.lmdb"
	/usr/bin/time -f '%e %M' -o "$W/time.txt" \
		/usr/bin/python3 "$ROOT/bench/ingest_pandas.py" "$DATA" "$W/pandas.lmdb" >"$W/pandas.json"
	read -r pwall prss <"$W/time.txt"
	echo "{\"bench\":\"ingest\",\"impl\":\"pandas\",\"ratings\":$RATINGS,\"wall_s\":$pwall,\"peak_rss_mb\":$(awk "BEGIN{printf \"%.1f\", $prss/1024}"),\"report\":$(tail -1 "$W/pandas.json")}"
	echo "{\"bench\":\"ingest_speedup\",\"hogrec_wall_s\":$best,\"pandas_wall_s\":$pwall,\"speedup\":$(awk "BEGIN{printf \"%.1f\", $pwall/$best}"),\"target\":10}"
	rm -rf "$W/pandas.lmdb"
fi
rm -rf "$W/hogrec.lmdb"
fi

[ "${BENCH_TRAIN:-1}" = 1 ] || exit 0

# ---- training --------------------------------------------------------------
# Both sides run on the best OpenBLAS kernel: without the sandbox's
# OPENBLAS_CORETYPE override bin/trainer picks (and verifies) the kernel
# itself; PyTorch is then given that same kernel explicitly.
EPOCHS=${BENCH_EPOCHS:-2}
kernel() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$@"; }
sgemm=$(kernel "$BIN/blasbench" 1)
echo "$sgemm"
core=$(echo "$sgemm" | sed -n 's/.*"core":"\([^"]*\)".*/\1/p')
peak=$(echo "$sgemm" | sed -n 's/.*"gflops_256x300x300":\([0-9.]*\).*/\1/p')

# A per-user split: every test user has train history, so the model can be
# compared with the oracle (with the global split most test users are new).
STORE="$W/ml-1m-$RATINGS-user.lmdb"
"$BIN/ingest" -q --force --split user -o "$STORE" "$DATA"
oracle_json=$(/usr/bin/python3 "$ROOT/bench/oracle_split.py" "$DATA" "$STORE")
echo "$oracle_json"
oracle=$(echo "$oracle_json" | sed -n 's/.*"test": {[^}]*"auc": \([0-9.]*\).*/\1/p')
# The learnable ceiling: a learner of exactly the planted static form.
if [ "${BENCH_TORCH:-1}" = 1 ]; then
	learner_json=$(/usr/bin/python3 "$ROOT/bench/oracle_learner.py" "$DATA" "$STORE")
	echo "$learner_json"
	learner=$(echo "$learner_json" | sed -n 's/.*"auc": \([0-9.]*\).*/\1/p')
fi

declare -A loader
if want loader; then
# The loader alone, one thread, in steady state (the last of 3 epochs: the
# first also maps the store's pages in).
for m in ncf dssm; do
	line=$(kernel "$BIN/trainer" -q --data "$STORE" --model $m --out "$W/loader" --bench-loader \
		--epochs 3 --loaders 1 | tail -1 | sed "s/^{/{\"model_decode\":\"$m\",/")
	echo "$line"
	loader[$m]=$(echo "$line" | sed -n 's/.*"records_per_s":\([0-9.]*\).*/\1/p')
done
fi

last_test() { grep '"split":"test"' "$1" | tail -1; }
field() { echo "$1" | sed -n "s/.*\"$2\":\([0-9.e+-]*\).*/\1/p"; }
declare -A rate auc
if want train || want din || want inttower || want dien; then
for m in ncf dssm; do
	for t in 1 2; do
		rm -rf "$W/train-$m-$t"
		# --early-stop 0: every epoch, like the PyTorch reference beside it,
		# and the last test line is the last epoch's (with its speed).
		kernel "$BIN/trainer" -q --data "$STORE" --model $m --out "$W/train-$m-$t" \
			--epochs "$EPOCHS" --early-stop 0 --threads $t >/dev/null
		line=$(last_test "$W/train-$m-$t/metrics.jsonl")
		echo "{\"bench\":\"train\",\"impl\":\"hogrec\",\"core\":\"$core\",\"result\":$line}"
		rate[$m-$t]=$(field "$line" samples_per_s)
		auc[$m-$t]=$(field "$line" auc)
	done
	if [ "${BENCH_TORCH:-1}" = 1 ]; then
		OPENBLAS_CORETYPE=$core /usr/bin/python3 "$ROOT/bench/torch_ref.py" --data "$STORE" \
			--model $m --epochs "$EPOCHS" --threads 2 >"$W/torch-$m.jsonl"
		line=$(last_test "$W/torch-$m.jsonl")
		echo "{\"bench\":\"train\",\"impl\":\"torch\",\"core\":\"$core\",\"result\":$line}"
		rate[torch-$m]=$(field "$line" samples_per_s)
		auc[torch-$m]=$(field "$line" auc)
	fi
done
flops=$(grep -h '"split":"test"' "$W/train-dssm-2/metrics.jsonl" | tail -1 | sed -n 's/.*"gflops":\([0-9.]*\).*/\1/p')
awk -v o="$oracle" -v d1="${rate[dssm-1]}" -v d2="${rate[dssm-2]}" -v n1="${rate[ncf-1]}" \
    -v n2="${rate[ncf-2]}" -v ad1="${auc[dssm-1]}" -v ad2="${auc[dssm-2]}" -v an1="${auc[ncf-1]}" \
    -v an2="${auc[ncf-2]}" -v td="${rate[torch-dssm]:-0}" -v tn="${rate[torch-ncf]:-0}" \
    -v atd="${auc[torch-dssm]:-0}" -v atn="${auc[torch-ncf]:-0}" -v fl="$flops" -v pk="$peak" \
    -v ln="${loader[ncf]:-0}" -v ld="${loader[dssm]:-0}" -v le="${learner:-0}" \
    'BEGIN {
	printf "{\"bench\":\"train_summary\",\"oracle_test_auc\":%s,", o;
	if (le > 0) printf "\"oracle_learner_test_auc\":%s,", le;
	printf "\"dssm_auc\":%s,\"dssm_gap_to_oracle\":%.4f,\"ncf_auc\":%s,", ad2, o - ad2, an2;
	printf "\"ncf_gap_to_oracle\":%.4f,", o - an2;
	fastest = n1; if (n2 > fastest) fastest = n2; if (d1 > fastest) fastest = d1; if (d2 > fastest) fastest = d2;
	if (ln > 0) {
		printf "\"loader_ncf_records_per_s\":%s,\"loader_vs_fastest_training\":%.2f,", ln, ln / fastest;
		printf "\"loader_dssm_records_per_s\":%s,\"loader_dssm_vs_dssm_training\":%.2f,", ld, ld / (d1 > d2 ? d1 : d2);
	}
	printf "\"dssm_auc_1_vs_2_workers\":%.4f,\"ncf_auc_1_vs_2_workers\":%.4f,", ad1 - ad2, an1 - an2;
	printf "\"dssm_speedup_2_workers\":%.2f,\"ncf_speedup_2_workers\":%.2f,", d2 / d1, n2 / n1;
	if (td > 0) printf "\"dssm_vs_torch_speed\":%.2f,\"dssm_auc_minus_torch\":%.4f,", d2 / td, ad2 - atd;
	if (tn > 0) printf "\"ncf_vs_torch_speed\":%.2f,\"ncf_auc_minus_torch\":%.4f,", n2 / tn, an2 - atn;
	printf "\"dssm_gflops\":%s,\"sgemm_peak_gflops\":%s,\"dssm_share_of_sgemm_peak\":%.2f}\n", fl, pk, fl / pk;
    }'
fi

# ---- the zoo: each model beside its PyTorch twin, same store, options,
# batch, epochs and BLAS kernel; --early-stop 0 on both sides.
zoo() { # name hogrec-store torch-script [shared options...]
	local m=$1 store=$2 script=$3
	shift 3
	rm -rf "$W/zoo-$m"
	kernel "$BIN/trainer" -q --data "$store" --model "$m" --out "$W/zoo-$m" --early-stop 0 \
		--threads 2 "$@" >/dev/null
	line=$(last_test "$W/zoo-$m/metrics.jsonl")
	echo "{\"bench\":\"zoo\",\"impl\":\"hogrec\",\"core\":\"$core\",\"result\":$line}"
	rate[$m]=$(field "$line" samples_per_s)
	auc[$m]=$(field "$line" auc)
	rmse[$m]=$(field "$line" rmse)
	if [ "${BENCH_TORCH:-1}" = 1 ]; then
		OPENBLAS_CORETYPE=$core /usr/bin/python3 "$ROOT/bench/$script" --data "$store" \
			--threads 2 "$@" >"$W/torch-zoo-$m.jsonl"
		line=$(last_test "$W/torch-zoo-$m.jsonl")
		echo "{\"bench\":\"zoo\",\"impl\":\"torch\",\"core\":\"$core\",\"result\":$line}"
		rate[torch-$m]=$(field "$line" samples_per_s)
		auc[torch-$m]=$(field "$line" auc)
		rmse[torch-$m]=$(field "$line" rmse)
	fi
}
declare -A rmse
STORE_ALL="$W/ml-1m-$RATINGS-user-all.lmdb"
if want zoo; then
zoo neumf "$STORE" torch_ref.py --model neumf --epochs "$EPOCHS"
# LibRecommender's TwoTower defaults: embed_size 16, softmax loss.
zoo twotower "$STORE" torch_twotower.py --epochs "$EPOCHS" --emb-dim 16
# AutoRec regresses every rating (the 3s too): an implicit store, per-user split.
"$BIN/ingest" -q --force --label implicit --split user -o "$STORE_ALL" "$DATA"
AR_EPOCHS=${BENCH_AUTOREC_EPOCHS:-10}
zoo autorec "$STORE_ALL" torch_autorec.py --epochs "$AR_EPOCHS" --batch 64 --l2 0.001
# The twin's "samples" are rows as bin/trainer's; ratios within this run.
awk -v an="${auc[neumf]}" -v tan="${auc[torch-neumf]:-0}" -v rn="${rate[neumf]}" \
    -v trn="${rate[torch-neumf]:-0}" -v ra="${rmse[autorec]}" -v tra="${rmse[torch-autorec]:-0}" \
    -v sa="${rate[autorec]}" -v tsa="${rate[torch-autorec]:-0}" -v o="$oracle" \
    -v at="${auc[twotower]}" -v tat="${auc[torch-twotower]:-0}" -v rt="${rate[twotower]}" \
    -v trt="${rate[torch-twotower]:-0}" \
    'BEGIN {
	printf "{\"bench\":\"zoo_summary\",\"oracle_test_auc\":%s,\"neumf_auc\":%s,", o, an;
	if (trn > 0) printf "\"neumf_auc_minus_torch\":%.4f,\"neumf_vs_torch_speed\":%.2f,\"neumf_target_speed\":6,", an - tan, rn / trn;
	printf "\"twotower_auc\":%s,", at;
	if (trt > 0) printf "\"twotower_auc_minus_torch\":%.4f,\"twotower_vs_torch_speed\":%.2f,\"twotower_target_speed\":3,", at - tat, rt / trt;
	printf "\"autorec_rmse\":%s,", ra;
	if (tsa > 0) printf "\"autorec_rmse_minus_torch\":%.4f,\"autorec_vs_torch_speed\":%.2f,\"autorec_target_speed\":5,", ra - tra, sa / tsa;
	printf "\"neumf_samples_per_s\":%s,\"twotower_samples_per_s\":%s,\"autorec_rows_per_s\":%s}\n", rn, rt, sa;
    }'
fi
if want din; then
# --- din: begin ---
# DIN beside its twin (DeepCTR-Torch's DIN: Dice attention unit (64, 16), MLP
# 256,128) on the per-user store, and beside the DNN two-tower's AUC (dssm,
# 2 workers, the train section above): issue 11's targets are DIN's test AUC
# >= the twin's - 0.005 and >= dssm's, and 5x the twin's samples/s.
zoo din "$STORE" torch_din.py --epochs "$EPOCHS"
awk -v a="${auc[din]}" -v ta="${auc[torch-din]:-0}" -v r="${rate[din]}" \
    -v tr="${rate[torch-din]:-0}" -v d="${auc[dssm-2]}" 'BEGIN {
	printf "{\"bench\":\"zoo_din\",\"din_auc\":%s,", a;
	if (tr > 0) {
		printf "\"torch_auc\":%s,\"auc_minus_torch\":%.4f,\"target_auc_minus_torch\":-0.005,", ta, a - ta;
		printf "\"torch_samples_per_s\":%s,\"vs_torch_speed\":%.2f,", tr, r / tr;
	}
	printf "\"samples_per_s\":%s,\"target_speed\":5,\"dssm_auc\":%s,\"auc_minus_dssm\":%.4f}\n", r, d, a - d;
    }'
# --- din: end ---
fi
if want inttower; then
# ---- inttower (issue 11) ------------------------------------------------
# IntTower beside its twin on the per-user store: samples/s against the
# twin's (target 2), its FLOP rate on 2 workers against twice this run's
# one-thread sgemm peak (target 0.6; bin/trainer's gflops, the model's
# count of a trained sample's
# forward and backward: inttower's flops_train), and its AUC beside dssm's
# (the DNN two-tower, 2 workers, the same store and epochs, trained above).
zoo inttower "$STORE" torch_inttower.py --epochs "$EPOCHS"
it_gflops=$(field "$(last_test "$W/zoo-inttower/metrics.jsonl")" gflops)
awk -v a="${auc[inttower]}" -v ta="${auc[torch-inttower]:-0}" -v r="${rate[inttower]}" \
    -v tr="${rate[torch-inttower]:-0}" -v g="$it_gflops" -v pk="$peak" -v ad="${auc[dssm-2]}" \
    'BEGIN {
	printf "{\"bench\":\"zoo_inttower\",\"auc\":%s,", a;
	if (tr > 0) printf "\"torch_auc\":%s,\"auc_minus_torch\":%.4f,\"target_auc_minus_torch\":-0.005,\"torch_samples_per_s\":%s,\"vs_torch_speed\":%.2f,\"target_speed\":2,", ta, a - ta, tr, r / tr;
	printf "\"samples_per_s\":%s,\"gflops\":%s,\"sgemm_peak_gflops\":%s,\"share_of_sgemm_peak\":%.2f,\"target_share\":0.6,", r, g, pk, g / (2 * pk);
	printf "\"dssm_auc\":%s,\"auc_minus_dssm\":%.4f}\n", ad, a - ad;
    }'
# ---- end inttower ---------------------------------------------------------
fi
rm -rf "$STORE_ALL"

if want autoint; then
# ---- autoint (issue 11): FuxiCTR's AutoInt beside bench/torch_autoint.py,
# its defaults on both sides and FuxiCTR's embedding_dim 10.  Targets: test
# AUC at least the twin's - 0.005; samples/s at least 5x the twin's.
zoo autoint "$STORE" torch_autoint.py --epochs "$EPOCHS" --emb-dim 10
awk -v a="${auc[autoint]}" -v ta="${auc[torch-autoint]:-0}" -v r="${rate[autoint]}" \
    -v tr="${rate[torch-autoint]:-0}" \
    'BEGIN {
	printf "{\"bench\":\"zoo_autoint\",\"autoint_auc\":%s,\"autoint_samples_per_s\":%s,", a, r;
	if (tr > 0) printf "\"torch_auc\":%s,\"auc_minus_torch\":%.4f,\"torch_samples_per_s\":%s,\"vs_torch_speed\":%.2f,", ta, a - ta, tr, r / tr;
	printf "\"target_auc_minus_torch\":-0.005,\"target_speed\":5}\n";
    }'
# ---- end autoint
fi

if want dien; then
# --- dien: begin ---
# DIEN beside its twin (the same architecture in PyTorch as users write it:
# nn.GRU for the extractor, a Python loop over the steps for the AUGRU) on
# the per-user store, and beside the DNN two-tower's AUC (dssm, 2 workers,
# the train section above): issue 11's targets are DIEN's test AUC >= the
# twin's - 0.005 and >= dssm's, and 8x the twin's samples/s at batch 256 on
# 2 workers (zoo(): --threads 2 both sides, one OpenBLAS thread each, the
# same kernel; both default to dien's options, Adam at 0.001, --emb-dim 32).
# BENCH_DIEN_EPOCHS (default BENCH_EPOCHS) sets both sides' epochs: the twin
# takes minutes per epoch.
DIEN_EPOCHS=${BENCH_DIEN_EPOCHS:-$EPOCHS}
zoo dien "$STORE" torch_dien.py --epochs "$DIEN_EPOCHS" --batch 256
awk -v a="${auc[dien]}" -v ta="${auc[torch-dien]:-0}" -v r="${rate[dien]}" \
    -v tr="${rate[torch-dien]:-0}" -v d="${auc[dssm-2]}" -v e="$DIEN_EPOCHS" 'BEGIN {
	printf "{\"bench\":\"zoo_dien\",\"epochs\":%s,\"dien_auc\":%s,", e, a;
	if (tr > 0) {
		printf "\"torch_auc\":%s,\"auc_minus_torch\":%.4f,\"target_auc_minus_torch\":-0.005,", ta, a - ta;
		printf "\"torch_samples_per_s\":%s,\"vs_torch_speed\":%.2f,", tr, r / tr;
	}
	printf "\"samples_per_s\":%s,\"target_speed\":8,\"dssm_auc\":%s,\"auc_minus_dssm\":%.4f}\n", r, d, a - d;
    }'
# --- dien: end ---
fi

if want rank; then
# ---- ranking (issue 12): every model bin/trainer lists (autorec aside: a
# rating model, ranked on an implicit store whose positives differ), one
# epoch with its defaults (twotower: LibRecommender's embed_size 16), the
# whole catalogue ranked for BENCH_RANK_USERS users of the test split
# (default 600, evenly spaced by id: models without user vectors score
# users x items rows through forward), beside the baselines on the same
# users (most popular, item-kNN, iALS: docs/models.md).  users_per_s: the
# model's ranking alone (rank_seconds less the baselines' share).
# Then, as NCF trains for retrieval, on the implicit store (every rating a
# positive): ncf, gmf and neumf with 4 sampled negatives per positive, and
# twotower (positives only), beside the baselines of that store: a model
# trained to tell liked from disliked among rated items (the explicit
# labels) does not learn which items get rated, which retrieval is judged
# on.
RANK_USERS=${BENCH_RANK_USERS:-600}
[ -d "$STORE_ALL" ] || "$BIN/ingest" -q --force --label implicit --split user -o "$STORE_ALL" "$DATA"
rank_runs=()
for m in $("$BIN/trainer" --help | sed -n '/^models:/,/^$/s/^  \([a-z]*\)  .*/\1/p'); do
	[ "$m" = autorec ] || rank_runs+=("$m:explicit")
done
rank_runs+=(ncf:implicit gmf:implicit neumf:implicit twotower:implicit)
for run in "${rank_runs[@]}"; do
	m=${run%%:*} labels=${run#*:}
	extra=()
	[ "$m" = twotower ] && extra=(--emb-dim 16)
	store=$STORE
	if [ "$labels" = implicit ]; then
		store=$STORE_ALL
		[ "$m" = twotower ] || extra+=(--num-neg 4)
	fi
	rm -rf "$W/rank-$m"
	kernel "$BIN/trainer" -q --data "$store" --model "$m" --out "$W/rank-$m" --early-stop 0 \
		--threads 2 --epochs 1 --rank-metrics yes --rank-users "$RANK_USERS" "${extra[@]}" \
		>/dev/null
	line=$(last_test "$W/rank-$m/metrics.jsonl")
	echo "$line" | /usr/bin/python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
keep = ["auc", "recall@10", "ndcg@10", "recall@100", "coverage@100", "loo_hr@10"]
keep += [p + k for p in ("baseline_", "knn_", "ials_")
         for k in ("recall@10", "ndcg@10", "recall@100", "loo_hr@10")]
keep += ["rank_users", "rank_seconds", "rank_baseline_seconds"]
out = {"bench": "rank", "model": r["model"], "labels": sys.argv[2], "core": sys.argv[1]}
out.update({k: r.get(k) for k in keep})
own = (r.get("rank_seconds") or 0) - (r.get("rank_baseline_seconds") or 0)
out["users_per_s"] = round(r["rank_users"] / own, 1) if own > 0 else None
print(json.dumps(out, separators=(",", ":")))' "$core" "$labels"
done
rm -rf "$STORE_ALL"
# ---- end ranking
fi

if want retrieval; then
# ---- retrieval: full-catalogue top-100 for every user of the store, one
# thread (bin/blasbench retrieval: random vectors of twotower's width 16 and
# of 64, the store's users, items and train exclusions), beside the same
# sgemm calls alone (the roofline; target: half of it) and the same scoring
# in PyTorch and numpy (bench/torch_retrieval.py, the same inputs, block and
# kernel).  Both sides timed in CPU seconds of their one thread.
for dim in 16 64; do
	rdir="$W/retrieval-$dim"
	mkdir -p "$rdir"
	rline=$(kernel "$BIN/blasbench" retrieval --store "$STORE" --dim "$dim" --save "$rdir")
	echo "$rline"
	tline='{}'
	if [ "${BENCH_TORCH:-1}" = 1 ]; then
		tline=$(OPENBLAS_CORETYPE="$core" /usr/bin/python3 "$ROOT/bench/torch_retrieval.py" "$rdir")
		echo "$tline"
	fi
	/usr/bin/python3 -c '
import json, sys
h, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = {"bench": "retrieval_summary", "dim": h["dim"], "users": h["users"], "items": h["items"],
       "users_per_s": h["users_per_s"], "roofline_share": h["roofline_share"],
       "target_roofline_share": 0.5}
if t.get("torch_users_per_s"):
    out.update(torch_users_per_s=t["torch_users_per_s"], numpy_users_per_s=t["numpy_users_per_s"],
               vs_torch=round(h["users_per_s"] / t["torch_users_per_s"], 2),
               vs_numpy=round(h["users_per_s"] / t["numpy_users_per_s"], 2),
               torch_agree=t["torch_agree"])
print(json.dumps(out, separators=(",", ":")))' "$rline" "$tline"
done
# ---- end retrieval
fi

if want serve; then
# ---- serve (issue 12): bin/recommend --serve under wrk on loopback, k 10,
# random users, on 1 and 2 HTTP worker threads, while bin/trainer keeps
# training on the same store and publishes a checkpoint every 3 s (the
# server swaps each in).  wrk shares the machine's cores with the server
# and the trainer: requests/s is what one box serves while it trains.
# failed counts wrk's socket errors and non-2xx answers (target 0).
if command -v wrk >/dev/null; then
	srv_run="$W/serve-run"
	rm -rf "$srv_run"
	kernel "$BIN/trainer" -q --data "$STORE" --model twotower --emb-dim 16 --out "$srv_run" \
		--epochs 1 --early-stop 0 --threads 1 >/dev/null
	cat >"$W/wrk-users.lua" <<'LUA'
math.randomseed(1)
request = function()
	return wrk.format("GET", "/recommend?user=" .. math.random(1, 6040) .. "&k=10")
end
LUA
	# (env, not the kernel function, in the background: $! is then the
	# program's own pid, which kill reaches)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$BIN/trainer" -q --data "$STORE" \
		--model twotower --emb-dim 16 --out "$srv_run" --epochs 100 --early-stop 0 \
		--threads 1 --ckpt-every-secs 3 >/dev/null 2>&1 &
	trainer_pid=$!
	for threads in 1 2; do
		env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$BIN/recommend" --serve 127.0.0.1:0 \
			--ckpt "$srv_run" --data "$STORE" --threads "$threads" -q \
			>"$W/serve.out" 2>"$W/serve.err" &
		srv_pid=$!
		for _ in $(seq 300); do
			grep -qs '^listening on ' "$W/serve.out" && break
			sleep 0.1
		done
		addr=$(sed -n 's/^listening on //p' "$W/serve.out")
		wrk -t2 -c8 -d15s --latency -s "$W/wrk-users.lua" "http://$addr" >"$W/wrk.out" 2>&1 || true
		metrics=$(curl -s "http://$addr/metrics" || true)
		kill "$srv_pid" 2>/dev/null || true
		wait "$srv_pid" 2>/dev/null || true
		/usr/bin/python3 - "$W/wrk.out" "$threads" "$metrics" <<'PY'
import json, re, sys
w = open(sys.argv[1]).read()
def num(pat, default=0.0):
    m = re.search(pat, w)
    return float(m.group(1)) if m else default
def ms(pat):
    m = re.search(pat + r"\s+([\d.]+)(us|ms|s)\b", w)
    if not m:
        return None
    return round(float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[m.group(2)], 3)
errs = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", w))
non2xx = int(num(r"Non-2xx or 3xx responses: (\d+)"))
m = dict(re.findall(r"^(hogrec_\w+)(?:\{[^}]*\})? ([\d.e+-]+)$", sys.argv[3], re.M))
print(json.dumps({"bench": "serve", "model": "twotower", "k": 10, "threads": int(sys.argv[2]),
                  "requests": int(num(r"(\d+) requests in")),
                  "requests_per_s": round(num(r"Requests/sec:\s+([\d.]+)")),
                  "p50_ms": ms(r"50%"), "p99_ms": ms(r"99%"),
                  "failed": errs + non2xx, "target_failed": 0,
                  "reloads": float(m["hogrec_reloads_total"]) if "hogrec_reloads_total" in m else None},
                 separators=(",", ":")))
PY
	done
	kill "$trainer_pid" 2>/dev/null || true
	wait "$trainer_pid" 2>/dev/null || true
else
	echo "bench: wrk not installed (make deps-bench): serve section skipped" >&2
fi
# ---- end serve
fi
