#!/usr/bin/python3
"""PyTorch reference for hogrec's AutoRec (Sedhain et al. 2015), I- and U-AutoRec.

    bench/torch_autorec.py --data STORE [--kind item|user] [--epochs 50]
                           [--batch 64] [--lr 0.001] [--l2 L2] [--hidden 500]
                           [--threads 2] [--blas-threads 1] [--seed 1]
                           [--max-train N] [--eval-batch 256] [--keep-denormals]

Reads a hogrec store (docs/FORMAT.md) with bench/torch_ref.py's loader (only
the user, item and rating columns) and reconstructs the dense rating matrix
of the train split, row by row, the formulation of the seed write-up
(shared/seeds/003, AutoRec section):

  --kind item (default): one row per item id of the train vocabulary, the
      item's train ratings as a dense vector over the user ids (n_in = the
      `user` vocabulary size, id 0 included; 0 where unobserved).
  --kind user: transposed, one row per user over the item ids.

  h   = sigmoid(V r + mu)      V: (H x n_in), H = --hidden (default 500)
  out = W h + b                W: (n_in x H), identity output
  V and W Xavier-uniform +-sqrt(6 / (n_in + H)), mu and b zero.

Loss of a minibatch of --batch rows: the sum over the observed entries of
(out - r)^2 divided by the number of observed entries in the minibatch (a
masked mean squared error); Adam (betas 0.9/0.999, eps 1e-8, --lr) with
weight_decay = --l2, torch's coupled L2 (l2 * w added to the gradient of
every parameter, biases included, as models/optim.c does).  Rows are
shuffled every epoch; rows with no observed train entry (id 0 among them)
are not trained on.  The train split is taken as it is: a store ingested
with the default explicit labels has no rating-3 records, one ingested with
`--label implicit` has every rating.  Should a (user, item) pair occur more
than once in train, its latest rating is the one used (records are in time
order); the first line counts such pairs ("duplicates").

Evaluation, after every epoch, on the valid and test records (u, i, r): the
item-based prediction is the output of item i's train row at position u
(user-based: user u's row at position i), clamped to the [min, max] of the
train ratings; RMSE.  As in models/autorec.c, a record whose column id is
0 (item-based: a user the train split does not know, common with the global
time split; user-based: an unknown item) is scored by its row's mean train
rating instead (the global mean for a row without train ratings, row 0
included); an unknown row with a known column is scored by the model from
the empty row.  Beside it, on the same lines, the RMSE of the global mean
train rating, of the item mean and of the user mean (the global mean for an
id without train ratings), as trainer/eval.c reports them.  "cold" counts
the records whose user or item is 0, and "warm" holds n and the four RMSEs
over the others (the records the model itself scores).

stdout, JSON lines (compact, like torch_ref.py's):
  {"impl":"torch","model":"autorec","load_s":..,"train":N,"valid":N,"test":N,
   "kind":..,"rows":..,"n_in":..,"observed":..,...}                 once, first
  {"impl":"torch","model":"autorec","split":"valid"|"test","epoch":e,"n":..,
   "rmse":..,"rmse_global_mean":..,"rmse_item_mean":..,"rmse_user_mean":..,
   "cold":..,"warm":{"n":..,"rmse":..,..},"train_loss":..,"rows_per_s":..,
   "samples_per_s":..,"threads":..,"batch":..,"torch":..,"blas_core":..,...}
                                                           per epoch and split

train_loss is the epoch's masked MSE over every observed train entry (each
minibatch's loss, before its update, weighted by its observed entries).
rows_per_s (= samples_per_s) is the rows trained / wall seconds of the
epoch's training loop (minibatch densification, forward, backward,
optimiser step); loading and evaluation are not included.  eval_s is the
time of one pass scoring valid and test together (a row both need is
computed once), the same on both lines.

Differences from bin/trainer --model autorec (models/autorec.c), besides
those of torch_ref.py (synchronous, not Hogwild; random streams):
  * the C side computes only the observed entries (sparse encoder and
    decoder, O(|row| H) a row); here the dense row is multiplied (O(n_in H)),
    the same function and gradient: the speed is the dense formulation's.
  * the C side's V, W and decoder bias are embedding tables updated lazily
    (Adam and L2 on the rows a batch touches); here torch.optim.Adam updates
    and decays every parameter at every step.
  * defaults: bin/trainer's --batch is 256, --l2 0 and it stops early on the
    valid RMSE (--early-stop 2); here --batch 64, --l2 0.001 and every epoch
    of --epochs 50 is trained.  Pass the same values to both to compare.

Threads, BLAS and denormals as in torch_ref.py (see its docstring): --threads
sizes torch's OpenMP pool, --blas-threads (default 1) OpenBLAS's.

Exit status: 0 ok, 64 bad option, 65 bad store or non-finite loss,
66 store missing (as torch_ref.py and bin/trainer).
"""
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ref as ref  # noqa: E402  (the store loader, threads, output)

