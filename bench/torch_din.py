#!/usr/bin/python3
"""PyTorch twin of hogrec's din model (Deep Interest Network, DeepCTR-Torch's DIN).

    bench/torch_din.py --data STORE [--epochs 1] [--batch 256] [--lr 0.001]
                       [--emb-dim 32] [--hidden 256,128]
                       [--att-activation dice|prelu|relu] [--att-softmax yes|no]
                       [--att-hidden 64] [--att-hidden-second 16]
                       [--dnn-activation dice|prelu|relu] [--dnn-bn yes|no]
                       [--hist-window 0] [--threads 2] [--blas-threads 1]
                       [--seed 1] [--max-train N] [--eval-batch 2048]
                       [--keep-denormals]

Reads a hogrec store (docs/FORMAT.md) with bench/torch_ref.py's loader, plus
the store's `items` table for each history item's genres, and trains the
architecture of models/din.c (docs/models.md, "din") with the same options,
initialisation, loss (mean binary cross-entropy on the labels) and
optimiser (Adam, betas 0.9/0.999, eps 1e-8), evaluating on valid and test
after every epoch.  The options are bin/trainer's (the same names and
values), so that bench/run.sh hands both sides the same ones.  Debian
packages only (python3-torch 1.13, python3-numpy, python3-lmdb,
python3-msgpack).

Model (E = --emb-dim): tables user, item, gender, age, occupation, zip and
genre, N(0, 0.05^2), row 0 padding (zero, never updated).  An item is
represented by [item[i] | mean of genre[g] over its genres] (2E): the
candidate's genres from its record, a history item's from the items table
(an item the table lacks, id 0 included, has none: zeros).
  q    = the candidate's representation                           (B, 2E)
  k_t  = the representation of history item t, for the last
         --hist-window items of the history (all with 0), PACKED: only the
         valid positions of the batch, (N, 2E), never the padding
  s_t  = the attention unit on x_t = [q | k_t | q - k_t | q * k_t] (8E):
         Linear(8E, h1) -> act -> [Linear(h1, h2) -> act] -> Linear(., 1),
         the last without a bias under --att-softmax (shift-invariant)
  w_t  = s_t, or the softmax of s over the row's positions (--att-softmax)
  pool = sum_t w_t k_t                                              (B, 2E)
  x    = [user | gender | age | occupation | zip | pool | q | dense]
  logit = DNN(x): per --hidden width Linear (no bias with --dnn-bn) ->
          [BatchNorm1d(eps 1e-5, momentum 0.1)] -> act, then Linear(., 1)
act: Dice (alpha 0, per channel; p = sigmoid of the input normalised by
the batch's statistics, biased variance, no affine, eps 1e-8 - in the
attention unit over the N valid positions; running statistics with
momentum 0.1 and the unbiased variance for evaluation; a batch of one row
normalises to 0), PReLU (per-channel slopes, 0.25) or ReLU.  Linear
weights Xavier-uniform, biases 0.  The attention MLP is computed on the
plain concatenation, as DeepCTR's LocalActivationUnit (hogrec hoists the
query terms out of the per-position GEMM: same function).

Evaluation after every epoch, in eval mode (running statistics): exact AUC
and logloss as torch_ref.py.  samples_per_s = train records / wall seconds
of the epoch's training loop (batch gathering, forward, backward, step).

Differences from bin/trainer, as torch_ref.py's (see its docstring):
synchronous training (--threads sizes torch's OpenMP pool, --blas-threads
OpenBLAS's, default 1), dense Adam over every row (embedding rows not in the
batch move with their decaying moments) instead of lazy rows, eps inside
the bias correction, flush-to-zero on the main thread only, different
random streams; bin/trainer's running statistics are updated racily by its
Hogwild workers.

Exit status: 0 ok, 64 bad option, 65 bad store (no demographics, no dense
features, no history) or non-finite loss, 66 store missing.
"""
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ref as ref  # noqa: E402  (the store loader, threads, metrics, output)

ref.PROG = "torch_din"
log, emit = ref.log, ref.emit

ACTS = ("dice", "prelu", "relu")
DEFAULT_HIDDEN = [256, 128]
FIELDS = ("user", "item", "gender", "age", "occupation", "zip", "label", "genres", "hist",
          "dense")
KEYS = ("user", "item", "gender", "age", "occupation", "zip", "genres", "n_genres", "hist",
        "n_hist", "dense")
DICE_EPS, BN_EPS, MOMENTUM = 1e-8, 1e-5, 0.1


