#!/usr/bin/python3
"""Side-by-side pandas/numpy reference for bin/ingest (global split, ml-1m).

    bench/ingest_pandas.py IN_DIR OUT_STORE [--hist-len 50] [--seed 42]
                           [--zip-prefix 3] [--no-write]

Reads an ml-1m format directory (ratings.dat, users.dat, movies.dat; "::"
separated, latin-1) and writes the hogrec store described in docs/FORMAT.md
(LMDB env directory with meta, vocab, users, items, train, valid, test) using
python3-lmdb and python3-msgpack.  It is written the way a practitioner
would write it: vectorised pandas/numpy where pandas allows, groupby +
cumcount/cumsum for the strictly-earlier statistics, and one python loop
per user (numpy slicing inside) for the history and negative-history
sequences.  Only Debian's python3-pandas/numpy/lmdb/msgpack are used.

It produces the same records as the C ingest except for the neg_hist draws
(numpy's RNG, not hogrec's) and float rounding.  Supported subset: explicit
labels (pos_min 4, neg_max 2), the global temporal split 80/10/10.

At the end one JSON line goes to stdout:
  {"impl":"pandas","rows":N,"records":M,"seconds_total":..,
   "seconds":{"parse":..,"label":..,"sort":..,"split":..,"encode":..,
              "dense":..,"seq":..,"write":..}}

Parsing choice: pd.read_csv(sep="::", engine="python") is what tutorials
show, but the python engine runs ~10x slower.  ratings.dat and users.dat
contain no single ':' inside fields, so they are read with the C engine and
sep=":" -- every "::" then yields an empty column in between, which usecols
drops.  movies.dat titles do contain ':' ("Star Wars: Episode IV ..."), and
the file is small (~4k lines), so it is split line by line with
str.split("::", 2).
"""
import argparse
import gc
import json
import math
import os
import re
import shutil
import struct
import sys
import time
import zlib

import lmdb
import msgpack
import numpy as np
import pandas as pd

RECORD_FIELDS = ["user_raw", "item_raw", "rating", "ts", "label", "user", "item",
                 "gender", "age", "occupation", "zip", "genres", "dense", "hist",
                 "neg_hist"]
USER_FIELDS = ["user_raw", "user", "gender", "age", "occupation", "zip", "dense", "hist"]
ITEM_FIELDS = ["item_raw", "item", "title", "year", "genres", "dense"]
DENSE_FIELDS = ["user_log_count", "user_pos_rate", "item_log_count", "item_pos_rate"]
VOCAB_FIELDS = ["user", "item", "gender", "age", "occupation", "zip", "genre"]

POS_MIN = 4.0
NEG_MAX = 2.0
VALID_FRAC = 0.1
TEST_FRAC = 0.1
YEAR_RE = re.compile(r"\((\d{4})\)\s*$")
# FORMAT.md read literally: a genre absent from train encodes to 0 and stays
# in "genres".  (bin/ingest currently drops it; keep in step with
# tests/integration/store_props.py.)
UNKNOWN_GENRE_AS_ZERO = False


# ---------------------------------------------------------------- parse
def read_ml1m(in_dir):
    ratings = pd.read_csv(os.path.join(in_dir, "ratings.dat"), sep=":", header=None,
                          usecols=[0, 2, 4, 6], names=["user", "item", "rating", "ts"],
                          dtype={"user": np.int64, "item": np.int64,
                                 "rating": np.float64, "ts": np.int64},
                          engine="c", encoding="latin-1")
    users = pd.read_csv(os.path.join(in_dir, "users.dat"), sep=":", header=None,
                        usecols=[0, 2, 4, 6, 8],
                        names=["user", "gender", "age", "occupation", "zip"],
                        dtype={"user": np.int64, "gender": str, "age": np.int64,
                               "occupation": str, "zip": str},
                        engine="c", encoding="latin-1", keep_default_na=False)
    rows = []
    with open(os.path.join(in_dir, "movies.dat"), encoding="latin-1") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if not line:
                continue
            mid, title, genres = line.split("::", 2)
            m = YEAR_RE.search(title)
            rows.append((int(mid), title, int(m.group(1)) if m else 0,
                         genres.split("|") if genres else []))
    movies = pd.DataFrame(rows, columns=["item", "title", "year", "genres"])
    return ratings, users, movies