ref.PROG = "torch_autorec"
log, emit = ref.log, ref.emit

# --l2 default, measured on synthetic ml-1m (bin/mlgen defaults, ingest
# --label implicit), item-based, every other option at its default; valid
# RMSE over the records whose user and item are in train, item mean 1.025:
#
#   l2        global split: best (epoch)  epoch 50   user split: best  epoch 50
#   0                       0.966 (12)    1.083
#   1e-4                    0.959 (16)    1.040                0.965   1.059
#   3e-4                    0.960 (16)    0.999                0.968   1.024
#   5e-4                    0.964 (16)    0.990                0.974   1.005
#   1e-3                    0.981 (48)    0.993                0.990   0.998
#   1e-2                    1.110  (9)    1.144
#
# Below 1e-3 the valid RMSE bottoms out near epoch 16 and then climbs
# (overfitting); 1e-3 is the smallest value that stays flat through the
# default 50 epochs, at about 0.02 above the best peak.  With early stopping
# on the valid RMSE, 1e-4 .. 3e-4 is better.
DEFAULT_L2 = 0.001


class Rows:
    """The train ratings as sparse rows (CSR), densified a minibatch at a time."""

    def __init__(self, row, col, val, n_rows, n_in):
        self.n_rows, self.n_in = n_rows, n_in
        key = row.astype(np.int64) * n_in + col
        order = np.argsort(key, kind="stable")  # equal keys stay in time order
        key = key[order]
        last = np.r_[key[1:] != key[:-1], True] if key.size else np.zeros(0, dtype=bool)
        self.duplicates = int(key.size - last.sum())
        order = order[last]  # the latest rating of each (row, col)
        self.col = np.ascontiguousarray(col[order], dtype=np.int64)
        self.val = np.ascontiguousarray(val[order], dtype=np.float32)
        self.len = np.bincount(row[order], minlength=n_rows).astype(np.int64)
        self.ptr = np.r_[0, np.cumsum(self.len)]
        self.row_sum = np.bincount(row[order], weights=self.val.astype(np.float64),
                                   minlength=n_rows)

    def gather(self, rows):
        """(seg, col, val) of the observed entries of the given rows, seg being
        the index in `rows`."""
        lens = self.len[rows]
        starts = self.ptr[rows]
        seg = np.repeat(np.arange(rows.size), lens)
        pos = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens - starts, lens)
        return seg, self.col[pos], self.val[pos]


def parse_args(argv):
    ap = ref.Parser(description="PyTorch reference for hogrec's AutoRec (see the module docstring).")
    ap.add_argument("--data", required=True, help="hogrec store (LMDB directory)")
    ap.add_argument("--kind", choices=["item", "user"], default="item",
                    help="item-based (rows are items over users; default) or user-based")
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--batch", type=int, default=64, help="rows per minibatch (default 64)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--l2", type=float, default=DEFAULT_L2,
                    help="Adam weight_decay (default %g)" % DEFAULT_L2)
    ap.add_argument("--hidden", type=int, default=500, help="hidden units (default 500)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="torch intra-op threads (default: cores)")
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="OpenBLAS threads (default 1, as torch_ref.py)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-train", type=int, default=None,
                    help="use only the first N train records (time order)")
    ap.add_argument("--eval-batch", type=int, default=256, help="rows per evaluation pass")
    ap.add_argument("--keep-denormals", action="store_true",
                    help="do not call torch.set_flush_denormal(True)")
    a = ap.parse_args(argv)
    if a.epochs < 1 or a.batch < 1 or a.threads < 1 or a.hidden < 1 or a.eval_batch < 1:
        ap.error("--epochs, --batch, --threads, --hidden and --eval-batch must be >= 1")
    if a.blas_threads < 1:
        ap.error("--blas-threads must be >= 1")
    if not a.lr > 0:
        ap.error("--lr must be positive")
    if not (a.l2 >= 0 and math.isfinite(a.l2)):
        ap.error("--l2 must be >= 0")
    if a.max_train is not None and a.max_train < 1:
        ap.error("--max-train must be >= 1")
    return a