def yes_no(text):
    """bin/trainer's spelling of a boolean option."""
    v = {"yes": True, "true": True, "on": True, "1": True,
         "no": False, "false": False, "off": False, "0": False}.get(text.lower())
    if v is None:
        raise ValueError(text)
    return v


def parse_args(argv):
    ap = ref.Parser(description="PyTorch twin of hogrec's din (see the module docstring).")
    ap.add_argument("--data", required=True, help="hogrec store (LMDB directory)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="torch intra-op threads (default: cores)")
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="OpenBLAS threads (default 1, as torch_ref.py)")
    ap.add_argument("--emb-dim", type=int, default=32)
    ap.add_argument("--hidden", default=",".join(map(str, DEFAULT_HIDDEN)),
                    help="MLP widths, comma separated (default 256,128)")
    ap.add_argument("--att-activation", choices=ACTS, default="dice")
    ap.add_argument("--att-softmax", type=yes_no, default=False, metavar="yes|no",
                    help="softmax-normalise the attention scores over each history")
    ap.add_argument("--att-hidden", type=int, default=64)
    ap.add_argument("--att-hidden-second", type=int, default=16, help="0: one hidden layer")
    ap.add_argument("--dnn-activation", choices=ACTS, default="dice")
    ap.add_argument("--dnn-bn", type=yes_no, default=False, metavar="yes|no",
                    help="BatchNorm in the MLP")
    ap.add_argument("--hist-window", type=int, default=0,
                    help="the most recent history items attended (0: all)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-train", type=int, default=None,
                    help="use only the first N train records (time order)")
    ap.add_argument("--eval-batch", type=int, default=2048)
    ap.add_argument("--keep-denormals", action="store_true",
                    help="do not call torch.set_flush_denormal(True)")
    a = ap.parse_args(argv)
    if a.epochs < 1 or a.batch < 1 or a.threads < 1 or a.emb_dim < 1 or a.eval_batch < 1:
        ap.error("--epochs, --batch, --threads, --emb-dim and --eval-batch must be >= 1")
    if a.blas_threads < 1 or a.att_hidden < 1 or a.att_hidden_second < 0 or a.hist_window < 0:
        ap.error("--blas-threads, --att-hidden must be >= 1; --att-hidden-second, "
                 "--hist-window >= 0")
    if not a.lr > 0 or not math.isfinite(a.lr):
        ap.error("--lr must be positive")
    if a.max_train is not None and a.max_train < 1:
        ap.error("--max-train must be >= 1")
    try:
        a.hidden = [int(x) for x in a.hidden.split(",")]
    except ValueError:
        ap.error("--hidden: '%s' is not a list of widths" % a.hidden)
    if not a.hidden or min(a.hidden) < 1:
        ap.error("--hidden: widths must be >= 1")
    return a


def load_item_genres(path, n_items, n_genres):
    """(n_items, width) genre ids (0 padded) and (n_items) counts from the
    store's items table (docs/FORMAT.md: key = big-endian item id, value
    [item_raw, item, title, year, genres, dense]); row 0 and ids the table
    lacks have none."""
    import lmdb
    import msgpack
    rows = {}
    env = lmdb.open(path, readonly=True, lock=False, max_dbs=8, subdir=True)
    try:
        with env.begin() as txn:
            db = env.open_db(b"items", txn=txn, create=False)
            for k, v in txn.cursor(db=db):
                i = int.from_bytes(k, "big")
                g = msgpack.unpackb(v)[4]
                if not 0 < i < n_items or any(not 0 <= x < n_genres for x in g):
                    raise ref.StoreError(65, "store '%s': a bad items row (id %d)" % (path, i))
                rows[i] = g
    except lmdb.Error as e:
        raise ref.StoreError(65, "store '%s': %s" % (path, e))
    finally:
        env.close()
    width = max([1] + [len(g) for g in rows.values()])
    table = np.zeros((n_items, width), dtype=np.int64)
    count = np.zeros(n_items, dtype=np.float32)
    for i, g in rows.items():
        table[i, :len(g)] = g
        count[i] = len(g)
    return table, count


