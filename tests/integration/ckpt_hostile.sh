# Hostile checkpoints (docs/FORMAT.md, "Checkpoints"): a file from someone
# else's machine never crashes, hangs or misleads bin/ckpt or bin/trainer.
# Metadata out of range (with a correct crc), an edited header, NaN and Inf
# weights, `latest` pointing outside its directory, FIFOs, a directory whose
# only checkpoint is damaged, and garbage files that retention must leave
# alone.  Each case: the exit status and a message naming the file and the
# problem.  Every command runs under `timeout 20` (a FIFO must not block).
source "$(dirname "$0")/_lib.sh"

to() { timeout 20 "$@"; }

"$BIN/mlgen" -q -o "$T/ml" --users 40 --items 50 --ratings 1500 --seed 5
"$BIN/ingest" -q --split user -o "$T/ml.lmdb" "$T/ml"
train=(--data "$T/ml.lmdb" --model ncf --threads 1 --batch 64 --emb-dim 8 --hidden 16,8)
expect_exit 0 to "$BIN/trainer" -q "${train[@]}" --out "$T/run" --epochs 1
good=$(readlink "$T/run/latest")
[ -f "$T/run/$good" ] || fail "no checkpoint after training"
ok "a trained checkpoint ($good)"

# edit FILE OUT PYTHON: _lib.sh's ckpt_edit
edit() { ckpt_edit "$@"; }

# 1. Metadata out of range or of the wrong type, under a correct crc.
mkdir "$T/h"
while IFS='|' read -r code want; do
	edit "$T/run/$good" "$T/h/x.safetensors" "$code"
	expect_exit 65 to "$BIN/ckpt" verify "$T/h/x.safetensors"
	grep -qF -- "$want" "$T/out" || { cat "$T/out"; fail "verify: no '$want' for $code"; }
	grep -qF -- "$T/h/x.safetensors" "$T/out" || fail "verify does not name the file"
	expect_exit 65 to "$BIN/ckpt" inspect "$T/h/x.safetensors"
	expect_err "$want"
done <<'CASES'
meta["step"] = "18446744073709551615"|'step' is 18446744073709551615, above its limit
meta["epoch"] = "18446744073709551615"|'epoch' is 18446744073709551615, above its limit
meta["samples"] = "-1"|'samples' is not an unsigned integer
meta["created"] = "1e9"|'created' is not an unsigned integer
h = json.loads(meta["hogrec"]); h["next_batch"] = "abc"; meta["hogrec"] = json.dumps(h)|'next_batch' is not a decimal string
h = json.loads(meta["hogrec"]); h["seed"] = 7; meta["hogrec"] = json.dumps(h)|'seed' is not a decimal string
h = json.loads(meta["hogrec"]); h["batch"] = 0; meta["hogrec"] = json.dumps(h)|'batch' is not an integer from 1 to 65536
h = json.loads(meta["hogrec"]); h["lr"] = -0.5; meta["hogrec"] = json.dumps(h)|'lr' is not a number from 0 to 100
h = json.loads(meta["hogrec"]); h["shape"]["emb_dim"] = 1e9; meta["hogrec"] = json.dumps(h)|'shape.emb_dim' is not an integer
h = json.loads(meta["hogrec"]); h["metrics"] = {"valid_auc": 7}; meta["hogrec"] = json.dumps(h)|'metrics.valid_auc' is not null or a number from 0 to 1
meta["version"] = "9"|version '9' is not supported
CASES
ok "metadata out of range refused by verify and inspect (65), naming file and value"

# 2. An edit without a new crc: the metadata is covered by it.
RESEAL=no edit "$T/run/$good" "$T/h/x.safetensors" 'meta["epoch"] = "2"'
expect_exit 65 to "$BIN/ckpt" verify "$T/h/x.safetensors"
grep -qF "checksum mismatch" "$T/out" || fail "an edited epoch passed"
ok "an edited header fails the crc (65)"

