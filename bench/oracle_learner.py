#!/usr/bin/python3
"""The learnable ceiling: a learner that knows mlgen's planted form.

The oracle (bench/oracle_split.py) scores with the planted parameters;
a model has to estimate them from the train split.  This script fits
exactly the static part of the planted form (mlgen_model.c):

    logit = c + b_u + b_i + <p_u, q_i>
            + mean over i's genres g of (G[g] + A_sex[g] + A_age[g] + A_occ[g])

by maximum a posteriori on the store's train records (the binary labels the
models train on), with Gaussian priors of the planted standard deviations,
full-batch Adam.  Its test AUC says how close any model can be expected to
come to the oracle from this much data; the gap between it and the oracle is
estimation error plus the time-varying parts (interest, trends) it leaves
out.  Prints one JSON line:
{"bench":"oracle_learner","iterations":..,"test":{"n":..,"auc":..}}

usage: bench/oracle_learner.py DATA_DIR STORE [--iterations N]
DATA_DIR holds ml-1m-format users.dat and movies.dat (bin/mlgen's default).
"""
import argparse
import json

import lmdb
import msgpack
import numpy as np
import torch

from oracle_split import auc

# mlgen_model.c's planted standard deviations (the item bias also carries a
# popularity term, hence a slightly wider prior).
SD = {"user_bias": 0.9, "item_bias": 1.0, "factor": 0.3, "sex": 0.45, "age": 0.375, "occ": 0.3}
DIM = 8


def records(env, split):
    db = env.open_db(split.encode(), create=False)
    with env.begin() as txn:
        # user_raw, item_raw, label (docs/FORMAT.md)
        return [(r[0], r[1], r[4]) for r in (msgpack.unpackb(v) for _, v in txn.cursor(db=db))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("store")
    ap.add_argument("--iterations", type=int, default=300)
    a = ap.parse_args()
    torch.manual_seed(0)

    users, movies, genre_ids = {}, {}, {}
    with open(a.data + "/users.dat", encoding="latin-1") as f:
        for line in f:
            p = line.rstrip("\n").split("::")
            users[int(p[0])] = (p[1], p[2], p[3])
    with open(a.data + "/movies.dat", encoding="latin-1") as f:
        for line in f:
            p = line.rstrip("\n").split("::")
            movies[int(p[0])] = [genre_ids.setdefault(g, len(genre_ids)) for g in p[2].split("|")]
    uix = {u: k for k, u in enumerate(sorted(users))}
    iix = {m: k for k, m in enumerate(sorted(movies))}
    code = [{v: k for k, v in enumerate(sorted({u[c] for u in users.values()}))} for c in range(3)]
    demo = torch.tensor([[code[c][users[u][c]] for c in range(3)] for u in sorted(users)])
    gmean = torch.zeros(len(iix), len(genre_ids))
    for m, gs in movies.items():
        for g in gs:
            gmean[iix[m], g] = 1.0 / len(gs)

    env = lmdb.open(a.store, readonly=True, lock=False, max_dbs=8, subdir=True)
    train, test = records(env, "train"), records(env, "test")
    U = torch.tensor([uix[r[0]] for r in train])
    I = torch.tensor([iix[r[1]] for r in train])
    Y = torch.tensor([float(r[2]) for r in train])
    tU = torch.tensor([uix[r[0]] for r in test])
    tI = torch.tensor([iix[r[1]] for r in test])
    tY = np.array([r[2] for r in test])

    nu, ni, ng = len(uix), len(iix), len(genre_ids)
    P = (0.1 * torch.randn(nu, DIM)).requires_grad_()
    Q = (0.1 * torch.randn(ni, DIM)).requires_grad_()
    bu = torch.zeros(nu, requires_grad=True)
    bi = torch.zeros(ni, requires_grad=True)
    G = torch.zeros(ng, requires_grad=True)
    A = [torch.zeros(len(code[c]), ng, requires_grad=True) for c in range(3)]
    c0 = torch.zeros(1, requires_grad=True)
    params = [P, Q, bu, bi, G, c0] + A

    def logit(u, i):
        aff = G[None, :] + A[0][demo[u, 0]] + A[1][demo[u, 1]] + A[2][demo[u, 2]]
        return c0 + bu[u] + bi[i] + (P[u] * Q[i]).sum(1) + (gmean[i] * aff).sum(1)

    def prior(x, sd):
        return (x * x).sum() / (2 * sd * sd)

    opt = torch.optim.Adam(params, lr=0.05)
    n = len(Y)
    for _ in range(a.iterations):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logit(U, I), Y, reduction="sum")
        loss = loss + prior(P, SD["factor"]) + prior(Q, SD["factor"]) + prior(bu, SD["user_bias"]) \
            + prior(bi, SD["item_bias"]) + prior(A[0], SD["sex"]) + prior(A[1], SD["age"]) \
            + prior(A[2], SD["occ"])
        opt.zero_grad()
        (loss / n).backward()
        opt.step()
    with torch.no_grad():
        s = logit(tU, tI).numpy()
    print(json.dumps({"bench": "oracle_learner", "iterations": a.iterations,
                      "test": {"n": len(tY), "auc": round(auc(s, tY), 6)}}))


if __name__ == "__main__":
    main()