# ---------------------------------------------------------------- label
def label(ratings):
    keep = (ratings["rating"] >= POS_MIN) | (ratings["rating"] <= NEG_MAX)
    kept = ratings[keep].copy()
    kept["label"] = (kept["rating"] >= POS_MIN).astype(np.int8)
    return kept, int((~keep).sum())


# ---------------------------------------------------------------- split
def boundary(ts, c):
    n = len(ts)
    while 0 < c < n and ts[c] == ts[c - 1]:
        c += 1
    return c


def global_split(df):
    """df sorted; all rows sharing a boundary timestamp stay on the earlier side."""
    n = len(df)
    ts = df["ts"].to_numpy()
    c1 = boundary(ts, math.floor((1.0 - VALID_FRAC - TEST_FRAC) * n))
    c2 = boundary(ts, max(c1, math.floor((1.0 - TEST_FRAC) * n)))
    split = np.zeros(n, dtype=np.int8)
    split[c1:c2] = 1
    split[c2:] = 2
    return split, c1, c2


# ---------------------------------------------------------------- encode
def encode(values, vocab):
    """Raw values -> ids 1..n-1 of the sorted vocab, 0 for anything unseen."""
    return pd.Categorical(values, categories=vocab).codes.astype(np.int64) + 1


def fit_encoders(df, users, movies, zip_prefix):
    train = df[df["split"] == 0]
    vocab = {}
    vocab["user"] = np.sort(train["user"].unique())
    vocab["item"] = np.sort(train["item"].unique())
    tu = users[users["user"].isin(vocab["user"])]
    vocab["gender"] = sorted(tu["gender"].unique())
    vocab["age"] = np.sort(tu["age"].unique())
    vocab["occupation"] = sorted(tu["occupation"].unique())
    vocab["zip"] = sorted(tu["zip"].str[:zip_prefix].unique())
    tm = movies[movies["item"].isin(vocab["item"])]
    vocab["genre"] = sorted(set(g for gs in tm["genres"] for g in gs))
    return vocab


def encode_all(df, users, movies, vocab, zip_prefix):
    users = users.copy()
    users["gender_id"] = encode(users["gender"], vocab["gender"])
    users["age_id"] = encode(users["age"], vocab["age"])
    users["occupation_id"] = encode(users["occupation"], vocab["occupation"])
    users["zip_id"] = encode(users["zip"].str[:zip_prefix], vocab["zip"])
    users["user_id"] = encode(users["user"], vocab["user"])
    gid = {g: i + 1 for i, g in enumerate(vocab["genre"])}
    movies = movies.copy()
    movies["item_id"] = encode(movies["item"], vocab["item"])
    movies["genre_ids"] = [sorted(gid.get(g, 0) for g in gs
                                  if g in gid or UNKNOWN_GENRE_AS_ZERO)
                           for gs in movies["genres"]]

    df["user_id"] = encode(df["user"], vocab["user"])
    df["item_id"] = encode(df["item"], vocab["item"])
    u = users.set_index("user")
    for c in ("gender_id", "age_id", "occupation_id", "zip_id"):
        df[c] = df["user"].map(u[c]).fillna(0).astype(np.int64)
    df["genre_ids"] = df["item"].map(movies.set_index("item")["genre_ids"])
    df["genre_ids"] = df["genre_ids"].where(df["genre_ids"].notna(), None)
    return users, movies


# ---------------------------------------------------------------- dense
def strictly_before_stats(train, key):
    """Per row of the time-sorted train frame: (count, positives) of the same
    key's train events with a strictly smaller timestamp."""
    g = train.groupby(key, sort=False)
    cnt = g.cumcount()
    pos = g["label"].cumsum() - train["label"]
    # rows of the same key in the same second are not "before" each other:
    # every row of a (key, ts) group takes the value of the group's first row
    tmp = pd.DataFrame({"k": train[key], "ts": train["ts"], "cnt": cnt, "pos": pos})
    first = tmp.groupby(["k", "ts"], sort=False)[["cnt", "pos"]].transform("first")
    return first["cnt"].to_numpy(), first["pos"].to_numpy()


