# NeuMF pre-trained as the NCF paper does it (docs/models.md, "Pre-training
# neumf"): gmf and ncf trained alone, then neumf --init-from both, on the
# small generated store of zoo_models.sh; one worker, fixed seeds.
#  1. the run publishes its starting point as step 0: the GMF and MLP
#     tables and hidden layers equal the sources', the output layer is
#     [0.5 w_gmf | 0.5 w_ncf] with bias 0.5 (b_gmf + b_ncf), the optimizer
#     state is zero, the metadata records the sources; --predict with it
#     scores 0.5 gmf's + 0.5 ncf's logit;
#  2. after one epoch it beats a fresh neumf after one epoch, and popularity;
#  3. a source of another shape, another model, another store, a missing
#     or a damaged one, and a model without a mapping are refused with the
#     exit status of their class and a message naming what and where;
#     nothing is created;
#  4. a restart resumes the run only under the same --init-from.
source "$(dirname "$0")/_lib.sh"

"$BIN/mlgen" -q -o "$T/ml" --users 300 --items 300 --ratings 20000 --seed 5
"$BIN/ingest" -q --split user -o "$T/ex.lmdb" "$T/ml"
train() { "$BIN/trainer" -q --threads 1 --data "$T/ex.lmdb" --batch 64 "$@"; }

# The sources, trained to their best valid epoch (early stopping).
train --model gmf --out "$T/gmf" --epochs 20 --seed 1 >/dev/null
train --model ncf --out "$T/ncf" --epochs 20 --seed 1 >/dev/null
train --model neumf --out "$T/pre" --epochs 1 --early-stop 0 --seed 2 --keep 10 \
	--init-from "$T/gmf,$T/ncf" >/dev/null
train --model neumf --out "$T/fresh" --epochs 1 --early-stop 0 --seed 2 >/dev/null

# --- 1. The starting point ------------------------------------------------

/usr/bin/python3 - "$T/pre/ckpt-000000000000.safetensors" "$T/gmf" "$T/ncf" <<'PY' ||
import json, os, struct, sys
import numpy as np

def read(path):  # docs/FORMAT.md; the trainer has verified the crc
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__")
    t = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        t[name] = np.frombuffer(data[8 + n + b:8 + n + end], dtype="<f4").reshape(e["shape"])
    return meta, json.loads(meta["hogrec"]), t

def latest(d):
    return os.path.join(d, os.readlink(os.path.join(d, "latest")))

meta, doc, nm = read(sys.argv[1])
gmf_file, ncf_file = latest(sys.argv[2]), latest(sys.argv[3])
gm, _, g = read(gmf_file)
cm, _, c = read(ncf_file)
assert meta["model"] == "neumf" and meta["step"] == "0" and meta["epoch"] == "1", meta
assert doc["next_batch"] == "0", doc
assert doc["init_from"] == [
    {"path": sys.argv[2], "file": gmf_file, "model": "gmf", "step": gm["step"]},
    {"path": sys.argv[3], "file": ncf_file, "model": "ncf", "step": cm["step"]},
], doc["init_from"]
same = [("user_gmf", g["user_emb"]), ("item_gmf", g["item_emb"]),
        ("user_mlp", c["user_emb"]), ("item_mlp", c["item_emb"])]
L = len(doc["shape"]["hidden"])
same += [("mlp.%d.%s" % (k, x), c["mlp.%d.%s" % (k, x)]) for k in range(L) for x in "wb"]
for name, want in same:
    assert np.array_equal(nm[name], want), name
E = g["out.0.w"].shape[1]
half = np.float32(0.5)
assert np.array_equal(nm["out.0.w"][:, :E], half * g["out.0.w"]), "out.0.w, GMF columns"
assert np.array_equal(nm["out.0.w"][:, E:], half * c["mlp.%d.w" % L]), "out.0.w, MLP columns"
assert np.array_equal(nm["out.0.b"], half * g["out.0.b"] + half * c["mlp.%d.b" % L]), "out.0.b"
state = [k for k in nm if k.startswith("optim.")]
assert state and all(not nm[k].any() for k in state), "optimizer state is not zero"
assert set(nm) - set(state) == {n for n, _ in same} | {"out.0.w", "out.0.b"}, sorted(nm)
print("step 0: %d tensors equal their sources" % len(same))
PY
	fail "the step-0 checkpoint does not hold the sources' tensors"
ok "the starting point (step 0): tables and hidden layers copied, the output layer halved, optimizer state zero, sources recorded"

# Scored alone, the step-0 checkpoint gives the mean of the sources' logits.
mkdir "$T/step0"
cp "$T/pre/ckpt-000000000000.safetensors" "$T/step0/"
ln -s ckpt-000000000000.safetensors "$T/step0/latest"
for d in step0 gmf ncf; do
	"$BIN/trainer" -q --data "$T/ex.lmdb" --out "$T/$d" --predict test --limit 100000 \
		>"$T/p-$d.jsonl"
