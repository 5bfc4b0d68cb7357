#!/usr/bin/python3
"""Property tests of the store bin/ingest writes, against docs/FORMAT.md only.

Generates a small ml-1m dataset with bin/mlgen, ingests it, and checks the
store by recomputing everything from the raw ratings.dat in plain python
(written independently of the C code and of bench/ingest_pandas.py):

  meta, key layout and msgpack encoding; split membership, order and the
  global boundary rule; labels; vocabularies fitted on train; record
  encodings; dense features and scaler; hist; neg_hist properties (incl. a
  uniformity check); users/items dbs; a metamorphic leakage check (perturb
  valid/test rows, re-ingest, train-fitted things must not move); --split
  user and loo; bin/ingest --dump / --inspect interop; and a cross-check
  against bench/ingest_pandas.py.

Environment: BIN (default "bin") and BUILD (default "build") locate the
programs.  STORE_PROPS_IMPL=pandas runs the property checks on the store
bench/ingest_pandas.py writes instead (global split only; no C needed).
Prints "ok <check>" per check; exits non-zero on the first failure.
"""
import bisect
import json
import math
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import lmdb
import msgpack

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = "/usr/bin/python3"
IMPL = os.environ.get("STORE_PROPS_IMPL", "c")

RECORD_FIELDS = ["user_raw", "item_raw", "rating", "ts", "label", "user", "item",
                 "gender", "age", "occupation", "zip", "genres", "dense", "hist",
                 "neg_hist"]
USER_FIELDS = ["user_raw", "user", "gender", "age", "occupation", "zip", "dense", "hist"]
ITEM_FIELDS = ["item_raw", "item", "title", "year", "genres", "dense"]
DENSE_FIELDS = ["user_log_count", "user_pos_rate", "item_log_count", "item_pos_rate"]
VOCAB_FIELDS = ["user", "item", "gender", "age", "occupation", "zip", "genre"]
DBS = ["meta", "vocab", "users", "items", "train", "valid", "test"]
SPLITS = ["train", "valid", "test"]
POS_MIN, NEG_MAX = 4.0, 2.0
ZIP_PREFIX = 3
# FORMAT.md read literally: a genre that does not occur in train encodes to
# 0 and stays in the item's "genres" (as an unseen item in "hist" does).
# bin/ingest currently drops it instead; flip this if FORMAT.md says so (and
# the same constant in bench/ingest_pandas.py).
UNKNOWN_GENRE_AS_ZERO = False
TOL = 1e-5
T0 = time.time()


def ok(what):
    print("ok %s (%.1fs)" % (what, time.time() - T0), flush=True)


def note(what):
    print("note: %s" % what, flush=True)


def prog(name):
    b = os.environ.get("BIN", "bin")
    p = os.path.join(b, name)
    if not os.path.isabs(p) and not os.path.exists(p):
        p = os.path.join(ROOT, p)
    return p


def run(cmd, what):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode == 0, "%s failed (exit %d): %s\nstdout: %s\nstderr: %s" % (
        what, r.returncode, " ".join(cmd), r.stdout.decode(errors="replace")[-2000:],
        r.stderr.decode(errors="replace")[-2000:])
    return r.stdout.decode()