def build_model(torch, a, vocab, n_dense):
    nn = torch.nn
    F = torch.nn.functional
    E, D = a.emb_dim, 2 * a.emb_dim

    def linear(n_in, n_out, bias=True):
        lin = nn.Linear(n_in, n_out, bias=bias)
        with torch.no_grad():
            r = math.sqrt(6.0 / (n_in + n_out))  # Xavier-uniform (params.c)
            lin.weight.uniform_(-r, r)
            if bias:
                lin.bias.zero_()
        return lin

    class Dice(nn.Module):
        """p x + (1 - p) alpha x, p = sigmoid of x normalised per channel by
        the batch's statistics (running ones in eval), no affine part."""

        def __init__(self, width):
            super().__init__()
            self.alpha = nn.Parameter(torch.zeros(width))
            self.bn = nn.BatchNorm1d(width, eps=DICE_EPS, momentum=MOMENTUM, affine=False)

        def forward(self, x):
            if self.training and x.shape[0] == 1:  # as nn.h: variance 0, z = 0
                with torch.no_grad():
                    self.bn.running_mean.mul_(1 - MOMENTUM).add_(MOMENTUM * x[0])
                    self.bn.running_var.mul_(1 - MOMENTUM)
                p = torch.full_like(x, 0.5)
            else:
                p = torch.sigmoid(self.bn(x))
            return x * (self.alpha + (1 - self.alpha) * p)

    def act(name, width):
        if name == "dice":
            return Dice(width)
        if name == "prelu":
            return nn.PReLU(width, init=0.25)
        return nn.ReLU()

    class DIN(nn.Module):
        def __init__(self):
            super().__init__()
            for name in ("user", "item", "gender", "age", "occupation", "zip", "genre"):
                e = nn.Embedding(int(vocab[name]), E, padding_idx=0)
                with torch.no_grad():
                    e.weight.normal_(0.0, 0.05)
                    e.weight[0].zero_()
                setattr(self, name + "_emb", e)
            widths = [a.att_hidden] + ([a.att_hidden_second] if a.att_hidden_second else [])
            layers, prev = [], 4 * D
            for w in widths:
                layers += [linear(prev, w), act(a.att_activation, w)]
                prev = w
            layers.append(linear(prev, 1, bias=not a.att_softmax))
            self.att = nn.Sequential(*layers)
            layers, prev = [], 9 * E + n_dense
            for w in a.hidden:
                layers.append(linear(prev, w, bias=not a.dnn_bn))
                if a.dnn_bn:
                    layers.append(nn.BatchNorm1d(w, eps=BN_EPS, momentum=MOMENTUM))
                layers.append(act(a.dnn_activation, w))
                prev = w
            layers.append(linear(prev, 1))
            self.dnn = nn.Sequential(*layers)

        def represent(self, item, genres, n_genres):
            """[item | mean of its genres' rows] (.., 2E); padding ids are 0 (a zero row)."""
            g = self.genre_emb(genres).sum(dim=-2) / n_genres.clamp(min=1).unsqueeze(-1)
            return torch.cat([self.item_emb(item), g], dim=-1)

        def forward(self, b):
            B, L = b["hist"].shape
            q = self.represent(b["item"], b["genres"], b["n_genres"].to(torch.float32))
            pos = torch.arange(L).unsqueeze(0)
            n = b["n_hist"].unsqueeze(1)
            valid = pos < n
            if a.hist_window:
                valid &= pos >= n - a.hist_window
            row = torch.arange(B).unsqueeze(1).expand(B, L)[valid]       # (N)
            h = b["hist"][valid]                                           # (N)
            k = self.represent(h, item_g.index_select(0, h), item_n.index_select(0, h))
            qr = q.index_select(0, row)
            s = self.att(torch.cat([qr, k, qr - k, qr * k], dim=1)).squeeze(1)
            if a.att_softmax:
                z = torch.full((B, L), -math.inf).masked_scatter(valid, s)
                p = torch.softmax(z, dim=1).nan_to_num(0.0)  # an empty row: zeros
                w = p[valid]
            else:
                w = s
            pool = torch.zeros(B, D).index_add(0, row, w.unsqueeze(1) * k)
            x = torch.cat([self.user_emb(b["user"]), self.gender_emb(b["gender"]),
                           self.age_emb(b["age"]), self.occupation_emb(b["occupation"]),
                           self.zip_emb(b["zip"]), pool, q, b["dense"]], dim=1)
            return self.dnn(x).squeeze(1)

    item_g = item_n = None

    def set_items(g, n):
        nonlocal item_g, item_n
        item_g, item_n = g, n

    return DIN, set_items


