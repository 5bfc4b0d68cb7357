#!/usr/bin/python3
"""Oracle AUC of a store's valid and test rows.

The synthetic generator (bin/mlgen) writes truth.dat: the planted
probabilities of ratings 1..5 for every rating line.  The oracle scores a
record by P(r >= 4) / (P(r >= 4) + P(r <= 2)) of its (user, item), which is
the best any model can do on those rows.  Prints one JSON line:
{"bench":"oracle","valid":{"n":..,"auc":..},"test":{...}}

usage: bench/oracle_split.py DATA_DIR STORE
"""
import json
import struct
import sys

import lmdb
import msgpack
import numpy as np


def auc(score, label):
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i:j + 1] = (i + j) / 2.0 + 1.0
        i = j + 1
    r = np.empty(len(s))
    r[order] = ranks
    pos = label == 1
    npos, nneg = pos.sum(), (~pos).sum()
    return float((r[pos].sum() - npos * (npos + 1) / 2.0) / (npos * nneg))


def main():
    data, store = sys.argv[1], sys.argv[2]
    truth = {}
    with open(data + "/truth.dat") as f:
        for line in f:
            p = line.rstrip("\n").split("::")
            pr = [float(x) for x in p[3:8]]
            truth[(int(p[0]), int(p[1]))] = (pr[3] + pr[4]) / (pr[3] + pr[4] + pr[0] + pr[1])
    env = lmdb.open(store, readonly=True, lock=False, max_dbs=8, subdir=True)
    out = {"bench": "oracle"}
    for split in ("valid", "test"):
        db = env.open_db(split.encode(), create=False)
        score, label = [], []
        with env.begin() as txn:
            for _, v in txn.cursor(db=db):
                r = msgpack.unpackb(v)
                score.append(truth[(r[0], r[1])])
                label.append(r[4])
        score, label = np.array(score), np.array(label)
        out[split] = {"n": len(score), "auc": round(auc(score, label), 6) if len(score) else None}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
