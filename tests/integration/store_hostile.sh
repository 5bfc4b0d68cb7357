# Hostile stores: a store from someone else's machine never crashes, hangs
# or makes a tool write out of bounds.  Records with each id out of range
# (resealed, so only the decode can catch them), damaged pages, a truncated
# data.mdb, FIFOs where store or input files should be: every tool that
# reads a store (ingest --inspect, ingest --dump, trainer) exits 65 with a
# message; nothing hangs (timeout 20, 124 fails); under ASan nothing trips.
# HOGREC_HOSTILE_TRIALS (default 60) random corruption trials, seeded.
source "$(dirname "$0")/_lib.sh"

"$BIN/mlgen" -q -o "$T/ml" --users 50 --items 60 --ratings 2500 --seed 3
"$BIN/ingest" -q --split user -o "$T/ml.lmdb" "$T/ml"

# every_tool_refuses STORE TEXT... : each reader exits 65, stderr has TEXT
every_tool_refuses() {
	local s=$1; shift
	local cmds=("ingest --inspect $s" "ingest --dump $s train 100000"
		"trainer -q --data $s --model dssm --out $T/run --epochs 1 --threads 1 --hidden 16")
	for c in "${cmds[@]}"; do
		local got=0
		# shellcheck disable=SC2086
		timeout 20 "$BIN"/$c >"$T/out.txt" 2>"$T/err" || got=$?
		[ "$got" -ne 124 ] || fail "'$c' hung"
		[ "$got" -eq 65 ] || { cat "$T/err" >&2; fail "'$c' exited $got, expected 65"; }
		for text in "$@"; do expect_err "$text"; done
		rm -rf "$T/run"
	done
}

# A record field out of range, store resealed: the decode refuses it.
# edit STORE SPLIT KEY FIELD VALUE (FIELD: index in the record, or
# FIELD.ELEMENT for arrays)
edit() {
	/usr/bin/python3 - "$@" <<'PY'
import lmdb, msgpack, struct, sys
path, split, key, field, value = sys.argv[1:6]
env = lmdb.open(path, max_dbs=8)
db = env.open_db(split.encode(), create=False)
value = float(value) if "." in value or "n" in value else int(value)
with env.begin(write=True) as t:
    k = struct.pack(">Q", int(key))
    rec = msgpack.unpackb(t.get(k, db=db))
    if "." in field:
        f, e = map(int, field.split("."))
        while len(rec[f]) <= e:
            rec[f].append(0)
        rec[f][e] = value
    else:
        rec[int(field)] = value
    t.put(k, msgpack.packb(rec, use_single_float=True), db=db)
env.close()
PY
	store_reseal "$1"
}

read -r nuser nitem ngenre < <(/usr/bin/python3 - "$T/ml.lmdb" <<'PY'
import lmdb, msgpack, sys
env = lmdb.open(sys.argv[1], readonly=True, lock=False, max_dbs=8)
db = env.open_db(b"meta", create=False)
with env.begin() as t:
    m = msgpack.unpackb(t.get(b"meta", db=db))
v = m["vocab_sizes"]
print(v["user"], v["item"], v["genre"])
PY
)
# field index, name, value; the dump prints what it reads, so only the
# trainer is asked about ids (ingest --dump of these stores exits 0)
cases=(
	"5 user $nuser" "6 item $nitem" "6 item 4294967295" "7 gender 3" "8 age 99"
	"9 occupation 4096" "10 zip 65536" "11.0 genres $ngenre" "13.0 hist $nitem"
	"14.0 neg_hist 4294967295"
)
for split in train valid test; do
	for c in "${cases[@]}"; do
		read -r f name v <<<"$c"
		rm -rf "$T/bad.lmdb"
		cp -r "$T/ml.lmdb" "$T/bad.lmdb"
		edit "$T/bad.lmdb" $split 0 "$f" "$v"
		got=0
		timeout 20 "$BIN/trainer" -q --data "$T/bad.lmdb" --model dssm --out "$T/run" \
			--epochs 1 --threads 1 --hidden 16 >/dev/null 2>"$T/err" || got=$?
		[ "$got" -eq 65 ] || { cat "$T/err" >&2; fail "$split $name=$v: trainer exited $got"; }
		expect_err "store '$T/bad.lmdb': $split record 0: field '$name'"
		[ "$name" != item ] || [ "$v" != "$nitem" ] ||
			expect_err "field 'item' is $nitem, the vocabulary has $nitem ids"
		rm -rf "$T/run"
	done