done
/usr/bin/python3 - "$T/p-step0.jsonl" "$T/p-gmf.jsonl" "$T/p-ncf.jsonl" <<'PY' ||
import json, sys
s, g, c = ([json.loads(l) for l in open(f)] for f in sys.argv[1:])
assert len(s) == len(g) == len(c) > 1000, (len(s), len(g), len(c))
for a, b, d in zip(s, g, c):
    assert a["key"] == b["key"] == d["key"], (a, b, d)
    want = 0.5 * b["logit"] + 0.5 * d["logit"]
    assert abs(a["logit"] - want) <= 1e-5 * (1 + abs(want)), (a, b, d)
PY
	fail "--predict with the step-0 checkpoint is not the mean of gmf's and ncf's logits"
ok "--predict with the step-0 checkpoint: 0.5 gmf's + 0.5 ncf's logit on every test record"

# --- 2. Learning ----------------------------------------------------------

# One epoch each, the same seed.  Measured over --seed 1..6 (sources as
# above): pre-trained 0.8141 .. 0.8174, fresh 0.7772 .. 0.7993, a margin
# of 0.018 .. 0.039; popularity 0.7250.  Asserted: a margin of 0.009 (half
# the smallest) and 0.04 above popularity.  After more epochs the fresh
# model catches up (docs/models.md has the measurements).
/usr/bin/python3 - "$T/pre/metrics.jsonl" "$T/fresh/metrics.jsonl" <<'PY' ||
import json, sys
p, f = ([json.loads(l) for l in open(x)][-1] for x in sys.argv[1:])
assert p["split"] == f["split"] == "test" and p["epoch"] == f["epoch"] == 1, (p, f)
print("pre-trained %.4f, fresh %.4f, popularity %.4f" % (p["auc"], f["auc"], p["baseline_auc"]))
assert p["auc"] - f["auc"] >= 0.009, "pre-trained %.4f, fresh %.4f" % (p["auc"], f["auc"])
assert p["auc"] - p["baseline_auc"] >= 0.04, p
PY
	fail "pre-trained neumf does not beat a fresh one after one epoch"
ok "after one epoch the pre-trained neumf beats a fresh one and popularity"

# --- 3. Refused sources ---------------------------------------------------

train --model gmf --out "$T/gmf8" --emb-dim 8 --epochs 1 --seed 1 >/dev/null
train --model dssm --out "$T/dssm" --hidden 16,8 --epochs 1 --seed 1 >/dev/null
# The same vocabularies, another schema (the history length is in it): the
# tensors fit, the ids need not mean the same.
"$BIN/ingest" -q --split user --hist-len 10 -o "$T/l10.lmdb" "$T/ml"
"$BIN/trainer" -q --threads 1 --data "$T/l10.lmdb" --model gmf --out "$T/gmf-l10" \
	--epochs 1 --seed 1 >/dev/null
gmf_file=$T/gmf/$(readlink "$T/gmf/latest")
/usr/bin/python3 - "$gmf_file" "$T/bad.safetensors" <<'PY' # one bit of a weight flipped
import sys
d = bytearray(open(sys.argv[1], "rb").read())
d[-9] ^= 0x10
open(sys.argv[2], "wb").write(d)
PY
gmf8_file=$T/gmf8/$(readlink "$T/gmf8/latest")
dssm_file=$T/dssm/$(readlink "$T/dssm/latest")
mkdir "$T/nockpt"

# refused CODE TEXT... -- ARGS : neumf --init-from ARGS exits CODE, stderr
# holds each TEXT, and --out was not created
refused() {
	local code=$1 texts=() t; shift
	while [ "$1" != "--" ]; do texts+=("$1"); shift; done
	shift
	expect_exit "$code" "$BIN/trainer" --threads 1 --data "$T/ex.lmdb" --out "$T/x" "$@"
	for t in "${texts[@]}"; do expect_err "$t"; done
	[ ! -e "$T/x" ] || fail "a refused --init-from created '$T/x'"
}
refused 64 "--init-from: '$gmf8_file' (model gmf): tensor 'user_emb' is 301x8; neumf's 'user_gmf' wants 301x32" \
	-- --model neumf --init-from "$T/gmf8,$T/ncf"
refused 64 "--init-from: '$dssm_file' is a dssm checkpoint: neumf starts from gmf and ncf" \
	-- --model neumf --init-from "$T/gmf,$T/dssm"
refused 64 "--init-from: checkpoint '$T/gmf-l10/" "was trained on a store with schema" "'$T/ex.lmdb' has schema" \
	-- --model neumf --init-from "$T/gmf-l10"
refused 64 "are both gmf checkpoints: give one" -- --model neumf --init-from "$T/gmf,$gmf_file"
ok "another shape, another model, another store, two of one model: exit 64 naming the checkpoint and the tensor; nothing created"
refused 66 "--init-from: '$T/none.safetensors' does not exist" \
	-- --model neumf --init-from "$T/gmf,$T/none.safetensors"
