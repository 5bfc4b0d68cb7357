# Full-catalogue ranking metrics (trainer --rank-metrics, trainer/rankeval.h)
# on the small generated store of zoo_models.sh; one worker, fixed seeds.
#  1. the most-popular recommender's metrics on every valid/test line equal
#     a Python computation from the dumped records (users: raw ids with a
#     positive of a train item; catalogue: every item code; each user's
#     train items left out, or not with --rank-exclude no; ties to the lower
#     code), and so does the number of users;
#  2. the model's metrics are within their bounds and grow with K;
#  3. twotower and dssm scored by one sgemm of user and item vectors rank
#     as their forward passes do (HOGREC_RANK_SCORING=forward, a test hook);
#  4. leave-one-out (the NCF paper's protocol) on a loo store: HR@10 and
#     NDCG@10 within bounds, the popular list's the same every epoch (the
#     draws are the user's), and one user per held-out item;
#  5. without --rank-metrics the lines carry none of it;
#  6. the item-kNN baseline's metrics equal a Python computation (numpy in
#     float32, the C code's arithmetic and summation order: cosine over
#     train positives, 100 neighbours, profiles of train positives and the
#     query's history, unreached items by train positives below every
#     reached one), and iALS's are within bounds and above chance;
#  7. bin/blasbench retrieval's top 100 of every user equals numpy's sort.
source "$(dirname "$0")/_lib.sh"

"$BIN/mlgen" -q -o "$T/ml" --users 300 --items 300 --ratings 20000 --seed 5
"$BIN/ingest" -q --split user -o "$T/ex.lmdb" "$T/ml"
for s in train valid test; do
	"$BIN/ingest" --dump "$T/ex.lmdb" $s 100000000 >"$T/$s.jsonl"
done
train() { "$BIN/trainer" -q --threads 1 --data "$T/ex.lmdb" --batch 64 --epochs 2 --seed 1 "$@"; }

train --model ncf --out "$T/ncf" --early-stop 0 --rank-metrics yes >/dev/null
train --model ncf --out "$T/ncf-all" --early-stop 0 --rank-metrics yes --rank-exclude no \
	>/dev/null