def rmse(pred, r):
    d = np.asarray(pred, dtype=np.float64) - r
    return float(np.sqrt(np.mean(d * d)))


def main(argv):
    a = parse_args(argv)

    t0 = time.perf_counter()
    try:
        meta, splits = ref.load_store(a.data, a.max_train, fields=("user", "item", "rating"))
    except ref.StoreError as e:
        log(str(e))
        return e.code
    load_s = time.perf_counter() - t0

    torch, info = ref.setup_torch(a.threads, a.blas_threads, a.seed, a.keep_denormals)
    nn = torch.nn

    vocab = meta["vocab_sizes"]
    row_f, col_f = ("item", "user") if a.kind == "item" else ("user", "item")
    n_rows, n_in = int(vocab[row_f]), int(vocab[col_f])
    tr = splits["train"]
    if tr["n"] == 0:
        log("store '%s' has no train records" % a.data)
        return 65
    for name, d in splits.items():
        for f, n in ((row_f, n_rows), (col_f, n_in)):
            if d["n"] and (d[f].min() < 0 or d[f].max() >= n):
                log("store '%s': a %s record's %s id is outside its vocabulary of %d"
                    % (a.data, name, f, n))
                return 65
        if not np.all(np.isfinite(d["rating"])):
            log("store '%s': a %s record's rating is not finite" % (a.data, name))
            return 65
    data = Rows(tr[row_f], tr[col_f], tr["rating"], n_rows, n_in)
    r_min, r_max = float(data.val.min()), float(data.val.max())
    global_mean = float(data.val.astype(np.float64).mean())
    row_mean = np.where(data.len > 0, data.row_sum / np.maximum(data.len, 1), global_mean)
    col_len = np.bincount(data.col, minlength=n_in)
    col_sum = np.bincount(data.col, weights=data.val.astype(np.float64), minlength=n_in)
    col_mean = np.where(col_len > 0, col_sum / np.maximum(col_len, 1), global_mean)
    mean_of = {row_f: row_mean, col_f: col_mean}  # "item" and "user": the train means by id
    train_rows = np.flatnonzero(data.len > 0)
    n_train_rows = train_rows.size

    class AutoRec(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Linear(n_in, a.hidden)  # V, mu
            self.dec = nn.Linear(a.hidden, n_in)  # W, b
            bound = math.sqrt(6.0 / (n_in + a.hidden))
            with torch.no_grad():
                for lin in (self.enc, self.dec):
                    lin.weight.uniform_(-bound, bound)
                    lin.bias.zero_()

        def forward(self, r):
            return self.dec(torch.sigmoid(self.enc(r)))

    model = AutoRec()
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8,
                           weight_decay=a.l2)
    gen = torch.Generator().manual_seed(a.seed)

    def densify(rows):
        seg, col, val = data.gather(rows)
        seg, col = torch.from_numpy(seg), torch.from_numpy(col)
        val = torch.from_numpy(val)
        x = torch.zeros(rows.size, n_in)
        x[seg, col] = val
        return x, seg, col, val

    common = {**info, "optimizer": "adam"}
    hyper = {"kind": a.kind, "hidden": a.hidden, "lr": a.lr, "l2": a.l2}
    emit({"impl": "torch", "model": "autorec", "load_s": round(load_s, 3), "train": tr["n"],
          "valid": splits["valid"]["n"], "test": splits["test"]["n"], **hyper,
          "rows": int(n_train_rows), "n_in": n_in, "observed": int(data.val.size),
          "duplicates": data.duplicates, "rating_min": r_min, "rating_max": r_max,
          "global_mean": round(global_mean, 6),
          "label_mode": meta["options"].get("label_mode"), "parameters": n_params, **common})
    log("autorec (%s-based): %d parameters; %d train records (%d observed entries in %d "
        "rows of %d), %d valid, %d test, loaded in %.2fs; %d torch threads, %s OpenBLAS "
        "threads (core %s), batch %d, adam lr %g, l2 %g"
        % (a.kind, n_params, tr["n"], data.val.size, n_train_rows, n_in, splits["valid"]["n"],
           splits["test"]["n"], load_s, torch.get_num_threads(), info["blas_threads"],
           info["blas_core"], a.batch, a.lr, a.l2))

    def predict(rows, cols):
        """The clamped outputs at (rows[k], cols[k]), each row computed once."""
        pred = np.empty(rows.size, dtype=np.float32)
        uniq, inv = np.unique(rows, return_inverse=True)
        order = np.argsort(inv, kind="stable")
        inv_sorted = inv[order]
        model.eval()
        with torch.no_grad():
            for s in range(0, uniq.size, a.eval_batch):
                chunk = uniq[s:s + a.eval_batch]
                out = model(densify(chunk)[0]).numpy()
                lo, hi = np.searchsorted(inv_sorted, [s, s + chunk.size])
                sel = order[lo:hi]
                pred[sel] = out[inv[sel] - s, cols[sel]]
        model.train()
        return pred

    def scores(pred, r, d, sel):
        """n, RMSE of the model and of the three baselines on d's records sel."""
        if not sel.any():
            return {"n": 0, "rmse": None, "rmse_global_mean": None, "rmse_item_mean": None,
                    "rmse_user_mean": None}
        r = r[sel]
        return {"n": int(r.size), "rmse": round(rmse(pred[sel], r), 6),
                "rmse_global_mean": round(rmse(np.full(r.size, global_mean), r), 6),
                "rmse_item_mean": round(rmse(mean_of["item"][d["item"][sel]], r), 6),
                "rmse_user_mean": round(rmse(mean_of["user"][d["user"][sel]], r), 6)}

    B = a.batch
    for epoch in range(1, a.epochs + 1):
        perm = train_rows[torch.randperm(n_train_rows, generator=gen).numpy()]
        sse = torch.zeros((), dtype=torch.float64)
        n_obs = 0
        t0 = time.perf_counter()
        for s in range(0, n_train_rows, B):
            x, seg, col, val = densify(perm[s:s + B])
            out = model(x)
            loss = ((out[seg, col] - val) ** 2).sum() / val.numel()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sse += loss.detach().double() * val.numel()
            n_obs += val.numel()
        secs = time.perf_counter() - t0
        train_loss = float(sse) / n_obs
        if not math.isfinite(train_loss):
            log("loss is not finite in epoch %d; try a lower --lr" % epoch)
            return 65
        rate = n_train_rows / secs
        # valid and test in one pass: a row both need is computed once
        te = time.perf_counter()
        ev = [sp for sp in ("valid", "test") if splits[sp]["n"]]
        pred_all = predict(np.concatenate([splits[sp][row_f] for sp in ev] or [[0]]),
                           np.concatenate([splits[sp][col_f] for sp in ev] or [[0]]))
        eval_s = time.perf_counter() - te
        at = 0
        for split in ev:
            d = splits[split]
            rows, cols = d[row_f], d[col_f]
            r = d["rating"].astype(np.float64)
            pred = pred_all[at:at + d["n"]]
            at += d["n"]
            if not np.all(np.isfinite(pred)):
                log("the model scored a %s row as non-finite" % split)
                return 65
            # an unknown column (id 0) has no decoder row in models/autorec.c:
            # the row's mean train rating (the global mean for an empty row)
            pred = np.where(cols == 0, row_mean[rows], pred)
            pred = np.clip(pred, r_min, r_max)
            warm = (rows > 0) & (cols > 0)
            line = {"impl": "torch", "model": "autorec", "split": split, "epoch": epoch,
                    **scores(pred, r, d, np.ones(d["n"], dtype=bool)),
                    "cold": int(d["n"] - warm.sum()),
                    "warm": scores(pred, r, d, warm),
                    "train_loss": round(train_loss, 6), "rows_per_s": round(rate, 1),
                    "samples_per_s": round(rate, 1), "epoch_s": round(secs, 3),
                    "eval_s": round(eval_s, 3), "threads": a.threads,
                    "batch": a.batch, **hyper, **common}
            if split == "test" and epoch == a.epochs:
                line["final"] = True
            emit(line)
        log("epoch %d: train loss %.4f, %.1f rows/s (%.1fs)" % (epoch, train_loss, rate, secs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