# 3. NaN and Inf weights: verify names the tensor and the first index.
edit "$T/run/$good" "$T/h/x.safetensors" \
	'name = sorted(k for k in hdr if k != "__metadata__")[0]; b = hdr[name]["data_offsets"][0]; pay[b + 8:b + 12] = struct.pack("<f", float("nan")); pay[b + 20:b + 24] = struct.pack("<f", float("inf"))'
name=$(/usr/bin/python3 -c 'import json,struct,sys; d=open(sys.argv[1],"rb").read(); n=struct.unpack("<Q",d[:8])[0]; print(sorted(k for k in json.loads(d[8:8+n]) if k!="__metadata__")[0])' "$T/h/x.safetensors")
expect_exit 65 to "$BIN/ckpt" verify "$T/h/x.safetensors"
grep -qF "tensor '$name' holds a non-finite value (nan) at index 2" "$T/out" ||
	{ cat "$T/out"; fail "NaN not reported"; }
edit "$T/run/$good" "$T/h/x.safetensors" \
	'b = hdr["item_emb"]["data_offsets"][0]; pay[b + 4:b + 8] = struct.pack("<f", float("-inf"))'
expect_exit 65 to "$BIN/ckpt" verify "$T/h/x.safetensors"
grep -qF "tensor 'item_emb' holds a non-finite value (-inf) at index 1 (row 0, col 1)" "$T/out" ||
	{ cat "$T/out"; fail "-inf not reported"; }
ok "NaN and -Inf weights: verify exits 65 naming tensor and index"

# 4. latest pointing outside its directory: refused, never followed.
mkdir -p "$T/d4/elsewhere"
cp "$T/run/$good" "$T/d4/elsewhere/ckpt-000000000999.safetensors"
cp "$T/run/$good" "$T/d4/$good"
for target in "$T/d4/elsewhere/ckpt-000000000999.safetensors" \
	elsewhere/ckpt-000000000999.safetensors ../d4/"$good" ..; do
	ln -sfn "$target" "$T/d4/latest"
	expect_exit 65 to "$BIN/ckpt" verify "$T/d4"
	grep -qF "'$T/d4/latest' points to '$target', not to a file name in" "$T/out" ||
		{ cat "$T/out"; fail "verify: latest -> $target not refused"; }
	expect_exit 0 to "$BIN/ckpt" inspect "$T/d4" # falls back to the newest valid one
	grep -qF "path         $T/d4/$good" "$T/out" || fail "inspect followed latest -> $target"
	expect_err "points to '$target'"
done
ok "latest outside its directory refused (verify 65), the newest valid file used instead"

# 5. FIFOs where a checkpoint or latest's target should be: no blocking.
mkdir "$T/d5"
cp "$T/run/$good" "$T/d5/$good"
mkfifo "$T/d5/ckpt-000000099999.safetensors"
expect_exit 74 to "$BIN/ckpt" verify "$T/d5/ckpt-000000099999.safetensors"
grep -qF "'$T/d5/ckpt-000000099999.safetensors': not a regular file (a FIFO)" "$T/out" ||
	{ cat "$T/out" "$T/err"; fail "FIFO message"; }
expect_exit 74 to "$BIN/ckpt" inspect "$T/d5/ckpt-000000099999.safetensors"
expect_err "not a regular file (a FIFO)"
ln -sfn ckpt-000000099999.safetensors "$T/d5/latest"
expect_exit 65 to "$BIN/ckpt" verify "$T/d5"
expect_exit 0 to "$BIN/ckpt" inspect "$T/d5"
grep -qF "path         $T/d5/$good" "$T/out" || fail "inspect did not fall back past the FIFO"
rm "$T/d5/latest"
mkfifo "$T/d5/latest"
expect_exit 65 to "$BIN/ckpt" verify "$T/d5"
grep -qF "'$T/d5/latest' is not a symbolic link" "$T/out" || fail "latest FIFO"
expect_exit 0 to "$BIN/ckpt" export "$T/d5" --all -o "$T/d5-npy"
cp -r "$T/d5" "$T/d5-run" # the trainer resumes past both FIFOs
expect_exit 0 to "$BIN/trainer" -q "${train[@]}" --out "$T/d5-run" --epochs 1 --predict test --limit 1
ok "FIFOs refused without blocking (74 for FILE, 65 in a DIR), the valid file used"