def main(argv):
    a = parse_args(argv)

    t0 = time.perf_counter()
    try:
        meta, splits = ref.load_store(a.data, a.max_train, fields=FIELDS)
        vocab = meta["vocab_sizes"]
        g, n = load_item_genres(a.data, int(vocab["item"]), int(vocab["genre"]))
    except ref.StoreError as e:
        log(str(e))
        return e.code
    load_s = time.perf_counter() - t0

    torch, info = ref.setup_torch(a.threads, a.blas_threads, a.seed, a.keep_denormals)
    n_dense = len(meta["dense_fields"])
    L = int(meta["options"]["hist_len"])
    if not meta.get("has_demographics") or n_dense == 0 or L == 0:
        log("model 'din' needs demographics, dense features and histories; store '%s' "
            "lacks one" % a.data)
        return 65
    tr = splits["train"]
    n_train = tr["n"]
    if n_train == 0:
        log("store '%s' has no train records" % a.data)
        return 65

    def to_torch(d):
        return {k: torch.from_numpy(np.ascontiguousarray(d[k])) for k in KEYS + ("label",)}

    tens = {name: to_torch(d) for name, d in splits.items()}
    DIN, set_items = build_model(torch, a, vocab, n_dense)
    set_items(torch.from_numpy(g), torch.from_numpy(n))
    model = DIN()
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(a.seed)

    hyper = {"emb_dim": a.emb_dim, "hidden": a.hidden, "att_activation": a.att_activation,
             "att_softmax": a.att_softmax, "att_hidden": [a.att_hidden, a.att_hidden_second],
             "dnn_activation": a.dnn_activation, "dnn_bn": a.dnn_bn,
             "hist_window": a.hist_window, "lr": a.lr}
    common = {**info, "optimizer": "adam"}
    emit({"impl": "torch", "model": "din", "load_s": round(load_s, 3), "train": n_train,
          "valid": splits["valid"]["n"], "test": splits["test"]["n"], **hyper,
          "parameters": n_params, **common})
    log("din: %d parameters; %d train, %d valid, %d test records loaded in %.2fs; %d torch "
        "threads, %s OpenBLAS threads (core %s), batch %d, adam lr %g"
        % (n_params, n_train, splits["valid"]["n"], splits["test"]["n"], load_s,
           torch.get_num_threads(), info["blas_threads"], info["blas_core"], a.batch, a.lr))

    def evaluate(t):
        model.eval()
        out = []
        n = t["label"].shape[0]
        with torch.no_grad():
            for s in range(0, n, a.eval_batch):
                out.append(model({k: v[s:s + a.eval_batch] for k, v in t.items()}))
        model.train()
        return torch.cat(out).numpy()

    trt = tens["train"]
    B = a.batch
    for epoch in range(1, a.epochs + 1):
        perm = torch.randperm(n_train, generator=gen)
        model.train()
        loss_sum = torch.zeros((), dtype=torch.float64)
        t0 = time.perf_counter()
        for s in range(0, n_train, B):
            idx = perm[s:s + B]
            b = {k: trt[k].index_select(0, idx) for k in KEYS}
            y = trt["label"].index_select(0, idx)
            loss = loss_fn(model(b), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach().double() * y.numel()
        secs = time.perf_counter() - t0
        train_loss = float(loss_sum) / n_train
        if not math.isfinite(train_loss):
            log("loss is not finite in epoch %d; try a lower --lr" % epoch)
            return 65
        rate = n_train / secs
        for split in ("valid", "test"):
            t = tens[split]
            n = t["label"].shape[0]
            if n == 0:
                continue
            te = time.perf_counter()
            logits = evaluate(t)
            if not np.all(np.isfinite(logits)):
                log("the model scored a %s row as non-finite" % split)
                return 65
            y = t["label"].numpy()
            auc = ref.auc_exact(logits, y)
            line = {"impl": "torch", "model": "din", "split": split, "epoch": epoch, "n": n,
                    "auc": round(auc, 6) if math.isfinite(auc) else None,
                    "logloss": round(ref.logloss(logits, y), 6),
                    "positive_rate": round(float(y.mean()), 4),
                    "train_loss": round(train_loss, 6), "samples_per_s": round(rate),
                    "epoch_s": round(secs, 3), "eval_s": round(time.perf_counter() - te, 3),
                    "threads": a.threads, "batch": a.batch, **hyper, **common}
            if split == "test" and epoch == a.epochs:
                line["final"] = True
            emit(line)
        log("epoch %d: train loss %.4f, %.0f samples/s (%.1fs)" % (epoch, train_loss, rate, secs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