def dense_features(df):
    is_train = (df["split"] == 0).to_numpy()
    train = df[is_train]
    raw = np.zeros((len(df), 4))
    for j, key in ((0, "user"), (2, "item")):
        c = np.zeros(len(df))
        p = np.zeros(len(df))
        c_tr, p_tr = strictly_before_stats(train, key)
        c[is_train] = c_tr
        p[is_train] = p_tr
        # global split: every train event precedes every valid/test event
        tot = train.groupby(key)["label"].agg(["size", "sum"])
        other = ~is_train
        c[other] = df.loc[other, key].map(tot["size"]).fillna(0).to_numpy()
        p[other] = df.loc[other, key].map(tot["sum"]).fillna(0).to_numpy()
        raw[:, j] = np.log1p(c)
        raw[:, j + 1] = (p + 1.0) / (c + 2.0)
    lo = raw[is_train].min(axis=0)
    hi = raw[is_train].max(axis=0)
    return raw, lo, hi, train


def scale(raw, lo, hi):
    span = hi - lo
    safe = np.where(span > 0, span, 1.0)
    out = np.clip((raw - lo) / safe, 0.0, 1.0)
    out[:, span <= 0] = 0.0
    return out


# ---------------------------------------------------------------- seq
def sequences(df, all_ratings, item_vocab, hist_len, seed):
    """hist and neg_hist per row of df (sorted by time).  Python loop per user,
    numpy slicing inside.  One generator per user, seeded (seed, user), so a
    record's draws depend on nothing later than that user's earlier records."""
    n = len(df)
    n_items_vocab = len(item_vocab) + 1
    hist = [None] * n
    neg = [None] * n

    # first train event of each vocab item; candidate pool ordered by it
    is_train = (df["split"] == 0).to_numpy()
    tr_item = df["item_id"].to_numpy()[is_train]
    tr_ts = df["ts"].to_numpy()[is_train]
    first_ts = np.full(n_items_vocab, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_ts, tr_item, tr_ts)
    first_ts[0] = np.iinfo(np.int64).max  # id 0 is never a candidate
    pool = np.argsort(first_ts, kind="stable")
    pool_ts = first_ts[pool]

    # every rating (incl. neutral/dropped ones), per user, time order
    ar = all_ratings[["user", "ts"]].copy()
    ar["item_id"] = encode(all_ratings["item"], item_vocab)
    ar = ar.sort_values(["user", "ts"], kind="stable")
    ar_groups = {u: (g["ts"].to_numpy(), g["item_id"].to_numpy())
                 for u, g in ar.groupby("user", sort=False)}

    mask = np.zeros(n_items_vocab, dtype=bool)  # items the user rated before ts
    for u, g in df.groupby("user", sort=False):
        idx = g.index.to_numpy()           # positional, df has a RangeIndex
        ts = g["ts"].to_numpy()
        items = g["item_id"].to_numpy()
        lab = g["label"].to_numpy()
        pos_ts = ts[lab == 1]
        pos_items = items[lab == 1]
        k_hist = np.searchsorted(pos_ts, ts, side="left")
        m_pool = np.searchsorted(pool_ts, ts, side="left")
        rts, ritems = ar_groups[u]
        k_rated = np.searchsorted(rts, ts, side="left")
        marked = 0
        rng = np.random.default_rng([seed, int(u)])
        for j in range(len(idx)):
            k = k_hist[j]
            h = pos_items[max(0, k - hist_len):k]
            hist[idx[j]] = h.tolist()
            kr = k_rated[j]
            if kr > marked:
                mask[ritems[marked:kr]] = True
                marked = kr
            nh = len(h)
            if nh == 0:
                neg[idx[j]] = []
                continue
            neg[idx[j]] = draw_negatives(rng, pool, m_pool[j], mask, items[j], nh)
        mask[ritems[:marked]] = False
        mask[0] = False
    return hist, neg


def draw_negatives(rng, pool, m, mask, own, h):
    """h distinct items uniformly from pool[:m] minus mask minus own."""
    if m == 0:
        return []
    # rejection sampling: the first h distinct uniform draws that pass are a
    # uniform sample without replacement (rng.random is cheaper per call
    # than rng.integers)
    c = pool[(rng.random(2 * h + 8) * m).astype(np.intp)]
    c = c[~mask[c] & (c != own)]
    out = list(dict.fromkeys(c.tolist()))
    if len(out) >= h:
        return out[:h]
    # too many exclusions (or too few candidates): enumerate them
    cand = pool[:m]
    cand = cand[~mask[cand] & (cand != own)]
    if len(cand) <= h:
        return rng.permutation(cand).tolist()
    return rng.choice(cand, size=h, replace=False).tolist()


