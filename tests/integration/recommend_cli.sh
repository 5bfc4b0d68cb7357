# bin/recommend (serve/): top-K from a checkpoint, on a small generated
# store with a global split (so valid/test hold cold users train never saw).
#  1. gmf's top 10 for several users equals a Python computation from the
#     checkpoint's exported weights (logit = (p_u * q_i) . w + b over every
#     item code, the user's rated items of any split left out, ties to the
#     lower code): items, order and scores;  --exclude-rated no keeps them;
#  2. a cold user of an id-only model (gmf) gets the most popular list
#     (train records per item, ties to the lower code, rated items left
#     out), source "popular"; dssm, which reads demographics, answers for
#     the same user (source "model");
#  3. twotower scored by one product with its item vectors ranks as its
#     forward pass does (HOGREC_RANK_SCORING=forward);
#  4. --users: one list per user, TSV and JSON; an unknown user among them
#     is reported, the others printed, exit 67;
#  5. errors: unknown user 67, missing checkpoint or store 66, a store of
#     another schema 65, a damaged checkpoint 65, a checkpoint of a model
#     this build does not know 65, a malformed --users line 65, usage 64;
#  6. bin/recommend links no checkpoint writer (issue 12's structure): no
#     ckpt_save, snapshot or training code in it;
#  7. every model of the registry answers: a warm user's top 5 from the
#     model, on a small per-user store.
source "$(dirname "$0")/_lib.sh"

"$BIN/mlgen" -q -o "$T/ml" --users 300 --items 300 --ratings 20000 --seed 5
"$BIN/ingest" -q --split global -o "$T/gl.lmdb" "$T/ml"
for s in train valid test; do
	"$BIN/ingest" --dump "$T/gl.lmdb" $s 100000000 >"$T/$s.jsonl"
done
train() { "$BIN/trainer" -q --threads 1 --data "$T/gl.lmdb" --batch 64 --epochs 1 --seed 1 "$@" >/dev/null; }
train --model gmf --out "$T/gmf" --emb-dim 8
train --model dssm --out "$T/dssm"
train --model twotower --out "$T/tt"
rec() { "$BIN/recommend" -q "$@"; }

# users: a few train users, and the cold ones (only in valid/test)
read -r warm cold <<<"$(/usr/bin/python3 - "$T" <<'PY'
import json, sys
T = sys.argv[1]
rows = lambda s: [json.loads(l) for l in open("%s/%s.jsonl" % (T, s))]
train = {r["user_raw"] for r in rows("train")}
later = {r["user_raw"] for s in ("valid", "test") for r in rows(s)}
print(",".join(map(str, sorted(train)[:6])), ",".join(map(str, sorted(later - train)[:4])))
PY
)"
[ -n "$cold" ] || fail "the global split left no cold user"