# check METRICS EXCLUDE: the popular list's metrics and the model's bounds
check() {
	/usr/bin/python3 - "$T" "$1" "$2" "${3:-0}" <<'PY'
import collections, json, math, sys
T, metrics, exclude = sys.argv[1], sys.argv[2], sys.argv[3] == "yes"
keep = int(sys.argv[4])  # --rank-users: that many users, evenly spaced by raw id

def sample(users):
    """The users with a positive, in raw-id order, keep of them evenly spaced."""
    us = [users[k] for k in sorted(users) if users[k]["pos"]]
    if keep and len(us) > keep:
        us = [us[i * len(us) // keep] for i in range(keep)]
    return us
rows = lambda p: [json.loads(l) for l in open(p)]
train = rows(T + "/train.jsonl")
count = collections.Counter(r["item"] for r in train)
seen = collections.defaultdict(set)
for r in train:
    seen[r["user"]].add(r["item"])
KS = (10, 20, 50, 100)

import numpy as np
f32 = np.float32
pos_train = [r for r in train if r["label"] == 1]
n_all = 1 + max(r["item"] for r in train)
cnt = collections.Counter(r["item"] for r in pos_train)
liked = collections.defaultdict(set)
for r in pos_train:
    liked[r["user"]].add(r["item"])
by_item = collections.defaultdict(set)
for r in pos_train:
    by_item[r["item"]].add(r["user"])
maxc = f32(max(max(cnt.values()), 1))
floor = [f32(-1) + f32(0.5) * f32(cnt[j]) / maxc for j in range(n_all)]
nbrs = {}
for i in range(1, n_all):
    if not cnt[i]:
        continue
    co = collections.Counter()
    for u in by_item[i]:
        for j in liked[u]:
            if j != i:
                co[j] += 1
    sims = {j: f32(c) / np.sqrt(f32(cnt[i]) * f32(cnt[j])) for j, c in co.items()}
    nbrs[i] = sorted(sims.items(), key=lambda t: (-t[1], t[0]))[:100]

def ranked(split, scorer):
    recs = rows("%s/%s.jsonl" % (T, split))
    n_items = 1 + max(r["item"] for r in train + recs)
    users = collections.OrderedDict()
    for r in recs:  # key order: a user's first record is the query
        u = users.setdefault(r["user_raw"], {"code": r["user"], "pos": set(), "q": r})
        if r["label"] == 1 and r["item"] > 0:
            u["pos"].add(r["item"])
    sums = collections.defaultdict(float)
    n = 0
    for u in sample(users):
        n += 1
        skip = seen[u["code"]] if exclude and u["code"] > 0 else set()
        score = scorer(u, n_items)
        order = sorted(range(1, n_items), key=lambda j: (-score[j], j))
        top = [j for j in order if j not in skip][:100]
        for K in KS:
            hits = [j for j, it in enumerate(top[:K]) if it in u["pos"]]
            idcg = sum(1 / math.log2(j + 2) for j in range(min(K, len(u["pos"]))))
            sums["recall@%d" % K] += len(hits) / len(u["pos"])
            sums["hit@%d" % K] += bool(hits)
            sums["ndcg@%d" % K] += sum(1 / math.log2(j + 2) for j in hits) / idcg
            sums["mrr@%d" % K] += 1 / (hits[0] + 1) if hits else 0
    return n, {k: v / n for k, v in sums.items()}

def knn(u, n_items):
    prof = sorted((liked[u["code"]] if u["code"] > 0 else set()) |
                  {h for h in u["q"]["hist"] if h > 0})
    s = [f32(0)] * n_items
    for i in prof:
        for j, v in nbrs.get(i, []):
            s[j] = f32(s[j] + v)
    return [floor[j] if s[j] == 0 else s[j] for j in range(n_items)]

def popular(split):
    return ranked(split, lambda u, n_items: [count[j] for j in range(n_items)])

lines = [r for r in rows(metrics) if "recall@10" in r]
assert len(lines) == 4, "2 epochs x (valid, test): %d" % len(lines)
for r in lines:
    n, want = popular(r["split"])
    assert r["rank_users"] == n, (r["split"], r["rank_users"], n)
    for k, v in want.items():
        got = r["baseline_" + k]
        assert abs(got - v) < 2e-6, (r["split"], k, got, v)
    n, want = ranked(r["split"], knn)
    for k, v in want.items():
        got = r["knn_" + k]
        assert abs(got - v) < 2e-6, ("knn", r["split"], k, got, v)
    for K in KS:
        assert 0 < r["ials_recall@%d" % K] <= 1, r
    assert r["ials_loo_hr@10"] > 0.1, r  # chance: 10 of 101
    for f in ("recall", "ndcg", "hit", "mrr", "coverage"):
        vals = [r["%s@%d" % (f, K)] for K in KS]
        assert all(0 <= x <= 1 for x in vals), (f, vals)
        if f != "mrr" and f != "ndcg":
            assert vals == sorted(vals), (f, vals)
    assert r["hit@10"] >= r["recall@10"] and r["popularity@10"] > 0, r
print("%s: %d users; popular recall@10 %.4f, model %.4f" % (
    metrics, lines[-1]["rank_users"], lines[-1]["baseline_recall@10"], lines[-1]["recall@10"]))
PY
}
check "$T/ncf/metrics.jsonl" yes || fail "--rank-metrics: the popular list or the bounds (train items left out)"
ok "the most-popular list's and item-kNN's recall/ndcg/hit/mrr and the users equal Python's; iALS and the model within bounds"
check "$T/ncf-all/metrics.jsonl" no || fail "--rank-metrics --rank-exclude no"
ok "--rank-exclude no: the same with the train items ranked too"
train --model ncf --out "$T/ncf-some" --early-stop 0 --rank-metrics yes --rank-users 50 >/dev/null
check "$T/ncf-some/metrics.jsonl" yes 50 || fail "--rank-users 50"
grep -q '"rank_users":50,' "$T/ncf-some/metrics.jsonl" || fail "--rank-users 50: not 50 users"
ok "--rank-users 50: fifty users evenly spaced by id, their metrics as Python's"

# 3. twotower and dssm: the sgemm of vectors ranks as the forward pass does.
for m in twotower dssm; do
	for how in sgemm forward; do
		HOGREC_RANK_SCORING=$how train --model $m --out "$T/$m-$how" --rank-metrics yes \
			>"$T/$m-$how.jsonl"
	done
	/usr/bin/python3 - "$T/$m-sgemm.jsonl" "$T/$m-forward.jsonl" <<'PY' || fail "$m: sgemm and forward rank differently"
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:])
assert len(a) == len(b) and a
for x, y in zip(a, b):
    keys = [k for k in x if "@" in k]
    assert keys and all(abs(x[k] - y[k]) < 1e-6 for k in keys), (x, y)