# ---------------------------------------------------------------- write
def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def build_meta(args, n_ratings, dropped, counts, split_ts, vocab_sizes, lo, hi, pos_rate):
    # FORMAT.md does not fix the bytes hashed for schema_hash; this is one
    # choice (field lists and "field=size" joined by newlines).
    s = "\n".join([",".join(RECORD_FIELDS), ",".join(USER_FIELDS), ",".join(ITEM_FIELDS),
                   ",".join(DENSE_FIELDS)] +
                  ["%s=%d" % (f, vocab_sizes[f]) for f in VOCAB_FIELDS])
    return {
        "format": "hogrec-store",
        "version": 1,
        "schema_hash": "%016x" % fnv1a64(s.encode()),
        "created_by": "bench/ingest_pandas.py 1",
        "source": {"dir": args.in_dir, "format": "ml-1m"},
        "has_demographics": True,
        "options": {"label_mode": "explicit", "pos_min": POS_MIN, "neg_max": NEG_MAX,
                    "split": "global", "valid_frac": VALID_FRAC, "test_frac": TEST_FRAC,
                    "hist_len": args.hist_len, "seed": args.seed,
                    "zip_prefix": args.zip_prefix, "neg_sampler": "uniform-seen"},
        "split": {"train_end_ts": split_ts[0], "valid_end_ts": split_ts[1]},
        "counts": {"ratings": n_ratings, "skipped_lines": 0, "dropped": dropped,
                   "train": counts[0], "valid": counts[1], "test": counts[2]},
        "record_fields": RECORD_FIELDS,
        "user_fields": USER_FIELDS,
        "item_fields": ITEM_FIELDS,
        "dense_fields": DENSE_FIELDS,
        "vocab_sizes": vocab_sizes,
        "scaler": {"min": [float(x) for x in lo], "max": [float(x) for x in hi]},
        "positive_rate": pos_rate,
    }