# 6. A directory whose only checkpoint is damaged: named as such, not "none".
mkdir "$T/d6"
edit "$T/run/$good" "$T/d6/$good" 'meta["step"] = "18446744073709551615"'
ln -s "$good" "$T/d6/latest"
expect_exit 65 to "$BIN/ckpt" inspect "$T/d6"
expect_err "'$T/d6' holds no valid checkpoint: '$T/d6/$good': metadata 'step' is 18446744073709551615"
expect_exit 65 to "$BIN/trainer" -q "${train[@]}" --out "$T/d6" --epochs 1 --predict test
expect_err "holds no valid checkpoint"
expect_err "'step' is 18446744073709551615"
expect_exit 65 to "$BIN/trainer" -q "${train[@]}" --out "$T/d6" --epochs 2
expect_err "holds no valid checkpoint"
expect_err "not starting over (--no-resume trains from scratch"
# (the lock file of a trainer that ran there may appear, nothing else)
[ "$(ls "$T/d6" | grep -v '^lock$')" = "$good
latest" ] || { ls -la "$T/d6"; fail "a refused resume changed the checkpoints"; }
cp -a "$T/d6" "$T/d6b"
to "$BIN/trainer" -q "${train[@]}" --out "$T/d6b" --epochs 1 --no-resume >/dev/null 2>"$T/err" ||
	{ cat "$T/err"; fail "--no-resume did not start over"; }
"$BIN/ckpt" verify "$T/d6b/latest" >/dev/null || fail "--no-resume left no valid latest"
ok "only a damaged checkpoint: --predict and resume exit 65 saying why, nothing written"

# 7. Retention with garbage of higher steps: garbage untouched and named,
# the run's valid checkpoints kept as --keep 1 says.
# The run resumes from its epoch-1 checkpoint, past the garbage.
mkdir "$T/d7"
cp "$T/run/$good" "$T/d7/$good"
printf 'not a checkpoint' >"$T/d7/ckpt-999999999999.safetensors"
RESEAL=no edit "$T/run/$good" "$T/d7/ckpt-999999999998.safetensors" 'meta["epoch"] = "7"'
expect_exit 0 to "$BIN/trainer" "${train[@]}" --out "$T/d7" --epochs 2 --keep 1 --ckpt-every-steps 5
expect_err "resuming from $T/d7/$good"
grep -qF "'$T/d7/ckpt-999999999999.safetensors'" "$T/err" || { cat "$T/err"; fail "no warning naming the garbage"; }
grep -qF "retention leaves it alone" "$T/err" || fail "the warning does not say what retention did"
[ "$(cat "$T/d7/ckpt-999999999999.safetensors")" = "not a checkpoint" ] || fail "garbage touched"
grep -qF "'$T/d7/ckpt-999999999998.safetensors': checksum mismatch" "$T/err" || fail "no warning naming the damaged file"
[ -f "$T/d7/ckpt-999999999998.safetensors" ] || fail "a damaged checkpoint deleted"
valid=$(ls "$T/d7" | grep -v '^ckpt-99999999999' | grep -c '^ckpt-')
[ "$valid" -eq 1 ] || { ls "$T/d7"; fail "$valid checkpoints of the run kept with --keep 1"; }
[ -f "$T/d7/$(readlink "$T/d7/latest")" ] || fail "latest's checkpoint deleted"
expect_exit 0 to "$BIN/ckpt" verify "$T/d7/$(readlink "$T/d7/latest")"
ok "retention keeps the newest valid checkpoint and leaves garbage alone, with a warning"