done
# A negative id (msgpack negative fixint) and a NaN dense value (DSSM reads
# the dense features; NCF does not decode them, so does not see it).
for c in "6 item -1 is not an unsigned integer" "12.1 dense nan element 1 is nan"; do
	read -r f name v text <<<"$c"
	rm -rf "$T/bad.lmdb"
	cp -r "$T/ml.lmdb" "$T/bad.lmdb"
	edit "$T/bad.lmdb" train 3 "$f" "$v"
	expect_exit 65 timeout 20 "$BIN/trainer" -q --data "$T/bad.lmdb" --model dssm \
		--out "$T/run" --epochs 1 --threads 1 --hidden 16
	expect_err "train record 3"
	expect_err "$text"
	rm -rf "$T/run"
done
# NCF reads only the scalar ids: it still checks them.
rm -rf "$T/bad.lmdb"
cp -r "$T/ml.lmdb" "$T/bad.lmdb"
edit "$T/bad.lmdb" valid 2 6 "$nitem"
expect_exit 65 timeout 20 "$BIN/trainer" -q --data "$T/bad.lmdb" --model ncf --out "$T/run" \
	--epochs 1 --threads 1
expect_err "valid record 2: field 'item' is $nitem, the vocabulary has $nitem ids"
rm -rf "$T/run"
ok "records with an id out of range (each field, each split, 2^32-1, negative) or NaN: exit 65 naming store, split, key, field"

# Edited without resealing: refused as damaged.
rm -rf "$T/bad.lmdb"
cp -r "$T/ml.lmdb" "$T/bad.lmdb"
edit "$T/bad.lmdb" train 0 6 1
cp "$T/ml.lmdb/data.crc" "$T/bad.lmdb/data.crc"
every_tool_refuses "$T/bad.lmdb" "store '$T/bad.lmdb' is damaged"
rm "$T/bad.lmdb/data.crc"
every_tool_refuses "$T/bad.lmdb" "store '$T/bad.lmdb' has no seal"
ok "an edited store without its seal, or with a stale one: refused"

# Damaged pages: 64 inverted bytes at fixed offsets, then random trials.
size=$(stat -c %s "$T/ml.lmdb/data.mdb")
# corrupt STORE OFFSET : inverts 64 bytes of data.mdb at OFFSET
corrupt() {
	/usr/bin/python3 - "$1/data.mdb" "$2" <<'PY'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(off)
    b = f.read(64)
    f.seek(off)
    f.write(bytes(x ^ 0xFF for x in b))
PY
}
for off in 0 16 4096 8192 $((size / 2)) $((size - 64)); do
	rm -rf "$T/bad.lmdb"
	cp -r "$T/ml.lmdb" "$T/bad.lmdb"
	corrupt "$T/bad.lmdb" $off
	every_tool_refuses "$T/bad.lmdb" "'$T/bad.lmdb'"
done
trials=${HOGREC_HOSTILE_TRIALS:-60}
for ((i = 0; i < trials; i++)); do
	off=$(( (i * 2654435761 + 12345) % (size - 64) ))
	rm -rf "$T/bad.lmdb"
	cp -r "$T/ml.lmdb" "$T/bad.lmdb"
	corrupt "$T/bad.lmdb" $off
	got=0
	timeout 20 "$BIN/ingest" --dump "$T/bad.lmdb" train 100000 >/dev/null 2>"$T/err" || got=$?
	[ "$got" -eq 65 ] || { cat "$T/err" >&2; fail "trial $i (offset $off): --dump exited $got"; }
	expect_err "'$T/bad.lmdb'"
	got=0
	timeout 20 "$BIN/trainer" -q --data "$T/bad.lmdb" --model ncf --out "$T/run" --epochs 1 \
		--threads 1 >/dev/null 2>"$T/err" || got=$?
	[ "$got" -eq 65 ] || { cat "$T/err" >&2; fail "trial $i (offset $off): trainer exited $got"; }
	rm -rf "$T/run"
done
ok "damaged pages (6 fixed offsets, $trials seeded random trials): every reader exits 65"

# Truncated data.mdb: no SIGBUS.
for keep in 100 4096 8192 $((size / 2)) $((size - 4096)); do
	rm -rf "$T/bad.lmdb"
	cp -r "$T/ml.lmdb" "$T/bad.lmdb"
	truncate -s $keep "$T/bad.lmdb/data.mdb"
	every_tool_refuses "$T/bad.lmdb" "'$T/bad.lmdb'"
	[ $keep -lt 8192 ] || expect_err "data.mdb is truncated"
done
ok "a truncated data.mdb: every reader exits 65 (truncated)"

