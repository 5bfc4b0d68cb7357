#!/usr/bin/python3
"""The same full-catalogue top-K as `bin/blasbench retrieval`, in PyTorch and numpy.

    bench/torch_retrieval.py DIR [--block 256] [--seconds 2]

DIR holds what `bin/blasbench retrieval --save DIR` wrote: the user and
item vectors U (users, dim) and V (items, dim), every user's excluded items
as CSR (skip_off, skip: the padding item 0 and, from a store, the user's
train items) and blasbench's answer topk (users, k).  For each block of
--block users: one matrix product of their vectors against V, the excluded
entries set to -inf, then the top K per row:
  torch: torch.topk(scores, k)          (sorted; one call per block)
  numpy: np.argpartition, then an argsort of the k (per block)
One thread on both (torch.set_num_threads(1), OpenBLAS single-threaded, the
BLAS kernel bench/run.sh hands every twin), timed in process CPU seconds as
blasbench times its own (its docstring: a loaded machine slows both alike);
the best pass of those run in --seconds (at least one) counts.  The masks'
indices are built once, outside the timing.

stdout, one JSON line: users_per_s for torch and numpy, agree (the fraction
of users whose top K, in order, equals blasbench's: float rounding may
order near-equal scores differently) and the shapes.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ref  # noqa: E402  (threads and BLAS setup shared with the other twins)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--block", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=2.0)
    a = ap.parse_args()
    torch, info = torch_ref.setup_torch(1, 1, 1, False)
    d = a.dir
    U = np.load(os.path.join(d, "U.npy"))
    V = np.load(os.path.join(d, "V.npy"))
    off = np.load(os.path.join(d, "skip_off.npy")).reshape(-1)
    skip = np.load(os.path.join(d, "skip.npy")).reshape(-1).astype(np.int64)
    want = np.load(os.path.join(d, "topk.npy"))
    users, k = want.shape
    items = V.shape[0]
    blocks = []
    for u0 in range(0, users, a.block):
        u1 = min(users, u0 + a.block)
        lo, hi = int(off[u0]), int(off[u1])
        rows = np.repeat(np.arange(u1 - u0), np.diff(off[u0:u1 + 1]).astype(np.int64))
        blocks.append((u0, u1, rows, skip[lo:hi]))
    Ut, Vt = torch.from_numpy(U), torch.from_numpy(V)
    blocks_t = [(u0, u1, torch.from_numpy(r), torch.from_numpy(c)) for u0, u1, r, c in blocks]

    def torch_pass(out):
        for u0, u1, r, c in blocks_t:
            s = Ut[u0:u1] @ Vt.T
            s[r, c] = float("-inf")
            out[u0:u1] = torch.topk(s, k, dim=1).indices.numpy()

    def numpy_pass(out):
        for u0, u1, r, c in blocks:
            s = U[u0:u1] @ V.T
            s[r, c] = -np.inf
            part = np.argpartition(-s, k - 1, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(s, part, 1), axis=1, kind="stable")
            out[u0:u1] = np.take_along_axis(part, order, 1)

    def best(fn):
        out = np.zeros((users, k), dtype=np.int64)
        t0 = time.process_time()
        fn(out)
        b = time.process_time() - t0
        start = time.process_time()
        while time.process_time() - start < a.seconds:
            t0 = time.process_time()
            fn(out)
            b = min(b, time.process_time() - t0)
        return b, out

    with torch.no_grad():
        t_torch, got_t = best(torch_pass)
    t_np, got_n = best(numpy_pass)
    agree_t = float(np.mean(np.all(got_t == want, axis=1)))
    agree_n = float(np.mean(np.all(got_n == want, axis=1)))
    print(json.dumps({"bench": "retrieval_twin", "users": users, "items": items,
                      "dim": U.shape[1], "k": k, "block": a.block,
                      "torch_users_per_s": round(users / t_torch),
                      "numpy_users_per_s": round(users / t_np),
                      "torch_agree": round(agree_t, 4), "numpy_agree": round(agree_n, 4),
                      **info}))


if __name__ == "__main__":
    main()
