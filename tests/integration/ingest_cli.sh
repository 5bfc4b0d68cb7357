# bin/ingest end to end on generated data: success paths, and every class of
# bad input giving a clear message, the documented exit status and no output.
source "$(dirname "$0")/_lib.sh"

"$BIN/mlgen" -o "$T/ml" --users 120 --items 150 --ratings 6000 --seed 3 2>/dev/null
expect_exit 0 "$BIN/ingest" -q "$T/ml"
[ -f "$T/ml.lmdb/data.mdb" ] || fail "default output ml.lmdb not written"
no_leftovers "$T"
expect_exit 0 "$BIN/ingest" --inspect "$T/ml.lmdb"
grep -q '"hogrec-store"' "$T/out" || fail "inspect does not show the format"
ok "ingest writes DIR.lmdb and --inspect reads it"

# The summary names every split and the timing of each stage.
expect_exit 0 "$BIN/ingest" -o "$T/s2.lmdb" "$T/ml"
for w in train valid test "history" "unseen in train" "seconds"; do expect_err "$w"; done
ok "summary"

# Refuses to overwrite; --force replaces; the first store is untouched when refused.
before=$(tree_sum "$T/ml.lmdb")
expect_exit 73 "$BIN/ingest" -q "$T/ml"
expect_err "already exists"
[ "$(tree_sum "$T/ml.lmdb")" = "$before" ] || fail "refused run changed the store"
expect_exit 0 "$BIN/ingest" -q --force --seed 9 "$T/ml"
ok "overwrite refused without --force, done with it"

# --force never removes a directory that is not a store.
mkdir -p "$T/home"; echo keep >"$T/home/notes"
expect_exit 64 "$BIN/ingest" -q --force -o "$T/home" "$T/ml"
expect_err "not a hogrec store"
[ -f "$T/home/notes" ] || fail "--force deleted a foreign directory"
ok "--force refuses foreign directories"

# Missing input, empty dir, unknown format: reported before the output is
# touched (no store, no temporary directory, no output parent created).
expect_exit 66 "$BIN/ingest" -q -o "$T/x.lmdb" "$T/nope"
expect_err "cannot open '$T/nope'"
expect_exit 66 "$BIN/ingest" "$T/gone/ml-1m"
expect_err "cannot open '$T/gone/ml-1m'"
[ ! -e "$T/gone" ] || fail "a missing input created '$T/gone'"
mkdir -p "$T/empty" "$T/outdir"
expect_exit 65 "$BIN/ingest" -q -o "$T/x.lmdb" "$T/empty"
expect_err "'$T/empty' holds no MovieLens ratings file"
expect_exit 65 "$BIN/ingest" "$T/empty"
[ ! -e "$T/empty.lmdb" ] || fail "store written for an empty input"
# An output that could not be created is not what gets reported.
expect_exit 65 "$BIN/ingest" -o "$T/nodir/x.lmdb" "$T/empty"
expect_err "holds no MovieLens ratings file"
# A missing companion file is reported before the output is claimed too.
mkdir -p "$T/half"; cp "$T/ml/ratings.dat" "$T/ml/movies.dat" "$T/half/"
expect_exit 66 "$BIN/ingest" -o "$T/outdir/half.lmdb" "$T/half"
expect_err "missing '$T/half/users.dat'"
# Output checks still come next: an existing store is named as before.
expect_exit 73 "$BIN/ingest" -q -o "$T/ml.lmdb" "$T/ml"
[ ! -e "$T/x.lmdb" ] || fail "store written for bad input"
[ -z "$(ls -A "$T/outdir")" ] || fail "bad input left something in the output directory"
no_leftovers "$T"
ok "missing and unknown input, reported before the output is touched"

# An output whose directory does not exist (or is a file) is named as such.
expect_exit 74 "$BIN/ingest" -q -o "$T/nodir/x.lmdb" "$T/ml"
expect_err "cannot create '$T/nodir/x.lmdb': '$T/nodir' is not a directory (it does not exist)"
expect_exit 74 "$BIN/ingest" -q -o "$T/ml/ratings.dat/x.lmdb" "$T/ml"
expect_err "'$T/ml/ratings.dat' is not a directory"
[ ! -e "$T/nodir" ] || fail "a missing output directory was created"
ok "output in a missing directory: named, exit 74"

# A malformed line: file:line message, no store; --max-errors skips it.
cp -r "$T/ml" "$T/bad"
sed -i '17s/.*/12::x::4::978300760/' "$T/bad/ratings.dat"
expect_exit 65 "$BIN/ingest" -q -o "$T/bad.lmdb" "$T/bad"
expect_err "ratings.dat:17:"
[ ! -e "$T/bad.lmdb" ] || fail "store written despite a malformed line"
no_leftovers "$T"
expect_exit 0 "$BIN/ingest" -o "$T/bad.lmdb" --max-errors 1 "$T/bad"
expect_err "skipped 1 malformed"
ok "malformed line reported as file:line; --max-errors skips"

# A rating of an unknown user.
cp -r "$T/ml" "$T/unk"
echo "99999::1::5::978300760" >>"$T/unk/ratings.dat"
expect_exit 65 "$BIN/ingest" -q -o "$T/unk.lmdb" "$T/unk"
expect_err "99999"
ok "unknown user"