refused 66 "--init-from: no checkpoint in '$T/nockpt'" -- --model neumf --init-from "$T/nockpt"
refused 65 "--init-from: '$T/bad.safetensors': checksum mismatch" \
	-- --model neumf --init-from "$T/bad.safetensors,$T/ncf"
ok "a missing source (66), a directory without checkpoints (66), a damaged one (65): named; nothing created"
refused 64 "'init_from': model 'ncf' cannot start from other models' checkpoints (neumf can)" \
	-- --model ncf --init-from "$T/gmf"
refused 64 "'init_from' must be 1 to 8 checkpoint paths separated by commas, not '$T/gmf,'" \
	-- --model neumf --init-from "$T/gmf,"
ok "a model without a mapping and an empty path: refused with the options (64)"

# --- 4. Resume ------------------------------------------------------------

# The same --init-from: a restart, which resumes (the sources are read
# again, the run's parameters come from its checkpoint).
expect_exit 0 "$BIN/trainer" --threads 1 --data "$T/ex.lmdb" --batch 64 --model neumf \
	--out "$T/pre" --epochs 2 --early-stop 0 --seed 2 --keep 10 --init-from "$T/gmf,$T/ncf"
expect_err "resuming from $T/pre/ckpt-"
[ "$(grep -c '"split":"test"' "$T/pre/metrics.jsonl")" -eq 2 ] || fail "the resumed run did not train epoch 2"
/usr/bin/python3 - "$T/pre/latest" <<'PY' || fail "the resumed run's checkpoint lost its init_from record"
import json, struct, sys
data = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", data[:8])
doc = json.loads(json.loads(data[8:8 + n])["__metadata__"]["hogrec"])
assert [s["model"] for s in doc["init_from"]] == ["gmf", "ncf"], doc
PY
ok "the same --init-from resumes the run; its checkpoints keep the record"

# untouched DIR : a digest of DIR's names and files but its lock file
# (rewritten with the pid of every trainer that opens DIR)
untouched() { (cd "$1" && ls -A && find . -type f ! -name lock -print0 | sort -z | xargs -0 sha256sum) | sha256sum; }
sum_before=$(untouched "$T/pre")
expect_exit 64 "$BIN/trainer" --threads 1 --data "$T/ex.lmdb" --batch 64 --model neumf \
	--out "$T/pre" --epochs 3 --init-from "$T/gmf"
expect_err "--init-from $T/gmf: '$T/pre' holds a run to resume ($T/pre/ckpt-"
expect_err "that started from $T/gmf,$T/ncf: --no-resume starts it over"
expect_exit 64 "$BIN/trainer" --threads 1 --data "$T/ex.lmdb" --batch 64 --model neumf \
	--out "$T/fresh" --epochs 3 --init-from "$T/gmf,$T/ncf"
expect_err "'$T/fresh' holds a run to resume ($T/fresh/ckpt-"
expect_err "that did not start from checkpoints: --no-resume starts it over"
[ "$(untouched "$T/pre")" = "$sum_before" ] || fail "a refused resume changed '$T/pre'"
expect_exit 0 "$BIN/trainer" -q --threads 1 --data "$T/ex.lmdb" --batch 64 --model neumf \
	--out "$T/fresh" --epochs 1 --early-stop 0 --seed 2 --no-resume --init-from "$T/gmf,$T/ncf"
untimed() { sed -E 's/"(samples_per_s|gflops)":[^,}]*/"\1":T/g'; }
[ "$(sed -n 2p "$T/fresh/metrics.jsonl" | untimed)" = "$(sed -n 2p "$T/pre/metrics.jsonl" | untimed)" ] ||
	fail "--no-resume --init-from did not train as the first pre-trained run"
ok "another --init-from, or one on a run that did not start from checkpoints: refused (64), nothing changed; --no-resume starts over from them"

# --- 5. Options -----------------------------------------------------------

expect_exit 0 "$BIN/trainer" --data "$T/ex.lmdb" --model neumf --out "$T/x" \
	--init-from "$T/gmf,$T/ncf" --pretrain-alpha 0.25 --check-config
grep -qx "init_from = $T/gmf,$T/ncf" "$T/out" || fail "--check-config does not print init_from"
grep -qx "pretrain_alpha = 0.25" "$T/out" || fail "--check-config does not print pretrain_alpha"
[ ! -e "$T/x" ] || fail "--check-config created '$T/x'"
expect_exit 0 "$BIN/trainer" --help
grep -q -- "--init-from CKPT\[,CKPT...\]" "$T/out" || fail "--help does not list --init-from"
grep -q -- "--pretrain-alpha X" "$T/out" || fail "--help does not list --pretrain-alpha"
ok "--check-config and --help show init_from and pretrain_alpha"