PY
done
ok "twotower and dssm: one sgemm of user and item vectors ranks as the forward pass"

# 4. Leave-one-out on a loo store (each user's last rating is test).
"$BIN/ingest" -q --split loo -o "$T/loo.lmdb" "$T/ml"
"$BIN/ingest" --dump "$T/loo.lmdb" test 100000000 >"$T/loo-test.jsonl"
"$BIN/trainer" -q --threads 1 --data "$T/loo.lmdb" --model neumf --out "$T/loo" --epochs 2 \
	--early-stop 0 --rank-metrics yes >/dev/null
/usr/bin/python3 - "$T/loo/metrics.jsonl" "$T/loo-test.jsonl" <<'PY' || fail "leave-one-out metrics"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
test = [json.loads(l) for l in open(sys.argv[2])]
users = {r["user_raw"] for r in test if r["label"] == 1 and r["item"] > 0}
t = [r for r in lines if r["split"] == "test"]
assert len(t) == 2 and all(r["rank_users"] == len(users) for r in t), (len(users), t)
for r in lines:
    for p in ("", "baseline_"):
        hr, nd = r[p + "loo_hr@10"], r[p + "loo_ndcg@10"]
        assert 0 < hr <= 1 and 0 < nd <= hr, r
assert t[0]["baseline_loo_hr@10"] == t[1]["baseline_loo_hr@10"], t
print("loo: %d users, HR@10 %.4f (popular %.4f)" % (len(users), t[-1]["loo_hr@10"],
                                                   t[-1]["baseline_loo_hr@10"]))
PY
ok "leave-one-out HR@10 and NDCG@10: within bounds, the popular list's fixed, one user per held-out item"

# 5. Off by default.
train --model ncf --out "$T/plain" --epochs 1 >"$T/plain.jsonl"
grep -q '"recall@10"' "$T/plain.jsonl" && fail "ranking metrics without --rank-metrics"
ok "no ranking metrics unless asked"

# 7. bin/blasbench retrieval (make bench's full-catalogue top-100): its
#    answer for every user of the store equals numpy's full sort of the same
#    scores with the same exclusions (near-equal scores may swap: float
#    rounding of two GEMMs), and bad input exits as documented.
mkdir -p "$T/rb"
"$BIN/blasbench" retrieval --store "$T/ex.lmdb" --dim 8 --seconds 0.01 --save "$T/rb" \
	>"$T/rb.json" || fail "blasbench retrieval on a store"
/usr/bin/python3 - "$T/rb" "$T/rb.json" "$T/train.jsonl" <<'PY' || fail "blasbench retrieval's top K"
import json, os, sys
import numpy as np
d = sys.argv[1]
r = json.load(open(sys.argv[2]))
L = lambda n: np.load(os.path.join(d, n + ".npy"))
U, V, off, skip, top = L("U"), L("V"), L("skip_off").ravel(), L("skip").ravel(), L("topk")
train = [json.loads(l) for l in open(sys.argv[3])]
n_users = max(t["user"] for t in train)
assert r["users"] == n_users == U.shape[0] and r["items"] == V.shape[0], (r, U.shape, n_users)
seen = {}
for t in train:
    seen.setdefault(t["user"], set()).add(t["item"])
exact = 0
for u in range(n_users):
    assert set(skip[off[u]:off[u + 1]]) == seen.get(u + 1, set()) | {0}, u
    s = U[u].astype(np.float64) @ V.T.astype(np.float64)
    s[skip[off[u]:off[u + 1]]] = -np.inf
    want = np.lexsort((np.arange(len(s)), -s))[:top.shape[1]]
    exact += bool(np.array_equal(want, top[u]))
    assert np.all(np.abs(s[top[u]] - s[want]) < 1e-4), u  # a swap only between near-equal scores
assert exact >= 0.98 * n_users, (exact, n_users)
assert 0 < r["roofline_share"] and r["users_per_s"] > 0, r
print("retrieval: %d users, %d of them exactly as numpy" % (n_users, exact))
PY
ok "blasbench retrieval: every user's top 100 as numpy's sort, the train items and padding left out"
expect_exit 66 "$BIN/blasbench" retrieval --store "$T/none.lmdb"
grep -q "none.lmdb" "$T/err" || fail "blasbench retrieval: a missing store not named"
expect_exit 64 "$BIN/blasbench" retrieval -k 0
ok "blasbench retrieval: a missing store exits 66 naming it, -k 0 exits 64"