# Bad options: the error and a pointer to --help, not the whole help text.
expect_short_usage_error() { # TEXT: exit 64 was checked; stderr is at most 2 lines
	expect_err "$1"
	expect_err "(see --help)"
	[ "$(wc -l <"$T/err")" -le 2 ] || { cat "$T/err" >&2; fail "usage error is not short"; }
	! grep -q "^usage:" "$T/err" || fail "usage error prints the help"
}
expect_exit 64 "$BIN/ingest" --split weekly "$T/ml"
expect_short_usage_error "--split: 'weekly' is not global, user or loo"
expect_exit 64 "$BIN/ingest" --split users
expect_short_usage_error "--split: 'users'"
expect_exit 64 "$BIN/ingest" --hist-len abc "$T/ml"
expect_short_usage_error "--hist-len: 'abc'"
expect_exit 64 "$BIN/ingest" --hist-len 99999999999999999999 "$T/ml"
expect_short_usage_error "--hist-len: '99999999999999999999' is not an integer between 1 and 4096"
expect_exit 64 "$BIN/ingest" --hist-len 4294967296 "$T/ml"
expect_short_usage_error "--hist-len: '4294967296' is not an integer between 1 and 4096"
expect_exit 64 "$BIN/ingest" --max-errors 99999999999999999999999 "$T/ml"
expect_short_usage_error "--max-errors: '99999999999999999999999' is not an integer"
expect_exit 64 "$BIN/ingest" --valid-frac nan "$T/ml"
expect_short_usage_error "--valid-frac: 'nan' is not a number between 0 and 1"
expect_exit 64 "$BIN/ingest" --max-errors -5 "$T/ml"
expect_short_usage_error "--max-errors: '-5'"
expect_exit 64 "$BIN/ingest" --label maybe "$T/ml"
expect_short_usage_error "--label: 'maybe'"
expect_exit 64 "$BIN/ingest" "$T/ml" --hist-len
expect_short_usage_error "'--hist-len' requires an argument"
expect_exit 64 "$BIN/ingest" --no-such-option "$T/ml"
expect_short_usage_error "'--no-such-option'"
expect_exit 64 "$BIN/ingest"
expect_short_usage_error "no input DIR"
expect_exit 64 "$BIN/ingest" "$T/ml" "$T/ml2"
expect_short_usage_error "unexpected argument '$T/ml2'"
expect_exit 64 "$BIN/ingest" --inspect
expect_short_usage_error "--inspect takes one STORE"
expect_exit 0 "$BIN/ingest" --help
grep -q "^usage: ingest" "$T/out" || fail "--help prints no usage on stdout"
expect_exit 64 "$BIN/ingest" --pos-min 3 --neg-max 3 "$T/ml"
expect_exit 64 "$BIN/ingest" --hist-len 0 -o "$T/h0.lmdb" "$T/ml"
expect_exit 64 "$BIN/ingest" --valid-frac 0.7 --test-frac 0.5 -o "$T/h0.lmdb" "$T/ml"
[ ! -e "$T/h0.lmdb" ] || fail "store written for bad options"
no_leftovers "$T"
ok "bad options"

# --inspect / --dump on things that are not stores.
expect_exit 66 "$BIN/ingest" --inspect "$T/none.lmdb"
expect_exit 65 "$BIN/ingest" --inspect "$T/ml"
expect_err "not a hogrec store"
expect_exit 64 "$BIN/ingest" --dump "$T/ml.lmdb" everything 3
expect_short_usage_error "--dump: 'everything' is not train, valid or test"
ok "inspect of non-stores"

# Implicit mode keeps every rating; other splits work.
expect_exit 0 "$BIN/ingest" --json --label implicit --split loo -o "$T/imp.lmdb" "$T/ml"
grep -q '"dropped":0' "$T/out" || fail "implicit mode dropped ratings"
ok "implicit labels, loo split"

# --inspect shows meta.split (the time cuts) only for the global split; the
# store itself keeps it under every split (--follow reads train_end_ts).
expect_exit 0 "$BIN/ingest" -q --split user -o "$T/user.lmdb" "$T/ml"
for s in user imp; do # imp.lmdb is the loo store above
	expect_exit 0 "$BIN/ingest" --inspect "$T/$s.lmdb"
	! grep -qE "train_end_ts|valid_end_ts|^  split:" "$T/out" || fail "$s: --inspect shows the cuts"
	grep -q "^  counts:" "$T/out" || fail "$s: --inspect lost other entries"
	expect_exit 0 "$BIN/ingest" --inspect --json "$T/$s.lmdb"
	/usr/bin/python3 - "$T/out" <<'PY' || fail "$s: --inspect --json shows the cuts or is not JSON"
import json, sys
m = json.load(open(sys.argv[1]))
assert "split" not in m and m["options"]["split"] in ("user", "loo") and "counts" in m, m
PY
	/usr/bin/python3 - "$T/$s.lmdb" <<'PY' || fail "$s: the store's meta lost split"
import lmdb, msgpack, sys
env = lmdb.open(sys.argv[1], readonly=True, lock=False, max_dbs=8, subdir=True)
with env.begin() as txn:
    db = env.open_db(b"meta", txn=txn, create=False)
    m = msgpack.unpackb(txn.get(b"meta", db=db), raw=False)
assert set(m["split"]) == {"train_end_ts", "valid_end_ts"}, m["split"]
PY
done
expect_exit 0 "$BIN/ingest" --inspect "$T/ml.lmdb"
grep -q '^  split: {"train_end_ts":[0-9]*,"valid_end_ts":[0-9]*}$' "$T/out" ||
	fail "global: --inspect does not show the cuts"
expect_exit 0 "$BIN/ingest" --inspect --json "$T/ml.lmdb"
/usr/bin/python3 - "$T/out" <<'PY' || fail "global: --inspect --json does not show the cuts"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["options"]["split"] == "global" and set(m["split"]) == {"train_end_ts", "valid_end_ts"}, m
PY
ok "--inspect shows the split cuts only for the global split"