# FIFOs where store files should be: refused by type, nothing blocks.
for f in data.mdb lock.mdb data.crc; do
	rm -rf "$T/bad.lmdb"
	cp -r "$T/ml.lmdb" "$T/bad.lmdb"
	rm -f "$T/bad.lmdb/$f"
	mkfifo "$T/bad.lmdb/$f"
	every_tool_refuses "$T/bad.lmdb" "'$T/bad.lmdb/$f' is a FIFO, not a regular file"
done
ok "a FIFO as data.mdb, lock.mdb or data.crc: every reader exits 65 at once"

# FIFOs where input files should be, in each input format.
"$BIN/mlgen" -q -o "$T/m100k" --users 30 --items 40 --ratings 1000 --format ml-100k
"$BIN/mlgen" -q -o "$T/csv" --users 30 --items 40 --ratings 1000 --format csv
for f in ml/ratings.dat ml/users.dat ml/movies.dat m100k/u.data m100k/u.item csv/ratings.csv \
	csv/movies.csv; do
	d=$T/in-${f%%/*}
	rm -rf "$d" "$T/in.lmdb"
	cp -r "$T/${f%%/*}" "$d"
	rm "$d/${f#*/}"
	mkfifo "$d/${f#*/}"
	expect_exit 65 timeout 20 "$BIN/ingest" -q -o "$T/in.lmdb" "$d"
	expect_err "'$d/${f#*/}' is a FIFO, not a regular file"
	[ ! -e "$T/in.lmdb" ] || fail "a refused input left '$T/in.lmdb'"
done
ok "a FIFO as an input file (ml-1m, ml-100k, csv): ingest exits 65 at once"

# Permission denied is said as such (exit 77), not "not a hogrec store":
# an unreadable store directory and an unreadable data.mdb, read by an
# unprivileged user (root reads everything).
# (skipped where nobody cannot run the binaries, e.g. a checkout under /root)
chmod 755 "$T"
if command -v setpriv >/dev/null && [ "$(id -u)" -eq 0 ] &&
	setpriv --reuid=65534 --regid=65534 --clear-groups "$BIN/ingest" --help >/dev/null 2>&1; then
	"$BIN/ingest" -q --split user -o "$T/perm.lmdb" "$T/ml"
	for what in dir data.mdb; do
		if [ $what = dir ]; then chmod 700 "$T/perm.lmdb"; else chmod 600 "$T/perm.lmdb/data.mdb"; fi
		for c in "ingest --inspect $T/perm.lmdb" "trainer -q --data $T/perm.lmdb --model ncf --out $T/permrun"; do
			got=0
			# shellcheck disable=SC2086
			timeout 20 setpriv --reuid=65534 --regid=65534 --clear-groups "$BIN"/$c \
				>/dev/null 2>"$T/err" || got=$?
			[ "$got" -eq 77 ] || { cat "$T/err" >&2; fail "unreadable $what: '$c' exited $got, expected 77"; }
			expect_err "Permission denied"
		done
		chmod 755 "$T/perm.lmdb"; chmod 644 "$T/perm.lmdb/data.mdb"
	done
	ok "an unreadable store directory or data.mdb: exit 77, permission denied"
else
	echo "skip: permission tests need root, setpriv and binaries user nobody can run"
fi

# A full disk while ingesting is an I/O error (74), and the store in place
# stays (a 2 MiB tmpfs holds a small store, not a large one).
if mkdir -p "$T/tfs" && mount -t tmpfs -o size=2m tmpfs "$T/tfs" 2>/dev/null; then
	trap 'umount "$T/tfs" 2>/dev/null || true; rm -rf "$T"' EXIT
	"$BIN/mlgen" -q -o "$T/small" --users 30 --items 40 --ratings 1000
	"$BIN/mlgen" -q -o "$T/large" --users 600 --items 800 --ratings 120000 --seed 5
	"$BIN/ingest" -q -o "$T/tfs/s.lmdb" "$T/small"
	keep=$(tree_sum "$T/tfs/s.lmdb")
	expect_exit 74 "$BIN/ingest" -q --force -o "$T/tfs/s.lmdb" "$T/large"
	expect_err "cannot"
	[ "$(tree_sum "$T/tfs/s.lmdb")" = "$keep" ] || fail "a full disk damaged the store in place"
	no_leftovers "$T/tfs"
	umount "$T/tfs"
	trap 'rm -rf "$T"' EXIT
	ok "a full disk while ingesting: exit 74, the store in place kept, nothing left"
else
	echo "skip: the full-disk test needs to mount a tmpfs"
fi