# ------------------------------------------------------------------ data
GENRES = ["Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
          "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical",
          "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]


def gen_fallback(d, n_users, n_items, n_ratings, seed):
    """A small ml-1m-format dataset, used only while bin/mlgen is missing.
    Plenty of same-second ties, late users and late items (unseen in train),
    titles with ':' and latin-1 characters."""
    rnd = random.Random(seed)
    os.makedirs(d)
    with open(os.path.join(d, "users.dat"), "w", encoding="latin-1", newline="\n") as f:
        for u in range(1, n_users + 1):
            z = "%05d" % rnd.randrange(100000)
            if rnd.random() < 0.1:
                z += "-%04d" % rnd.randrange(10000)
            f.write("%d::%s::%d::%d::%s\n" % (u, rnd.choice("MF"),
                                               rnd.choice([1, 18, 25, 35, 45, 50, 56]),
                                               rnd.randrange(21), z))
    item_ids = sorted(rnd.sample(range(1, 3 * n_items), n_items))
    with open(os.path.join(d, "movies.dat"), "w", encoding="latin-1", newline="\n") as f:
        for k, i in enumerate(item_ids):
            title = rnd.choice(["Film %d" % k, "Caf\u00e9 %d: Part II" % k,
                                "\"Quoted\" %d, The" % k, "Na\u00efve: %d" % k])
            if rnd.random() < 0.95:
                title += " (%d)" % rnd.randrange(1920, 2001)
            gs = sorted(rnd.sample(GENRES, rnd.choice([1, 1, 2, 3])), key=GENRES.index)
            f.write("%d::%s::%s\n" % (i, title, "|".join(gs)))
    t_start, t_span = 956703932, 90 * 86400
    release = {i: t_start + (int(rnd.random() ** 3 * t_span) if rnd.random() < 0.2 else 0)
               for i in item_ids}
    pop = [rnd.paretovariate(1.2) for _ in item_ids]
    weights = [rnd.lognormvariate(0, 0.6) for _ in range(n_users)]
    tot = sum(weights)
    counts = [max(5, min(n_items * 3 // 4, int(n_ratings * w / tot))) for w in weights]
    lines = []
    for u in range(1, n_users + 1):
        start = t_start + int(rnd.random() * t_span)
        t = start
        chosen = set()
        rows = []
        while len(rows) < counts[u - 1]:
            t += rnd.choice([0, 0, 0, 1, 2, 5, 30, 600, 3600, 86400])
            i = rnd.choices(item_ids, pop)[0]
            if i in chosen:
                continue
            chosen.add(i)
            r = rnd.choices([1, 2, 3, 4, 5], [6, 11, 26, 35, 22])[0]
            rows.append("%d::%d::%d::%d\n" % (u, i, r, max(t, release[i])))
        rnd.shuffle(rows)
        lines += rows
    with open(os.path.join(d, "ratings.dat"), "w", newline="\n") as f:
        f.writelines(lines)


def make_edge_data(d):
    """The built-in generator's data (latin-1 titles, ':' and quotes in
    titles, titles without a year, 9-digit zips, users and items that
    first appear after train) plus one movie with a genre nobody in train
    has, rated only in the last second of the data."""
    gen_fallback(d, 120, 150, 6000, seed=3)
    with open(os.path.join(d, "movies.dat"), "rb") as f:
        new_id = max(int(ln.split(b"::")[0]) for ln in f if ln.strip()) + 1
    with open(os.path.join(d, "ratings.dat"), "rb") as f:
        last = max(int(ln.split(b"::")[3]) for ln in f if ln.strip())
    with open(os.path.join(d, "movies.dat"), "ab") as f:
        f.write(("%d::Nouveaut\u00e9: L'Exp\u00e9rience (2000)::Experimental|Drama\n"
                 % new_id).encode("latin-1"))
    with open(os.path.join(d, "ratings.dat"), "ab") as f:
        for u, r in ((1, 5), (2, 1), (3, 4)):
            f.write(b"%d::%d::%d::%d\n" % (u, new_id, r, last + 1))


def make_data(d, seed=7):
    mlgen = prog("mlgen")
    if IMPL == "c" or os.path.exists(mlgen):
        run([mlgen, "-o", d, "--users", "150", "--items", "200", "--ratings", "12000",
             "--seed", str(seed)], "mlgen")
    else:
        note("bin/mlgen missing: using the built-in generator")
        gen_fallback(d, 150, 200, 12000, seed)


def force_boundary_ties(d):
    """Rewrites ratings.dat so that the labelled rows at the 80 % and 90 %
    positions share their predecessor's timestamp: the boundary rule (ties
    stay on the earlier side) is then always exercised.  Returns how many
    rows changed."""
    path = os.path.join(d, "ratings.dat")
    with open(path, "rb") as f:
        lines = [ln.split(b"::") for ln in f.read().split(b"\n") if ln.strip()]
    kept = sorted((j for j, x in enumerate(lines)
                   if float(x[2]) >= POS_MIN or float(x[2]) <= NEG_MAX),
                  key=lambda j: (int(lines[j][3]), int(lines[j][0]), int(lines[j][1])))
    n = len(kept)
    changed = 0
    for c in (math.floor(0.8 * n), math.floor(0.9 * n)):
        t = lines[kept[c - 1]][3]
        for j in kept[c:c + 2]:   # rows c, c+1 join the second of row c-1
            changed += lines[j][3] != t
            lines[j][3] = t
    with open(path, "wb") as f:
        f.write(b"".join(b"::".join(x) + b"\n" for x in lines))
    return changed


class Raw:
    """ratings.dat, users.dat, movies.dat parsed by plain python."""

    def __init__(self, d):
        self.ratings = []  # (user, item, rating, ts) in file order
        with open(os.path.join(d, "ratings.dat"), "rb") as f:
            for line in f:
                line = line.strip()
                if line:
                    u, i, r, t = line.split(b"::")
                    self.ratings.append((int(u), int(i), float(r), int(t)))
        self.users = {}
        with open(os.path.join(d, "users.dat"), "rb") as f:
            for line in f:
                line = line.strip()
                if line:
                    u, g, a, o, z = line.decode("latin-1").split("::")
                    self.users[int(u)] = (g, int(a), o, z[:ZIP_PREFIX])
        self.movies = {}
        with open(os.path.join(d, "movies.dat"), "rb") as f:
            for line in f:
                line = line.rstrip(b"\r\n")
                if line:
                    i, title, gs = line.decode("latin-1").split("::")
                    m = re.search(r"\((\d{4})\)\s*$", title)
                    self.movies[int(i)] = (title, int(m.group(1)) if m else 0,
                                           gs.split("|") if gs else [])

    def kept(self):
        """Labelled rows (user, item, rating, ts, label), stable-sorted by
        (ts, user, item)."""
        rows = [(u, i, r, t, 1 if r >= POS_MIN else 0)
                for (u, i, r, t) in self.ratings if r >= POS_MIN or r <= NEG_MAX]
        return sorted(rows, key=lambda x: (x[3], x[0], x[1]))


# ------------------------------------------------------------------ store
class Store:
    pass


def load_store(path):
    """Reads and decodes every db; checks the layout (db set, keys)."""
    s = Store()
    s.path = path
    env = lmdb.open(path, readonly=True, lock=False, max_dbs=8, subdir=True)
    s.raw = {}
    with env.begin() as txn:
        names = sorted(k.decode() for k, _ in txn.cursor())
        assert names == sorted(DBS), "%s: named dbs %s, FORMAT.md lists %s" % (path, names, DBS)
        for name in DBS:
            db = env.open_db(name.encode(), txn=txn, create=False)
            s.raw[name] = [(bytes(k), bytes(v)) for k, v in txn.cursor(db=db)]
    env.close()
    assert [k for k, _ in s.raw["meta"]] == [b"meta"], "meta db keys %r" % [
        k for k, _ in s.raw["meta"]]
    s.meta = msgpack.unpackb(s.raw["meta"][0][1], raw=False)
    s.vocab = {k.decode(): msgpack.unpackb(v, raw=False) for k, v in s.raw["vocab"]}
    assert sorted(s.vocab) == sorted(VOCAB_FIELDS), "vocab db keys %s" % sorted(s.vocab)
    s.rec = {}
    for sp in SPLITS:
        keys = [k for k, _ in s.raw[sp]]
        want = [struct.pack(">Q", i) for i in range(len(keys))]
        assert keys == want, "%s keys are not big-endian uint64 0..%d contiguous" % (
            sp, len(keys) - 1)
        s.rec[sp] = [msgpack.unpackb(v, raw=False) for _, v in s.raw[sp]]
    for db, field in (("users", "user"), ("items", "item")):
        n = len(s.vocab[field])
        keys = [k for k, _ in s.raw[db]]
        want = [struct.pack(">Q", i) for i in range(1, n)]
        assert keys == want, "%s keys are not big-endian uint64 1..%d (vocab %s size %d)" % (
            db, n - 1, field, n)
    s.users = [msgpack.unpackb(v, raw=False) for _, v in s.raw["users"]]
    s.items = [msgpack.unpackb(v, raw=False) for _, v in s.raw["items"]]
    return s


def walk_msgpack(b, i=0, path=""):
    """Parses one msgpack object at b[i:]; returns (end offset, problems), a
    problem being (path, what) for a float64 or an integer not in its
    smallest encoding (FORMAT.md: smallest ints, float32 floats)."""
    t = b[i]
    probs = []

    def intsize(v):
        if 0 <= v <= 0x7f or -32 <= v < 0:
            return 1
        for n, lo, hi in ((2, -0x80, 0xff), (3, -0x8000, 0xffff),
                          (5, -0x80000000, 0xffffffff)):
            if lo <= v <= hi:
                return n
        return 9
    if t <= 0x7f or t >= 0xe0 or t in (0xc0, 0xc2, 0xc3):
        return i + 1, probs
    if 0x80 <= t <= 0x8f or t in (0xde, 0xdf):
        n, j = (t & 0x0f, i + 1) if t <= 0x8f else (
            (struct.unpack(">H", b[i + 1:i + 3])[0], i + 3) if t == 0xde else
            (struct.unpack(">I", b[i + 1:i + 5])[0], i + 5))
        for _ in range(n):
            kstart = j
            j, p = walk_msgpack(b, j, path + ".<key>")
            probs += p
            try:
                key = msgpack.unpackb(b[kstart:j], raw=False)
            except Exception:
                key = "?"
            j, p = walk_msgpack(b, j, "%s.%s" % (path, key))
            probs += p
        return j, probs
    if 0x90 <= t <= 0x9f or t in (0xdc, 0xdd):
        n, j = (t & 0x0f, i + 1) if t <= 0x9f else (
            (struct.unpack(">H", b[i + 1:i + 3])[0], i + 3) if t == 0xdc else
            (struct.unpack(">I", b[i + 1:i + 5])[0], i + 5))
        if t == 0xdc and n < 16 or t == 0xdd and n < 0x10000:
            probs.append((path, "array header larger than needed"))
        for k in range(n):
            j, p = walk_msgpack(b, j, "%s[%d]" % (path, k))
            probs += p
        return j, probs
    if 0xa0 <= t <= 0xbf:
        return i + 1 + (t & 0x1f), probs
    if t in (0xd9, 0xc4):
        return i + 2 + b[i + 1], probs
    if t in (0xda, 0xc5):
        return i + 3 + struct.unpack(">H", b[i + 1:i + 3])[0], probs
    if t in (0xdb, 0xc6):
        return i + 5 + struct.unpack(">I", b[i + 1:i + 5])[0], probs
    if t == 0xca:
        return i + 5, probs
    if t == 0xcb:
        return i + 9, [(path, "float64")]
    sizes = {0xcc: (1, ">B"), 0xcd: (2, ">H"), 0xce: (4, ">I"), 0xcf: (8, ">Q"),
             0xd0: (1, ">b"), 0xd1: (2, ">h"), 0xd2: (4, ">i"), 0xd3: (8, ">q")}
    if t in sizes:
        n, fmt = sizes[t]
        v = struct.unpack(fmt, b[i + 1:i + 1 + n])[0]
        if intsize(v) < n + 1:
            probs.append((path, "int %d in %d bytes" % (v, n + 1)))
        return i + 1 + n, probs
    raise AssertionError("%s: unexpected msgpack type byte 0x%02x" % (path, t))


def check_encoding(s, split):
    """FORMAT.md: integers in msgpack's smallest encoding, floats float32."""
    bad = []
    for name in DBS:
        where = {}
        for k, v in s.raw[name]:
            end, probs = walk_msgpack(v)
            if name == "meta":  # FORMAT.md: meta floats are float64
                probs = [(pp, w) for pp, w in probs if w != "float64"]
            assert end == len(v), "%s db %s key %r: %d trailing bytes" % (
                s.path, name, k, len(v) - end)
            for path, what in probs:
                where.setdefault((re.sub(r"\[\d+\]", "[]", path), what), [0, k])[0] += 1
        for (path, what), (n, k) in sorted(where.items()):
            bad.append("%s%s: %s (%d values, first under key %r)" % (name, path, what, n, k))
    assert not bad, "msgpack encoding differs from FORMAT.md (smallest ints, float32 " \
        "floats outside meta):\n  " + "\n  ".join(bad)
    ok("msgpack encoding: smallest ints, float32 floats (float64 in meta) [%s]" % split)


def ingest(data, out, *opts):
    if IMPL == "pandas":
        assert not any(o == "--split" for o in opts), "pandas reference: global split only"
        run([PYTHON, os.path.join(ROOT, "bench", "ingest_pandas.py"), data, out] +
            [o for o in opts if o != "-q"], "bench/ingest_pandas.py")
    else:
        run([prog("ingest"), "-q", "-o", out] + list(opts) + [data], "bin/ingest")
    return load_store(out)


def close(a, b, tol=TOL):
    return abs(a - b) <= tol


# ------------------------------------------------------------------ checks
def check_meta(s, raw, split, hist_len, seed):
    m = s.meta
    assert m.get("format") == "hogrec-store", "meta.format %r" % m.get("format")
    assert m.get("version") == 1, "meta.version %r" % m.get("version")
    assert re.fullmatch(r"[0-9a-f]{16}", str(m.get("schema_hash"))), \
        "meta.schema_hash %r is not 16 hex digits" % m.get("schema_hash")
    # FORMAT.md spells out the hashed bytes: reproduce them.
    h = 0xcbf29ce484222325
    parts = ["hogrec-store/1"] + m["record_fields"] + m["user_fields"] + \
        m["item_fields"] + m["dense_fields"] + \
        ["%s=%d" % (f, m["vocab_sizes"][f]) for f in
         ("user", "item", "gender", "age", "occupation", "zip", "genre")] + \
        ["L=%d" % m["options"]["hist_len"]]
    for part in parts:
        for byte in part.encode() + b"|":
            h = ((h ^ byte) * 0x100000001b3) & 0xffffffffffffffff
    assert m["schema_hash"] == "%016x" % h, "meta.schema_hash %s, FORMAT.md gives %016x" % (
        m["schema_hash"], h)
    assert isinstance(m.get("created_by"), str) and m["created_by"], "meta.created_by"
    assert m["source"]["format"] == "ml-1m", "meta.source %r" % m["source"]
    assert isinstance(m["source"]["dir"], str), "meta.source.dir"
    assert m["has_demographics"] is True, "meta.has_demographics %r" % m["has_demographics"]
    for k, want in (("record_fields", RECORD_FIELDS), ("user_fields", USER_FIELDS),
                    ("item_fields", ITEM_FIELDS), ("dense_fields", DENSE_FIELDS)):
        assert m[k] == want, "meta.%s = %r, FORMAT.md says %r" % (k, m[k], want)
    o = m["options"]
    want = {"label_mode": "explicit", "pos_min": POS_MIN, "neg_max": NEG_MAX,
            "split": split, "valid_frac": 0.1, "test_frac": 0.1, "hist_len": hist_len,
            "seed": seed, "zip_prefix": ZIP_PREFIX, "neg_sampler": "uniform-seen"}
    assert sorted(o) == sorted(want), "meta.options keys %s, FORMAT.md %s" % (
        sorted(o), sorted(want))
    for k, v in want.items():
        if isinstance(v, float):
            assert isinstance(o[k], float) and close(o[k], v, 1e-6), \
                "meta.options.%s = %r, want float %r" % (k, o[k], v)
        else:
            assert o[k] == v and type(o[k]) == type(v), \
                "meta.options.%s = %r, want %r" % (k, o[k], v)
    c = m["counts"]
    assert sorted(c) == sorted(["ratings", "skipped_lines", "dropped", "train", "valid",
                                "test"]), "meta.counts keys %s" % sorted(c)
    n_dropped = sum(1 for r in raw.ratings if NEG_MAX < r[2] < POS_MIN)
    assert c["ratings"] == len(raw.ratings), "counts.ratings %d, ratings.dat has %d" % (
        c["ratings"], len(raw.ratings))
    assert c["skipped_lines"] == 0, "counts.skipped_lines %d" % c["skipped_lines"]
    assert c["dropped"] == n_dropped, "counts.dropped %d, ratings.dat has %d neutral" % (
        c["dropped"], n_dropped)
    for sp in SPLITS:
        assert c[sp] == len(s.rec[sp]), "counts.%s %d but the db holds %d records" % (
            sp, c[sp], len(s.rec[sp]))
    assert sorted(m["vocab_sizes"]) == sorted(VOCAB_FIELDS), "vocab_sizes keys"
    for f in VOCAB_FIELDS:
        assert m["vocab_sizes"][f] == len(s.vocab[f]), "vocab_sizes.%s %d, vocab has %d" % (
            f, m["vocab_sizes"][f], len(s.vocab[f]))
    for sp in SPLITS:
        recs = s.rec[sp]
        rate = sum(r[4] for r in recs) / len(recs) if recs else 0.0
        assert close(m["positive_rate"][sp], rate, 1e-6), "positive_rate.%s %r, records %r" % (
            sp, m["positive_rate"][sp], rate)
    assert sorted(m["scaler"]) == ["max", "min"] and all(
        len(m["scaler"][k]) == 4 for k in ("min", "max")), "scaler %r" % m["scaler"]
    ok("meta [%s]" % split)


def check_membership(s, raw, split):
    kept = raw.kept()
    want = {}
    for (u, i, r, t, lab) in kept:
        want[(u, i, t, r)] = want.get((u, i, t, r), 0) + 1
    got = {}
    labels = {}
    for sp in SPLITS:
        for rec in s.rec[sp]:
            assert len(rec) == len(RECORD_FIELDS), "%s record has %d fields" % (sp, len(rec))
            u, i, r, t, lab = rec[:5]
            k = (u, i, t, r)
            assert k in want, ("%s record (user %d, item %d, ts %d, rating %r) is not a "
                               "kept rating of ratings.dat" % (sp, u, i, t, r))
            got[k] = got.get(k, 0) + 1
            assert lab == (1 if r >= POS_MIN else 0), "%s record %r: label %r" % (sp, k, lab)
            labels[k] = lab
    missing = [k for k in want if got.get(k, 0) < want[k]]
    dup = [k for k in got if got[k] > want[k]]
    assert not missing, "%d kept ratings appear in no split, e.g. %r" % (len(missing),
                                                                       missing[:3])
    assert not dup, "%d ratings appear in more than one split/record, e.g. %r" % (
        len(dup), dup[:3])
    for sp in SPLITS:
        keys = [(r[3], r[0], r[1]) for r in s.rec[sp]]
        bad = [j for j in range(1, len(keys)) if keys[j] < keys[j - 1]]
        assert not bad, "%s not sorted by (ts, user_raw, item_raw) at key %d: %r then %r" % (
            sp, bad[0], keys[bad[0] - 1], keys[bad[0]])
    ok("every kept rating in exactly one split, neutral ones nowhere, labels, order [%s]"
       % split)

    if split == "global":
        n = len(kept)
        ts = [x[3] for x in kept]

        def bound(c):
            while 0 < c < n and ts[c] == ts[c - 1]:
                c += 1
            return c
        c1 = bound(math.floor(0.8 * n))
        c2 = bound(max(c1, math.floor(0.9 * n)))
        for sp, a, b in (("train", 0, c1), ("valid", c1, c2), ("test", c2, n)):
            exp = [(x[0], x[1], x[2], x[3]) for x in kept[a:b]]
            got_sp = [(r[0], r[1], r[2], r[3]) for r in s.rec[sp]]
            assert got_sp == exp, ("%s: %d records, the global boundary rule gives %d "
                                   "(rows %d..%d of %d kept); first difference at %r" % (
                                       sp, len(got_sp), len(exp), a, b, n,
                                       next((j for j, (p, q) in enumerate(zip(got_sp, exp))
                                             if p != q), min(len(got_sp), len(exp)))))
        tr, va, te = (s.rec[sp] for sp in SPLITS)
        if tr and va:
            assert max(r[3] for r in tr) < min(r[3] for r in va), "train/valid overlap in time"
        if va and te:
            assert max(r[3] for r in va) < min(r[3] for r in te), "valid/test overlap in time"
        sm = s.meta["split"]
        assert tr and sm["train_end_ts"] == tr[-1][3], "split.train_end_ts %r, max train ts %r" % (
            sm["train_end_ts"], tr[-1][3])
        if va:
            assert sm["valid_end_ts"] == va[-1][3], "split.valid_end_ts %r, max valid ts %r" % (
                sm["valid_end_ts"], va[-1][3])
        else:
            note("valid split empty; meta.split.valid_end_ts = %r" % sm["valid_end_ts"])
        ok("global split: boundaries c1=%d c2=%d n=%d, ties on the earlier side, meta.split"
           % (c1, c2, n))
    else:
        per = {}
        for j, sp in enumerate(SPLITS):
            for r in s.rec[sp]:
                per.setdefault(r[0], [[], [], []])[j].append(r[3])
        ties = 0
        for u, (a, b, c) in per.items():
            if a and b:
                assert max(a) <= min(b), "user %d: a valid event (ts %d) precedes a train " \
                    "event (ts %d)" % (u, min(b), max(a))
                ties += max(a) == min(b)
            if a and c:
                assert max(a) <= min(c), "user %d: a test event (ts %d) precedes a train " \
                    "event (ts %d)" % (u, min(c), max(a))
                ties += max(a) == min(c)
            if b and c:
                assert max(b) <= min(c), "user %d: a test event (ts %d) precedes a valid " \
                    "event (ts %d)" % (u, min(c), max(b))
                ties += max(b) == min(c)
            if split == "loo":
                assert len(b) <= 1 and len(c) <= 1, "loo: user %d has %d valid, %d test" % (
                    u, len(b), len(c))
            if split == "user":  # FORMAT.md: a user's second is never cut
                assert not (a and b and max(a) == min(b)), \
                    "user %d: train and valid events share second %d" % (u, min(b))
                assert not (b and c and max(b) == min(c)), \
                    "user %d: valid and test events share second %d" % (u, min(c))
        if ties:
            note("--split %s: %d users have events of the same second on both sides of "
                 "their split boundary (allowed for loo by FORMAT.md)" % (split, ties))
        sm = s.meta["split"]
        tr_max = max((r[3] for r in s.rec["train"]), default=None)
        va_max = max((r[3] for r in s.rec["valid"]), default=None)
        assert sm["train_end_ts"] == tr_max, "split.train_end_ts %r, largest train ts %r" % (
            sm["train_end_ts"], tr_max)
        if va_max is not None:
            assert sm["valid_end_ts"] == va_max, "split.valid_end_ts %r, largest valid ts %r" % (
                sm["valid_end_ts"], va_max)
        ok("%s split: per-user order train <= valid <= test%s, meta.split" % (
            split, ", <= 1 valid and test per user" if split == "loo" else ""))


class Model:
    """Everything FORMAT.md defines, recomputed from raw data and the split
    membership read from the store."""

    def __init__(self, s, raw, hist_len):
        self.L = hist_len
        train = [tuple(r[:5]) for r in s.rec["train"]]
        self.train = train
        users_tr = sorted(set(r[0] for r in train))
        items_tr = sorted(set(r[1] for r in train))
        ua = [raw.users[u] for u in users_tr if u in raw.users]
        v = {"user": [None] + users_tr, "item": [None] + items_tr,
             "gender": [None] + sorted(set(a[0] for a in ua)),
             "age": [None] + sorted(set(a[1] for a in ua)),
             "occupation": [None] + sorted(set(a[2] for a in ua),
                                           key=lambda x: x.encode("utf-8")),
             "zip": [None] + sorted(set(a[3] for a in ua), key=lambda x: x.encode("utf-8")),
             "genre": [None] + sorted(set(g for i in items_tr if i in raw.movies
                                          for g in raw.movies[i][2]),
                                      key=lambda x: x.encode("utf-8"))}
        self.vocab = v
        self.id = {f: {x: j for j, x in enumerate(v[f]) if j} for f in VOCAB_FIELDS}

        # train events per user / item, time-sorted: (ts, label)
        self.u_tr, self.i_tr = {}, {}
        for (u, i, r, t, lab) in train:
            self.u_tr.setdefault(u, []).append((t, lab))
            self.i_tr.setdefault(i, []).append((t, lab))
        self.u_tr_ts = {u: [t for t, _ in ev] for u, ev in self.u_tr.items()}
        self.i_tr_ts = {i: [t for t, _ in ev] for i, ev in self.i_tr.items()}
        self.u_tr_cum = {u: cum(ev) for u, ev in self.u_tr.items()}
        self.i_tr_cum = {i: cum(ev) for i, ev in self.i_tr.items()}
        self.first_train = {}
        for (u, i, r, t, lab) in train:
            self.first_train.setdefault(i, t)
        # positives of each user, any split, in (ts, item) order
        self.pos = {}
        for (u, i, r, t, lab) in raw.kept():
            if lab == 1:
                self.pos.setdefault(u, []).append((t, i))
        self.pos_ts = {u: [t for t, _ in p] for u, p in self.pos.items()}
        # earliest rating (any, incl. neutral) of each (user, item)
        self.first_rated = {}
        for (u, i, r, t) in raw.ratings:
            k = (u, i)
            if t < self.first_rated.get(k, 1 << 62):
                self.first_rated[k] = t
        self.rated_by = {}
        for (u, i), t in self.first_rated.items():
            self.rated_by.setdefault(u, []).append((t, i))
        self.items_by_first = sorted((t, i) for i, t in self.first_train.items())
        self.raw = raw

    def enc(self, f, x):
        return self.id[f].get(x, 0)

    def genres(self, names):
        ids = [self.enc("genre", g) for g in names]
        return sorted(x for x in ids if x or UNKNOWN_GENRE_AS_ZERO)

    def raw_dense(self, u, i, ts):
        cu, pu = before(self.u_tr_ts.get(u), self.u_tr_cum.get(u), ts)
        ci, pi = before(self.i_tr_ts.get(i), self.i_tr_cum.get(i), ts)
        return [math.log1p(cu), (pu + 1) / (cu + 2), math.log1p(ci), (pi + 1) / (ci + 2)]

    def hist(self, u, ts):
        p = self.pos.get(u, [])
        k = bisect.bisect_left(self.pos_ts.get(u, []), ts)
        return [self.enc("item", i) for (_, i) in p[max(0, k - self.L):k]]

    def neg_candidates(self, u, i, ts):
        """Raw item ids allowed in this record's neg_hist."""
        k = bisect.bisect_left(self.items_by_first, (ts, -1))
        excl = set(x for (t, x) in self.rated_by.get(u, []) if t < ts)
        excl.add(i)
        return [x for (_, x) in self.items_by_first[:k] if x not in excl]


def cum(ev):
    c = [(0, 0)]
    for _, lab in ev:
        c.append((c[-1][0] + 1, c[-1][1] + lab))
    return c


def before(ts_list, cums, ts):
    if not ts_list:
        return 0, 0
    return cums[bisect.bisect_left(ts_list, ts)]


def scale(x, lo, hi):
    if hi <= lo:
        return 0.0
    return min(1.0, max(0.0, (x - lo) / (hi - lo)))


def check_vocab_and_encoding(s, mo, split):
    for f in VOCAB_FIELDS:
        assert s.vocab[f] == mo.vocab[f], ("vocab %s differs from the one fitted on train "
                                           "rows:\n store %r\n want  %r" % (
                                               f, s.vocab[f][:30], mo.vocab[f][:30]))
    ok("vocabularies = values of train rows, sorted, [nil] first [%s]" % split)
    raw = mo.raw
    unseen_u = unseen_i = unseen_genre = 0
    for sp in SPLITS:
        for rec in s.rec[sp]:
            d = dict(zip(RECORD_FIELDS, rec))
            u, i = d["user_raw"], d["item_raw"]
            ua = raw.users.get(u, (None, None, None, None))
            mv = raw.movies.get(i, ("", 0, []))
            want = {"user": mo.enc("user", u), "item": mo.enc("item", i),
                    "gender": mo.enc("gender", ua[0]), "age": mo.enc("age", ua[1]),
                    "occupation": mo.enc("occupation", ua[2]), "zip": mo.enc("zip", ua[3]),
                    "genres": mo.genres(mv[2])}
            for f, w in want.items():
                assert d[f] == w, "%s record (user %d, item %d, ts %d): %s = %r, want %r" % (
                    sp, u, i, d["ts"], f, d[f], w)
            unseen_u += want["user"] == 0
            unseen_i += want["item"] == 0
            unseen_genre += any(mo.enc("genre", g) == 0 for g in mv[2])
            if sp == "train":
                assert want["user"] and want["item"], "train record encodes to 0"
    if unseen_u + unseen_i:
        note("[%s] valid/test records with a user unseen in train: %d, item unseen: %d "
             "(encode to 0; their demographics are encoded by value)" % (
                 split, unseen_u, unseen_i))
    if unseen_genre:
        note("[%s] %d records carry a genre unseen in train (checked as %s: "
             "UNKNOWN_GENRE_AS_ZERO = %s, as FORMAT.md says)" % (
                 split, unseen_genre, "id 0 kept" if UNKNOWN_GENRE_AS_ZERO else "dropped",
                 UNKNOWN_GENRE_AS_ZERO))
    ok("record encodings (user/item/demographics/genres), unseen -> 0 [%s]" % split)


def check_dense(s, mo, split):
    raws = {sp: [mo.raw_dense(r[0], r[1], r[3]) for r in s.rec[sp]] for sp in SPLITS}
    tr = raws["train"]
    lo = [min(x[j] for x in tr) for j in range(4)]
    hi = [max(x[j] for x in tr) for j in range(4)]
    sc = s.meta["scaler"]
    for j in range(4):
        assert close(sc["min"][j], lo[j]) and close(sc["max"][j], hi[j]), (
            "scaler %s: store [%r, %r], recomputed from train records [%r, %r]" % (
                DENSE_FIELDS[j], sc["min"][j], sc["max"][j], lo[j], hi[j]))
    worst = 0.0
    for sp in SPLITS:
        for rec, x in zip(s.rec[sp], raws[sp]):
            dense = rec[12]
            assert len(dense) == 4, "%s dense has %d values" % (sp, len(dense))
            for j in range(4):
                w = scale(x[j], lo[j], hi[j])
                assert 0.0 <= dense[j] <= 1.0, "%s record %r: dense %s = %r outside [0,1]" % (
                    sp, rec[:4], DENSE_FIELDS[j], dense[j])
                assert close(dense[j], w), (
                    "%s record (user %d, item %d, ts %d): dense %s = %r, recomputed %r "
                    "(raw %r, scaler [%r, %r])" % (sp, rec[0], rec[1], rec[3],
                                                    DENSE_FIELDS[j], dense[j], w, x[j],
                                                    lo[j], hi[j]))
                worst = max(worst, abs(dense[j] - w))
    ok("dense features from train events strictly before ts, scaler over train, "
       "max err %.2g [%s]" % (worst, split))
    return lo, hi


def check_hist(s, mo, split):
    n = 0
    for sp in SPLITS:
        for rec in s.rec[sp]:
            u, i, ts, hist = rec[0], rec[1], rec[3], rec[13]
            want = mo.hist(u, ts)
            assert hist == want, ("%s record (user %d, item %d, ts %d): hist %r, want the "
                                  "last %d positives strictly before ts %r" % (
                                      sp, u, i, ts, hist, mo.L, want))
            n += len(hist)
    assert n > 0, "every hist is empty"
    ok("hist = last L positives strictly before ts, oldest first (%d ids) [%s]" % (n, split))


def check_neg(s, mo, split):
    item_vocab = mo.vocab["item"]
    # a uniform draw has a uniform rank among the candidates under any fixed
    # order: check three (id, first train event, train popularity)
    orders = {"id": lambda x: x, "first-train-ts": lambda x: (mo.first_train[x], x),
              "popularity": lambda x: (len(mo.i_tr[x]), x)}
    pos_sum = dict.fromkeys(orders, 0.0)
    pos_n = 0
    sorted_lists = long_lists = short = 0
    for sp in SPLITS:
        for rec in s.rec[sp]:
            u, i, ts, hist, neg = rec[0], rec[1], rec[3], rec[13], rec[14]
            where = "%s record (user %d, item %d, ts %d)" % (sp, u, i, ts)
            assert all(isinstance(x, int) and 0 < x < len(item_vocab) for x in neg), \
                "%s: neg_hist %r has ids outside 1..%d" % (where, neg, len(item_vocab) - 1)
            assert len(set(neg)) == len(neg), "%s: neg_hist %r repeats ids" % (where, neg)
            cand = mo.neg_candidates(u, i, ts)
            cset = set(cand)
            for x in neg:
                rx = item_vocab[x]
                assert rx != i, "%s: neg_hist contains the record's own item" % where
                fr = mo.first_rated.get((u, rx))
                assert fr is None or fr >= ts, ("%s: neg_hist item %d was rated by the user "
                                                "at ts %d, before the record" % (where, rx, fr))
                ft = mo.first_train.get(rx)
                assert ft is not None and ft < ts, ("%s: neg_hist item %d first appears in "
                                                    "train at ts %r, not strictly before" % (
                                                        where, rx, ft))
                assert rx in cset, "%s: neg_hist item %d not a candidate" % (where, rx)
            want_len = min(len(hist), len(cand))
            assert len(neg) == want_len, ("%s: len(neg_hist) %d, len(hist) %d, %d candidates"
                                          % (where, len(neg), len(hist), len(cand)))
            short += len(cand) < len(hist)
            # uniformity: the rank of a draw among the candidates is uniform
            if len(cand) > len(neg) and neg:
                for name, key in orders.items():
                    rank = {x: j for j, x in enumerate(sorted(cand, key=key))}
                    pos_sum[name] += sum((rank[item_vocab[x]] + 0.5) / len(cand)
                                         for x in neg)
                pos_n += len(neg)
            if len(neg) >= 4:
                long_lists += 1
                sorted_lists += neg == sorted(neg)
    for name in orders:
        mean = pos_sum[name] / pos_n if pos_n else 0.5
        assert abs(mean - 0.5) < 0.02, (
            "neg_hist draws are not uniform over the candidates: mean normalised rank "
            "by %s %.3f over %d draws (uniform gives 0.5)" % (name, mean, pos_n))
    mean = ", ".join("%s %.3f" % (k, v / max(1, pos_n)) for k, v in pos_sum.items())
    assert long_lists == 0 or sorted_lists < 0.2 * long_lists, (
        "%d of %d neg_hist lists are in ascending order: not a random order" % (
            sorted_lists, long_lists))
    ok("neg_hist: distinct, in train vocab, seen in train before ts, never rated before ts, "
       "not own item, len = min(len(hist), #candidates) (%d short), uniform (rank means %s)"
       " [%s]" % (short, mean, split))


def check_users_items(s, mo, lo, hi, split):
    raw = mo.raw
    v = mo.vocab
    for j, row in enumerate(s.users, 1):
        assert len(row) == len(USER_FIELDS), "users[%d] has %d fields" % (j, len(row))
        d = dict(zip(USER_FIELDS, row))
        u = v["user"][j]
        ua = raw.users.get(u, (None, None, None, None))
        ev = mo.u_tr[u]
        c, p = len(ev), sum(lab for _, lab in ev)
        pos_tr = [(t, i) for (uu, i, r, t, lab) in mo.train if uu == u and lab == 1]
        want = {"user_raw": u, "user": j, "gender": mo.enc("gender", ua[0]),
                "age": mo.enc("age", ua[1]), "occupation": mo.enc("occupation", ua[2]),
                "zip": mo.enc("zip", ua[3]),
                "hist": [mo.enc("item", i) for _, i in pos_tr[max(0, len(pos_tr) - mo.L):]]
                if mo.L else []}
        for f, w in want.items():
            assert d[f] == w, "users[%d] (user %d): %s = %r, want %r" % (j, u, f, d[f], w)
        wd = [scale(math.log1p(c), lo[0], hi[0]), scale((p + 1) / (c + 2), lo[1], hi[1])]
        assert len(d["dense"]) == 2 and all(close(a, b) for a, b in zip(d["dense"], wd)), \
            "users[%d] (user %d): dense %r, want %r (all %d train events)" % (
                j, u, d["dense"], wd, c)
    for j, row in enumerate(s.items, 1):
        assert len(row) == len(ITEM_FIELDS), "items[%d] has %d fields" % (j, len(row))
        d = dict(zip(ITEM_FIELDS, row))
        i = v["item"][j]
        title, year, gs = raw.movies.get(i, ("", 0, []))
        ev = mo.i_tr[i]
        c, p = len(ev), sum(lab for _, lab in ev)
        want = {"item_raw": i, "item": j, "title": title, "year": year,
                "genres": mo.genres(gs)}
        for f, w in want.items():
            assert d[f] == w, "items[%d] (item %d): %s = %r, want %r" % (j, i, f, d[f], w)
        wd = [scale(math.log1p(c), lo[2], hi[2]), scale((p + 1) / (c + 2), lo[3], hi[3])]
        assert len(d["dense"]) == 2 and all(close(a, b) for a, b in zip(d["dense"], wd)), \
            "items[%d] (item %d): dense %r, want %r" % (j, i, d["dense"], wd)
    ok("users db (%d) and items db (%d): features as of the end of train [%s]" % (
        len(s.users), len(s.items), split))


FAILED = []


def check(fn, *args):
    """Runs one check; a failed assertion is printed and remembered, and the
    next checks still run.  Returns fn's result, None on failure."""
    try:
        return fn(*args)
    except AssertionError as e:
        print("FAIL %s: %s" % (fn.__name__, e), flush=True)
        FAILED.append(fn.__name__)
        return None


def check_all(s, raw, split, hist_len, seed):
    check(check_encoding, s, split)
    check(check_meta, s, raw, split, hist_len, seed)
    check(check_membership, s, raw, split)
    mo = Model(s, raw, hist_len)
    check(check_vocab_and_encoding, s, mo, split)
    lohi = check(check_dense, s, mo, split)
    check(check_hist, s, mo, split)
    check(check_neg, s, mo, split)
    if lohi:
        check(check_users_items, s, mo, lohi[0], lohi[1], split)


# ------------------------------------------------------------------ metamorphic
def perturb(src, dst, train_end_ts, seed):
    """Copies the dataset; rows after train_end_ts (valid/test) get r -> 6-r,
    some are dropped.  As many neutral rows become labelled as labelled rows
    are dropped, so the number of kept rows -- and thus the 80 % boundary --
    stays the same.  Returns the (user, item, ts) keys of rows left as they
    were apart from the rating."""
    rnd = random.Random(seed)
    os.makedirs(dst)
    for f in ("users.dat", "movies.dat"):
        shutil.copy(os.path.join(src, f), os.path.join(dst, f))
    with open(os.path.join(src, "ratings.dat"), "rb") as f:
        lines = [ln for ln in f.read().split(b"\n") if ln.strip()]
    late = [j for j, ln in enumerate(lines) if int(ln.split(b"::")[3]) > train_end_ts]
    late_kept = [j for j in late if int(ln_r(lines[j])) != 3]
    late_neutral = [j for j in late if int(ln_r(lines[j])) == 3]
    late = set(late)
    n_drop = min(len(late_kept) // 8, len(late_neutral) // 2)
    assert n_drop >= 10, "too few valid/test rows to perturb (%d kept, %d neutral)" % (
        len(late_kept), len(late_neutral))
    drop = set(rnd.sample(late_kept, n_drop))
    neutral = rnd.sample(late_neutral, len(late_neutral))
    promote = set(neutral[:n_drop])           # 3 -> 4 or 2: new labelled rows
    drop |= set(neutral[n_drop:n_drop + len(neutral) // 4])   # and drop some 3s
    out, same = [], set()
    for j, ln in enumerate(lines):
        if j in drop:
            continue
        u, i, r, t = ln.split(b"::")
        if j in promote:
            r = rnd.choice([b"4", b"2"])
        elif j in late:
            r = str(6 - int(r)).encode()
            same.add((int(u), int(i), int(t)))
        out.append(b"::".join([u, i, r, t]))
    with open(os.path.join(dst, "ratings.dat"), "wb") as f:
        f.write(b"\n".join(out) + b"\n")
    return same, len(drop), len(promote)


def ln_r(line):
    return line.split(b"::")[2]


def check_metamorphic(t, data, s, hist_len, seed):
    tend = s.meta["split"]["train_end_ts"]
    pert = os.path.join(t, "ml-pert")
    same, n_drop, n_prom = perturb(data, pert, tend, seed=11)
    s2 = ingest(pert, os.path.join(t, "pert.lmdb"), "--hist-len", str(hist_len),
                "--seed", str(seed))
    assert s2.meta["split"]["train_end_ts"] == tend, (
        "train_end_ts moved from %d to %d: the perturbation should keep the boundary "
        "(test bug?)" % (tend, s2.meta["split"]["train_end_ts"]))
    assert s2.raw["vocab"] == s.raw["vocab"], "vocab db changed when only valid/test rows changed"
    assert s2.meta["vocab_sizes"] == s.meta["vocab_sizes"], "vocab_sizes changed"
    assert s2.meta["scaler"] == s.meta["scaler"], "scaler changed: %r -> %r" % (
        s.meta["scaler"], s2.meta["scaler"])
    assert s2.raw["train"] == s.raw["train"], (
        "train db is not byte-identical after perturbing only valid/test rows (%d vs %d "
        "records; first differing key %r)" % (
            len(s.raw["train"]), len(s2.raw["train"]),
            next((k for (k, v), (k2, v2) in zip(s.raw["train"], s2.raw["train"])
                  if v != v2 or k != k2), None)))
    assert s2.raw["users"] == s.raw["users"], "users db changed (it is fitted on train only)"
    assert s2.raw["items"] == s.raw["items"], "items db changed (it is fitted on train only)"
    old = {}
    for sp in ("valid", "test"):
        for r in s.rec[sp]:
            old[(r[0], r[1], r[3])] = r
    n = 0
    for sp in ("valid", "test"):
        for r in s2.rec[sp]:
            k = (r[0], r[1], r[3])
            if k in same and k in old:
                assert r[12] == old[k][12], ("%s record %r: dense changed from %r to %r when "
                                             "only valid/test ratings changed" % (
                                                 sp, k, old[k][12], r[12]))
                assert r[4] == 1 - old[k][4], "record %r: label did not flip with r -> 6-r" % (
                    k,)
                for f in (5, 6, 7, 8, 9, 10, 11):
                    assert r[f] == old[k][f], "record %r: %s changed" % (k, RECORD_FIELDS[f])
                n += 1
    assert n > 100, "only %d valid/test records to compare (test bug?)" % n
    ok("metamorphic: %d valid/test rows flipped, %d dropped, %d neutral->labelled: vocab, "
       "scaler, train/users/items dbs byte-identical, dense of %d remaining records unchanged"
       % (len(same), n_drop, n_prom, n))
    return s2


def check_seed(t, data, s, hist_len, seed):
    """Same input and seed: the same bytes.  Another seed: only neg_hist moves."""
    a = ingest(data, tempfile.mkdtemp(dir=t) + "/again.lmdb", "--hist-len", str(hist_len),
               "--seed", str(seed))
    for name in DBS[1:]:
        assert a.raw[name] == s.raw[name], "%s db differs between two runs with seed %d" % (
            name, seed)
    m1, m2 = dict(s.meta), dict(a.meta)
    for m in (m1, m2):
        m.pop("source")
    assert m1 == m2, "meta differs between two runs with the same input and seed"
    b = ingest(data, tempfile.mkdtemp(dir=t) + "/seed.lmdb", "--hist-len", str(hist_len),
               "--seed", str(seed + 1000))
    moved = total = 0
    for sp in SPLITS:
        for r1, r2 in zip(s.rec[sp], b.rec[sp]):
            assert r1[:14] == r2[:14], "%s record %r: fields other than neg_hist depend on " \
                "the seed" % (sp, r1[:4])
            assert len(r1[14]) == len(r2[14]), \
                "%s record %r: len(neg_hist) depends on the seed" % (sp, r1[:4])
            if len(r1[14]) > 1:
                total += 1
                moved += r1[14] != r2[14]
    assert moved > 0.5 * total, "--seed %d and %d draw the same neg_hist in %d of %d " \
        "records" % (seed, seed + 1000, total - moved, total)
    ok("same seed: identical store; another seed: only neg_hist differs (%d of %d lists)"
       % (moved, total))


# ------------------------------------------------------------------ interop
def same_value(a, b, tol):
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b and type(a) == type(b)
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and \
            abs(a - b) <= tol * max(1.0, abs(a), abs(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return sorted(a) == sorted(b) and all(same_value(a[k], b[k], tol) for k in a)
    return a == b and type(a) == type(b)


def check_seal(s):
    """FORMAT.md, "The seal": data.crc is the crc32 and size of data.mdb."""
    import zlib
    with open(os.path.join(s.path, "data.mdb"), "rb") as f:
        d = f.read()
    with open(os.path.join(s.path, "data.crc"), "rb") as f:
        seal = f.read()
    want = b"hogrec-crc32 %08x %d\n" % (zlib.crc32(d), len(d))
    assert seal == want, "data.crc is %r, FORMAT.md makes it %r" % (seal, want)
    ok("data.crc seals data.mdb (crc32 %08x, %d bytes)" % (zlib.crc32(d), len(d)))


def check_dump_inspect(s):
    n = 40
    for sp in SPLITS:
        out = run([prog("ingest"), "--dump", s.path, sp, str(n)], "ingest --dump")
        lines = [ln for ln in out.split("\n") if ln.strip()]
        want = s.rec[sp][:n]
        assert len(lines) == len(want), "--dump %s %d printed %d lines, want %d" % (
            sp, n, len(lines), len(want))
        for j, (ln, rec) in enumerate(zip(lines, want)):
            obj = json.loads(ln)
            exp = dict(zip(RECORD_FIELDS, rec))
            assert list(obj) == RECORD_FIELDS, "--dump %s line %d keys %r" % (sp, j, list(obj))
            for f in RECORD_FIELDS:
                a, b = obj[f], exp[f]
                if f == "rating":  # an integral float may print as 4 or 4.0
                    good = isinstance(a, (int, float)) and abs(a - b) <= 1e-6
                elif f == "dense":
                    good = len(a) == len(b) and all(abs(x - y) <= 1e-6 for x, y in zip(a, b))
                else:
                    good = a == b and type(a) == type(b)
                assert good, "--dump %s record %d: %s = %r, python decodes %r" % (
                    sp, j, f, a, b)
    ok("ingest --dump agrees with the python decoding (%d records per split)" % n)
    out = run([prog("ingest"), "--inspect", s.path, "--json"], "ingest --inspect --json")
    obj = json.loads(out)
    assert obj.get("counts") == s.meta["counts"], "--inspect counts %r, meta %r" % (
        obj.get("counts"), s.meta["counts"])
    for k in s.meta:
        assert k in obj, "--inspect --json lacks meta key %r" % k
        assert same_value(obj[k], s.meta[k], 1e-6), "--inspect %s = %r, meta has %r" % (
            k, obj[k], s.meta[k])
    ok("ingest --inspect --json = the meta map")


def check_pandas(t, data, s, hist_len, seed):
    p = ingest_pandas(data, tempfile.mkdtemp(dir=t) + "/pandas.lmdb", hist_len, seed)
    assert p.raw["vocab"] == s.raw["vocab"], "vocab differs between C and pandas: " + ", ".join(
        f for f in VOCAB_FIELDS if p.vocab[f] != s.vocab[f])
    for k in ("counts", "split", "vocab_sizes", "record_fields", "user_fields", "item_fields",
              "dense_fields", "has_demographics"):
        assert p.meta[k] == s.meta[k], "meta.%s: C %r, pandas %r" % (k, s.meta[k], p.meta[k])
    for k in ("scaler", "positive_rate", "options"):
        assert same_value(p.meta[k], s.meta[k], TOL), "meta.%s: C %r, pandas %r" % (
            k, s.meta[k], p.meta[k])
    for sp in SPLITS:
        assert len(p.rec[sp]) == len(s.rec[sp]), "%s: C %d records, pandas %d" % (
            sp, len(s.rec[sp]), len(p.rec[sp]))
        for j, (a, b) in enumerate(zip(s.rec[sp], p.rec[sp])):
            for f, x, y in zip(RECORD_FIELDS, a, b):
                if f == "neg_hist":
                    assert len(x) == len(y), "%s[%d] len(neg_hist): C %d, pandas %d" % (
                        sp, j, len(x), len(y))
                else:
                    assert same_value(x, y, TOL), "%s[%d] (user %d, item %d, ts %d) %s: " \
                        "C %r, pandas %r" % (sp, j, a[0], a[1], a[3], f, x, y)
    for db, rows_c, rows_p, fields in (("users", s.users, p.users, USER_FIELDS),
                                       ("items", s.items, p.items, ITEM_FIELDS)):
        assert len(rows_c) == len(rows_p), "%s: C %d, pandas %d" % (db, len(rows_c),
                                                                     len(rows_p))
        for j, (a, b) in enumerate(zip(rows_c, rows_p), 1):
            for f, x, y in zip(fields, a, b):
                assert same_value(x, y, TOL), "%s[%d] %s: C %r, pandas %r" % (db, j, f, x, y)
    ok("bench/ingest_pandas.py writes the same store (all but neg_hist draws)")


def ingest_pandas(data, out, hist_len, seed):
    run([PYTHON, os.path.join(ROOT, "bench", "ingest_pandas.py"), data, out,
         "--hist-len", str(hist_len), "--seed", str(seed)], "bench/ingest_pandas.py")
    return load_store(out)


# ------------------------------------------------------------------ main
def main():
    t = tempfile.mkdtemp(prefix="store_props.")
    try:
        data = os.path.join(t, "ml")
        make_data(data)
        note("moved %d rows onto the split boundary seconds" % force_boundary_ties(data))
        raw = Raw(data)
        assert os.path.exists(os.path.join(data, "ratings.dat")), "no ratings.dat"
        ok("dataset: %d ratings, %d users, %d movies" % (len(raw.ratings), len(raw.users),
                                                         len(raw.movies)))
        hist_len, seed = 50, 1  # the defaults (bin/ingest --help)
        s = ingest(data, os.path.join(t, "ml.lmdb"))
        check_all(s, raw, "global", hist_len, seed)
        check(check_metamorphic, t, data, s, hist_len, seed)
        check(check_seed, t, data, s, hist_len, seed)
        if IMPL != "pandas":
            check(check_dump_inspect, s)
            check(check_seal, s)
            check(check_pandas, t, data, s, hist_len, seed)

        edge = os.path.join(t, "edge")
        make_edge_data(edge)
        raw_e = Raw(edge)
        ok("edge dataset: %d ratings, %d users, %d movies" % (
            len(raw_e.ratings), len(raw_e.users), len(raw_e.movies)))
        se = ingest(edge, os.path.join(t, "edge.lmdb"), "--hist-len", "10", "--seed", "3")
        check_all(se, raw_e, "global", 10, 3)

        if IMPL == "pandas":
            note("STORE_PROPS_IMPL=pandas: skipping --split user/loo, --dump/--inspect and "
                 "the C-vs-pandas cross-check")
        else:
            check(check_pandas, t, edge, se, 10, 3)
            for split, L, sd in (("user", 20, 5), ("loo", 8, 6)):
                su = ingest(data, os.path.join(t, "ml-%s.lmdb" % split), "--split", split,
                            "--hist-len", str(L), "--seed", str(sd))
                check_all(su, raw, split, L, sd)
    finally:
        shutil.rmtree(t, ignore_errors=True)
    if FAILED:
        print("store_props: %d checks failed: %s (%.1fs)" % (len(FAILED), " ".join(FAILED),
                                                             time.time() - T0))
        return 1
    print("store_props: all checks passed (%.1fs)" % (time.time() - T0))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:  # setup steps (generate, ingest, load) are fatal
        print("FAIL: %s" % e, flush=True)
        sys.exit(1)