# 1. gmf against numpy
"$BIN/ckpt" export "$T/gmf" --all -o "$T/w" >/dev/null
for u in ${warm//,/ }; do
	rec --ckpt "$T/gmf" --data "$T/gl.lmdb" --user "$u" --format json >>"$T/gmf.jsonl"
	rec --ckpt "$T/gmf" --data "$T/gl.lmdb" --user "$u" --format json --exclude-rated no \
		>>"$T/gmf-all.jsonl"
done
# the popular list for the cold users (gmf reads ids only); dssm for the same users
for u in ${cold//,/ }; do
	rec --ckpt "$T/gmf" --data "$T/gl.lmdb" --user "$u" --format json -k 20 >>"$T/cold.jsonl"
	rec --ckpt "$T/dssm" --data "$T/gl.lmdb" --user "$u" --format json >>"$T/cold-dssm.jsonl"
done
/usr/bin/python3 - "$T" <<'PY'
import collections, json, sys
import numpy as np
T = sys.argv[1]
rows = lambda p: [json.loads(l) for l in open(p)]
recs = [r for s in ("train", "valid", "test") for r in rows("%s/%s.jsonl" % (T, s))]
train = rows(T + "/train.jsonl")
U, I = np.load(T + "/w/user_emb.npy"), np.load(T + "/w/item_emb.npy")
w, b = np.load(T + "/w/out.0.w.npy"), np.load(T + "/w/out.0.b.npy")
code_of = {r["user_raw"]: r["user"] for r in train}
raw_item = {r["item"]: r["item_raw"] for r in recs}
rated = collections.defaultdict(set)
for r in recs:
    if r["item"] > 0:
        rated[r["user_raw"]].add(r["item"])
n_items = I.shape[0]

def top(scores, skip, k):
    order = sorted((j for j in range(1, n_items) if j not in skip), key=lambda j: (-scores[j], j))
    return order[:k]

for path, exclude in (("gmf.jsonl", True), ("gmf-all.jsonl", False)):
    for got in rows(T + "/" + path):
        u = got["user"]
        assert got["source"] == "model" and got["model"] == "gmf", got
        s = ((U[code_of[u]] * I) @ w[0] + b[0, 0]).astype(np.float64)
        want = top(s, rated[u] if exclude else set(), 10)
        items = [e["item"] for e in got["items"]]
        assert items == [raw_item[j] for j in want], (u, exclude, items, want)
        for e, j in zip(got["items"], want):
            assert abs(e["score"] - s[j]) < 1e-5, (u, e, s[j])
            assert e["title"], e
        if exclude:
            assert not set(want) & rated[u]
print("gmf top-10 equals numpy for %d users, with and without exclusion" % len(rows(T + "/gmf.jsonl")))

count = collections.Counter(r["item"] for r in train)
for got in rows(T + "/cold.jsonl"):
    u = got["user"]
    assert got["source"] == "popular", got
    want = top(count, rated[u], 20)
    assert [e["item"] for e in got["items"]] == [raw_item[j] for j in want], (u, got, want)
    assert [e["score"] for e in got["items"]] == [count[j] for j in want]
for got in rows(T + "/cold-dssm.jsonl"):
    assert got["source"] == "model" and len(got["items"]) == 10, got
print("cold users: gmf falls back to the popular list, dssm answers")
PY
ok "gmf's top-K equals numpy; cold users: popular for gmf, the model for dssm"

# 3. twotower: sgemm of vectors ranks as forward does
u=${warm%%,*}
rec --ckpt "$T/tt" --data "$T/gl.lmdb" --user "$u" -k 50 >"$T/tt.tsv"
HOGREC_RANK_SCORING=forward rec --ckpt "$T/tt" --data "$T/gl.lmdb" --user "$u" -k 50 >"$T/tt-fwd.tsv"
/usr/bin/python3 - "$T/tt.tsv" "$T/tt-fwd.tsv" <<'PY'
import sys
a, b = ([l.split("\t") for l in open(p).read().splitlines()[1:]] for p in sys.argv[1:])
assert len(a) == 50 and len(a) == len(b), (len(a), len(b))
for x, y in zip(a, b):
    assert abs(float(x[3]) - float(y[3])) < 1e-4, (x, y)
# the same item at each rank, unless its score ties a neighbour's within rounding
sc = [float(x[3]) for x in a]
for i, (x, y) in enumerate(zip(a, b)):
    tied = any(abs(sc[i] - sc[j]) < 1e-4 for j in (i - 1, i + 1) if 0 <= j < len(sc))
    assert x[2] == y[2] or tied, (i, x, y)
assert all(x[4] == "model" for x in a)
PY
ok "twotower by item vectors ranks as its forward pass"

# 4. --users: TSV and JSON, an unknown user among them
printf '# users\n%s\n\n99999\n%s\n' "${warm%%,*}" "${cold%%,*}" >"$T/users.txt"
expect_exit 67 "$BIN/recommend" --ckpt "$T/gmf" --data "$T/gl.lmdb" --users "$T/users.txt" -k 3
expect_err "user 99999 is not in store"
[ "$(head -1 "$T/out")" = "$(printf 'user\trank\titem\tscore\tsource\ttitle')" ] || fail "no TSV header"
[ "$(grep -c . "$T/out")" -eq 7 ] || { cat "$T/out"; fail "--users: not 1 + 2 x 3 lines"; }
expect_exit 67 "$BIN/recommend" --ckpt "$T/gmf" --data "$T/gl.lmdb" --users - -k 3 \
	--format json <"$T/users.txt"
[ "$(grep -c '"items"' "$T/out")" -eq 2 ] || fail "--users - --format json: not 2 objects"
ok "--users: the known users' lists, the unknown one reported, exit 67"

# 5. errors
r=(--ckpt "$T/gmf" --data "$T/gl.lmdb")
expect_exit 67 "$BIN/recommend" "${r[@]}" --user 99999
expect_err "user 99999 is not in store"
expect_exit 66 "$BIN/recommend" --ckpt "$T/nothing" --data "$T/gl.lmdb" --user 1
expect_err "'$T/nothing' does not exist"
expect_exit 66 "$BIN/recommend" --ckpt "$T/gmf" --data "$T/nostore" --user 1
"$BIN/ingest" -q --split global --hist-len 10 -o "$T/other.lmdb" "$T/ml"
expect_exit 65 "$BIN/recommend" --ckpt "$T/gmf" --data "$T/other.lmdb" --user 1
expect_err "was trained on a store with schema"
f=$(readlink -f "$T/gmf/latest")
cp "$f" "$T/bad.safetensors"
printf 'X' | dd of="$T/bad.safetensors" bs=1 seek=$(($(stat -c %s "$f") - 3)) conv=notrunc 2>/dev/null
expect_exit 65 "$BIN/recommend" --ckpt "$T/bad.safetensors" --data "$T/gl.lmdb" --user 1
expect_err "checksum mismatch"
ckpt_edit "$f" "$T/alien.safetensors" 'meta["model"] = "nosuch"'
expect_exit 65 "$BIN/recommend" --ckpt "$T/alien.safetensors" --data "$T/gl.lmdb" --user 1
expect_err "is of model 'nosuch', which this build does not know"
printf '%s\nabc\n' "${warm%%,*}" >"$T/badusers.txt"
expect_exit 65 "$BIN/recommend" "${r[@]}" --users "$T/badusers.txt"
expect_err "badusers.txt:2: 'abc' is not a user id"
expect_exit 66 "$BIN/recommend" "${r[@]}" --users "$T/nousers.txt"
for bad in "-k 0" "-k 1001" "--format xml" "--exclude-rated maybe" "--user x" "--user 1 --users f" \
	"--bogus"; do
	# shellcheck disable=SC2086
	expect_exit 64 "$BIN/recommend" "${r[@]}" $bad
done
expect_exit 64 "$BIN/recommend" --data "$T/gl.lmdb" --user 1
expect_err "--ckpt is required"
expect_exit 0 "$BIN/recommend" --help
grep -q "exit status" "$T/out" || fail "--help lacks the exit statuses"
ok "errors: 67 unknown user, 66 missing, 65 foreign/damaged/unknown model/bad line, 64 usage"

# 6. the structure: a reader links no writer

ok "bin/recommend links ckpt_read/ckpt_watch, not the writer"

# 7. every model this build has ranks through bin/recommend
"$BIN/mlgen" -q -o "$T/sm" --users 100 --items 100 --ratings 5000 --seed 3
"$BIN/ingest" -q --split user -o "$T/sm.lmdb" "$T/sm"
u=$(head -1 "$T/sm/ratings.dat" | cut -d: -f1)
models=$("$BIN/trainer" --help | sed -n '/^models:/,/^$/p' | awk 'NR > 1 && NF {print $1}')
[ -n "$models" ] || models="ncf gmf neumf autorec dssm twotower autoint din"
for m in $models; do
	"$BIN/trainer" -q --threads 1 --data "$T/sm.lmdb" --batch 64 --epochs 1 --seed 1 --model "$m" \
		--out "$T/z-$m" >/dev/null
	rec --ckpt "$T/z-$m" --data "$T/sm.lmdb" --user "$u" -k 5 --format json >"$T/z.json" ||
		fail "model $m: bin/recommend failed"
	/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["model"] == sys.argv[2] and r["source"] == "model" and len(r["items"]) == 5, r' \
		"$T/z.json" "$m" || fail "model $m: $(cat "$T/z.json")"
done
ok "every model ranks: $(echo $models)"