def write_store(out, meta, vocab_lists, user_rows, item_rows, split_rows):
    tmp = "%s.tmp-%d" % (out.rstrip("/"), os.getpid())
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    packer = msgpack.Packer(use_single_float=True, use_bin_type=True)
    key = struct.Struct(">Q").pack
    try:
        env = lmdb.open(tmp, map_size=1 << 38, max_dbs=8, subdir=True,
                        sync=False, metasync=False)
        with env.begin(write=True) as txn:
            db = env.open_db(b"meta", txn=txn)
            # FORMAT.md: meta floats are float64
            txn.put(b"meta", msgpack.packb(meta, use_single_float=False), db=db)
            db = env.open_db(b"vocab", txn=txn)
            for f in VOCAB_FIELDS:
                txn.put(f.encode(), packer.pack(vocab_lists[f]), db=db)
            for name, rows, first in (("users", user_rows, 1), ("items", item_rows, 1),
                                      ("train", split_rows[0], 0),
                                      ("valid", split_rows[1], 0),
                                      ("test", split_rows[2], 0)):
                db = env.open_db(name.encode(), txn=txn)
                with txn.cursor(db=db) as cur:
                    cur.putmulti(((key(first + i), packer.pack(r)) for i, r in enumerate(rows)),
                                 append=True)
        env.sync(True)
        env.close()
        # The seal the C tools check before opening a store (FORMAT.md).
        with open(os.path.join(tmp, "data.mdb"), "rb") as f:
            d = f.read()
        with open(os.path.join(tmp, "data.crc"), "w") as f:
            f.write("hogrec-crc32 %08x %d\n" % (zlib.crc32(d), len(d)))
        if os.path.exists(out):
            shutil.rmtree(out)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("in_dir")
    ap.add_argument("out_store")
    ap.add_argument("--hist-len", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--zip-prefix", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    # The sequence and write stages build ~1M small python lists; the cyclic
    # GC would rescan them over and over (about 26 s instead of 13 s on ml-1m
    # size).  Nothing here creates reference cycles, so turn it off.
    gc.disable()
    out = args.out_store
    if not args.no_write and os.path.exists(out) and not os.path.isfile(
            os.path.join(out, "data.mdb")):
        sys.exit("ingest_pandas: refusing to replace '%s': not a store" % out)

    sec = {}
    t_all = t = time.perf_counter()

    def lap(name):
        nonlocal t
        now = time.perf_counter()
        sec[name] = round(now - t, 4)
        t = now

    ratings, users, movies = read_ml1m(args.in_dir)
    lap("parse")

    df, dropped = label(ratings)
    lap("label")

    df = df.sort_values(["ts", "user", "item"], kind="stable").reset_index(drop=True)
    lap("sort")

    df["split"], c1, c2 = global_split(df)
    lap("split")

    vocab = fit_encoders(df, users, movies, args.zip_prefix)
    users, movies = encode_all(df, users, movies, vocab, args.zip_prefix)
    lap("encode")

    raw, lo, hi, train = dense_features(df)
    dense = scale(raw, lo, hi)
    lap("dense")

    hist, neg = sequences(df, ratings, vocab["item"], args.hist_len, args.seed)
    lap("seq")

    n = len(df)
    counts = [c1, c2 - c1, n - c2]
    if not args.no_write:
        ts = df["ts"].to_numpy()
        split_ts = [int(ts[c1 - 1]) if c1 > 0 else 0, int(ts[c2 - 1]) if c2 > 0 else 0]
        lab = df["label"].to_numpy()
        pos_rate = {s: float(lab[a:b].mean()) if b > a else 0.0
                    for s, a, b in (("train", 0, c1), ("valid", c1, c2), ("test", c2, n))}
        vocab_lists = {f: [None] + [v.item() if hasattr(v, "item") else v for v in vocab[f]]
                       for f in VOCAB_FIELDS}
        vocab_sizes = {f: len(vocab_lists[f]) for f in VOCAB_FIELDS}

        cols = [df["user"].tolist(), df["item"].tolist(), df["rating"].tolist(),
                df["ts"].tolist(), df["label"].tolist(), df["user_id"].tolist(),
                df["item_id"].tolist(), df["gender_id"].tolist(), df["age_id"].tolist(),
                df["occupation_id"].tolist(), df["zip_id"].tolist(),
                [g if g is not None else [] for g in df["genre_ids"]],
                dense.tolist(), hist, neg]
        recs = list(zip(*cols))  # msgpack packs tuples as arrays
        split_rows = [recs[:c1], recs[c1:c2], recs[c2:]]

        # users/items: features as of the end of train (every train event)
        ut = train.groupby("user")["label"].agg(["size", "sum"])
        it = train.groupby("item")["label"].agg(["size", "sum"])
        uraw = np.column_stack([np.log1p(ut["size"]), (ut["sum"] + 1.0) / (ut["size"] + 2.0)])
        iraw = np.column_stack([np.log1p(it["size"]), (it["sum"] + 1.0) / (it["size"] + 2.0)])
        ud = dict(zip(ut.index.tolist(), scale(uraw, lo[:2], hi[:2]).tolist()))
        idn = dict(zip(it.index.tolist(), scale(iraw, lo[2:], hi[2:]).tolist()))
        tpos = train[train["label"] == 1]
        uhist = {u: g.to_numpy()[-args.hist_len:].tolist() if args.hist_len > 0 else []
                 for u, g in tpos.groupby("user", sort=False)["item_id"]}
        demo = dict(zip(users["user"].tolist(),
                        users[["gender_id", "age_id", "occupation_id", "zip_id"]]
                        .to_numpy().tolist()))
        user_rows = [[u, i + 1] + demo.get(u, [0, 0, 0, 0]) + [ud[u], uhist.get(u, [])]
                     for i, u in enumerate(vocab["user"].tolist())]
        mv = dict(zip(movies["item"].tolist(),
                      zip(movies["title"], movies["year"].tolist(), movies["genre_ids"])))
        item_rows = [[m, i + 1] + list(mv.get(m, ("", 0, []))) + [idn[m]]
                     for i, m in enumerate(vocab["item"].tolist())]
        meta = build_meta(args, len(ratings), dropped, counts, split_ts, vocab_sizes,
                          lo, hi, pos_rate)
        write_store(args.out_store, meta, vocab_lists, user_rows, item_rows, split_rows)
    lap("write")

    print(json.dumps({"impl": "pandas", "rows": int(len(ratings)), "records": int(n),
                      "seconds_total": round(time.perf_counter() - t_all, 4),
                      "seconds": sec}))


if __name__ == "__main__":
    main()
