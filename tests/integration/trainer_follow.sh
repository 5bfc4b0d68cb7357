# --follow: the trainer finishes its epochs, waits, and when a new ingest is
# published at the store path it carries the model over (embedding rows by
# raw id) and trains on the new records, publishing checkpoints for the new
# store.  A user with no new records keeps exactly the embedding it had.
source "$(dirname "$0")/_lib.sh"

"$BIN/mlgen" -q -o "$T/ml" --users 150 --items 200 --ratings 15000 --seed 31
cutoff=$(awk -F'::' '{print $4}' "$T/ml/ratings.dat" | sort -n | awk '{v[NR]=$1} END {print v[int(NR*0.6)]}')
mkdir "$T/a"
cp "$T/ml/users.dat" "$T/ml/movies.dat" "$T/a/"
awk -F'::' -v c="$cutoff" '$4 < c' "$T/ml/ratings.dat" >"$T/a/ratings.dat"
"$BIN/ingest" -q -o "$T/store.lmdb" "$T/a"
cp -r "$T/store.lmdb" "$T/old.lmdb"

"$BIN/trainer" --data "$T/store.lmdb" --model ncf --out "$T/out" --epochs 1 --threads 1 \
	--batch 32 --follow yes --follow-poll 0.05 --keep 10 >/dev/null 2>"$T/log" & pid=$!
# waitfor TEXT [N] : until the log holds TEXT N times (default 1); bounded
waitfor() {
	local n=${2:-1}
	for _ in $(seq 12000); do
		[ "$(grep -c "$1" "$T/log")" -ge "$n" ] && return 0
		kill -0 $pid 2>/dev/null || { cat "$T/log"; fail "the trainer exited before '$1'"; }
		sleep 0.01
	done
	cat "$T/log"; fail "no '$1' (x$n) within 120 s"
}
waitfor "waiting for a new store"
before=$(readlink "$T/out/latest")

"$BIN/ingest" -q --force -o "$T/store.lmdb" "$T/ml"   # the full data, published atomically
waitfor "new store at"
waitfor "epoch 2:"
waitfor "waiting for a new store" 2 # the second wait: epoch 2 is checkpointed
after=$(readlink "$T/out/latest")
kill -TERM $pid
rc=0; wait $pid || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/log"; fail "exit status $rc"; }
[ "$before" != "$after" ] || fail "no checkpoint after the new store"
ok "a new store is picked up, trained on, checkpointed; SIGTERM while waiting exits 0"

/usr/bin/python3 - "$T" "$before" "$after" "$cutoff" <<'PY' || fail "carry-over check"
import json, struct, sys, lmdb, msgpack, numpy as np
t, before, after, cutoff = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def ckpt(name):
    raw = open(f"{t}/out/{name}", "rb").read()
    (n,) = struct.unpack("<Q", raw[:8]); h = json.loads(raw[8:8 + n]); meta = h.pop("__metadata__")
    p = raw[8 + n:]
    return meta, {k: np.frombuffer(p[v["data_offsets"][0]:v["data_offsets"][1]], "<f4").reshape(v["shape"]) for k, v in h.items()}
def store(path):
    env = lmdb.open(path, readonly=True, lock=False, max_dbs=8)
    with env.begin() as txn:
        meta = msgpack.unpackb(txn.get(b"meta", db=env.open_db(b"meta", create=False, txn=txn)))
        users = msgpack.unpackb(txn.get(b"user", db=env.open_db(b"vocab", create=False, txn=txn)))
    return meta, {u: i for i, u in enumerate(users) if i}
mb, wb = ckpt(before); ma, wa = ckpt(after)
old_meta, old_ids = store(f"{t}/old.lmdb"); new_meta, new_ids = store(f"{t}/store.lmdb")
assert mb["schema_hash"] == old_meta["schema_hash"] and ma["schema_hash"] == new_meta["schema_hash"]
assert wa["user_emb"].shape[0] == len(new_ids) + 1
# The new records: the new store's train events after the old store's train split.
end = old_meta["split"]["train_end_ts"]
late = {int(l.split("::")[0]) for l in open(f"{t}/ml/ratings.dat") if int(l.split("::")[3]) > end}
quiet = [u for u in old_ids if u in new_ids and u not in late]
assert quiet, "no user without new ratings"
for u in quiet:
    assert np.array_equal(wb["user_emb"][old_ids[u]], wa["user_emb"][new_ids[u]]), u
moved = [u for u in old_ids if u in new_ids and u in late
         and not np.array_equal(wb["user_emb"][old_ids[u]], wa["user_emb"][new_ids[u]])]
assert moved, "no embedding was trained on the new records"
print("ok %d users without new records keep their rows (remapped by raw id); %d trained" % (len(quiet), len(moved)))
PY
ok "model carried over by raw id"
