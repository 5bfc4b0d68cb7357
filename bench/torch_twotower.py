#!/usr/bin/python3
"""PyTorch twin of hogrec's twotower model (LibRecommender's TwoTower).

    bench/torch_twotower.py --data STORE [--loss softmax|cross_entropy|max_margin]
                            [--epochs 1] [--batch 256] [--lr 0.001] [--emb-dim 16]
                            [--hidden 128,64,32] [--norm-embed] [--temperature 1.0]
                            [--no-correction] [--remove-accidental-hits]
                            [--num-neg 1] [--margin 1.0] [--ssl-pattern none|rfm|
                            rfm-complementary|cfm] [--alpha 0.2] [--dropout 0]
                            [--threads 2]
                            [--blas-threads 1] [--seed 1] [--max-train N]
                            [--eval-batch 16384] [--keep-denormals]

Reads a hogrec store (docs/FORMAT.md) with bench/torch_ref.py's loader and
trains the two-tower retrieval model of LibRecommender
(massquantity/LibRecommender: libreco/algorithms/two_tower.py, the towers
from libreco/tfops dense_nn), scored by a dot product, then evaluates it on
valid and test after every epoch.  Debian packages only (python3-torch
1.13, python3-numpy, python3-lmdb, python3-msgpack).

Parameters (E = --emb-dim, default 16), every table Glorot/Xavier-uniform
+-sqrt(6 / (rows + cols)):
  * embedding tables user, item, gender, age, occupation, zip and genre, of
    the store's vocabulary sizes; row 0 is padding: zeroed, never updated;
  * the dense-field table D (4, E), one row per meta["dense_fields"] entry,
    no padding row (LibRecommender's "dense_feat": a dense value enters as
    its field's learned vector scaled by the value).

User tower input (8E):
  [user[u] | gender | age | occupation | zip | mean of item[h] over hist |
   dense[0] * D[0] | dense[1] * D[1]]
Item tower input (4E):
  [item[i] | mean of genre[g] over the item's genres | dense[2] * D[2] |
   dense[3] * D[3]]
The history uses the item tower's own item table.  A mean is the sum over
the first n slots divided by n, as torch_ref.py's bag_mean (an id 0 inside
the length counts in the divisor; an empty list gives zeros).

Each tower (own weights) is dense_nn(use_bn=True, bn_after_activation=True):
BatchNorm1d on the input, then for each width of --hidden (default
128,64,32) a Linear layer (Glorot-uniform weight, bias 0), followed, for
every layer but the last, by ReLU, BatchNorm1d and, with --dropout p > 0,
torch.nn.Dropout(p) (inverted, active in training mode only); the last
layer is linear.  BatchNorm: eps 1e-3, momentum 0.01 (PyTorch's convention
for TF's 0.99), gamma 1, beta 0; training normalises with the batch's statistics
(biased variance) and updates the running ones (unbiased variance, as
PyTorch and nn_running_stats_update() in models/nn/nn.h); eval uses the
running ones.  A training batch of one row (the last one of an epoch can
be) normalises to beta with zero gradients to its input, as nn.h's
nn_batchnorm_forward, where torch.nn.BatchNorm1d would refuse; its running
variance update uses the variance 0.

--norm-embed L2-normalises each tower's output.  Score = dot(user vector,
item vector), a logit.

Losses (--loss):
  softmax (default; in-batch sampled softmax, Yi et al. 2019): trains on the
      train split's positive records (label 1) only, shuffled every epoch, in
      batches of --batch.  With U, V the batch's user and item vectors,
          logits[i][j] = (U V^T)[i][j] / tau - log(clip(q_j, 1e-8, 1))
      q_j = (train positives of item_j) / (train positives): the logQ
      correction (--no-correction leaves it out).  tau = --temperature
      (default 1.0); a value <= 0 makes tau a learnable scalar, initialised
      to 1.0 and trained by Adam with the rest (divided by as it is: nothing
      keeps it positive here; the lines report its value).
      --remove-accidental-hits sets logits[i][j], j != i, to the float32
      minimum where item_j == item_i (LibRecommender masks with
      tf.float32.min).  Loss: cross entropy with the diagonal as targets,
      the mean over the rows.
  cross_entropy: the positives again, each with --num-neg (default 1)
      sampled negatives: the same user with an item drawn, afresh every
      epoch, uniformly from the item ids 1 .. n_items-1 other than the
      positive's (sampler "random", as torch_ref.py and models/sampler.h).
      A batch is --batch positives with their negatives; loss: the mean
      binary cross-entropy on the logits over its --batch * (1 + num_neg)
      rows (label 1 the positive, 0 each negative).
  max_margin: the same positives and negatives; loss: the mean over the
      --batch * num_neg (positive, negative) pairs of
      relu(margin - s_pos + s_neg), --margin default 1.0.

Self-supervised term (--ssl-pattern, softmax only, as models/twotower.c
and LibRecommender's libreco/feature/ssl.py): every batch of Bb positives
also draws Bb item ids uniformly from 1 .. n_items-1 (without replacement
when Bb < n_items - 1), with their genres and dense values from the
store's `items` table (as of the end of train).  Each goes through the item
tower twice, as a left and a right view; a view's masked fields (of the
item id and the genre bag; the dense fields are never masked) enter as
zero vectors.  Masks, one pair per batch: rfm, each view masks F // 2 of
the F = 2 fields, drawn independently; rfm-complementary, a random half
left, the rest right; cfm, a random seed field s, the left view masks the
F // 2 other fields of highest mutual information with s (over the train
positives, computed once), the right view the rest.  Loss:
alpha (--alpha, default 0.2) times the cross entropy of
(left @ right^T) / tau with the diagonal as targets (no log q, no
accidental hits), added to the softmax loss; the lines report it as
"ssl_loss" (the epoch's mean, alpha applied).  The views run the tower in
training mode, so each updates the BatchNorm running statistics.

A negative's item tower input: the negative item's id, the negative item's
genres and the positive record's item dense values (dense[2], dense[3]).
The genres come from an item -> genres table built from the train, valid
and test records (in that order; the first record of the item wins; ids 0
are not entered).  The dense values are the positive's because a record
holds dense features only for its own item at its own time, and a store's
`items` database holds them only as of the end of train; hogrec's twotower
does the same.

How a batch goes through the towers with sampled negatives (LibRecommender
does not settle it for hogrec, see below): the user tower runs once on the
batch's B positive records (B rows: a positive and its negatives share the
user); the item tower runs once on the B positives followed by their
B * num_neg negatives (B (1 + num_neg) rows), so one set of BatchNorm
statistics covers positives and negatives together.  For cross_entropy this
is LibRecommender's pointwise batch (users repeated 1 + num_neg times) up to
the user tower's running variance (B / (B - 1) instead of
B (1 + N) / (B (1 + N) - 1)); forward and gradients are the same, each row
being repeated equally often.  For max_margin LibRecommender runs the item
tower twice, on the positives and on the negatives, each with its own batch
statistics; here they share them.

Evaluation, after every epoch, in eval mode: every valid and test record
(both labels; an explicit store) is scored by the dot of its user vector
and its own item vector (its item, genres and dense values); exact AUC
(ties share their average rank) on the scores and logloss on sigmoid(score)
clipped to [1e-7, 1 - 1e-7], as torch_ref.py and trainer/eval.c.  (The
softmax and max_margin losses do not calibrate the dot as a probability:
their logloss is reported but means little.)  On an implicit store the
valid and test records are all positives: AUC null, as torch_ref.py.

Optimiser: torch.optim.Adam over every parameter (lr --lr, default 1e-3;
betas 0.9/0.999, eps 1e-8; no weight decay; dense gradients for the
embedding tables).  LibRecommender's TwoTower uses Adam's eps 1e-5;
hogrec's twotower and this twin use 1e-8.

stdout, JSON lines (compact):
  {"impl":"torch","model":"twotower","load_s":..,"train":N,
   "train_positives":P,"valid":N,"test":N,"loss":..,...}          once, first
  {"impl":"torch","model":"twotower","split":"valid"|"test","epoch":e,"n":..,
   "auc":..,"logloss":..,"positive_rate":..,"train_loss":..,"ssl_loss":..,
   "samples_per_s":..,"epoch_s":..,"eval_s":..,"threads":..,"batch":..,
   "loss":..,"dropout":..,...,"torch":..,"blas_core":..,...}  per epoch and split
plus the loss's own settings (softmax: "temperature" (the learned value with
"learn_temperature":true), "correction", "remove_accidental_hits",
"ssl_pattern" and with SSL "alpha"; cross_entropy and max_margin: "num_neg",
"sampler"; max_margin: "margin").

samples_per_s = train positives / wall seconds of the epoch's training loop
(shuffling, negative sampling, batch gathering, forward, backward,
optimiser step), for every loss: the sampled negatives are not counted (as
bin/trainer's samples_per_s counts records).  train_loss is the epoch's
mean of the loss's terms (each batch's loss, before its update, weighted by
its rows (softmax), rows with negatives (cross_entropy) or pairs
(max_margin)); ssl_loss the same mean of the SSL term (0 without one), as
bin/trainer reports its terms.  With SSL samples_per_s includes drawing the
views' items and masks and their two item-tower passes.

Differences from bin/trainer, as torch_ref.py's (see its docstring):
synchronous training (--threads sizes torch's OpenMP pool, --blas-threads
OpenBLAS's, default 1), dense Adam over every row instead of lazy rows, eps
inside the bias correction, flush-to-zero on the main thread only
(--keep-denormals skips it), and different random streams.

Exit status: 0 ok, 64 bad option, 65 bad store (no demographics, not the 4
dense fields, no train positives, too few items to sample from) or
non-finite loss, 66 store missing (as torch_ref.py and bin/trainer).
"""
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ref as ref  # noqa: E402  (the store loader, threads, metrics, output)

ref.PROG = "torch_twotower"
log, emit = ref.log, ref.emit

LOSSES = ("softmax", "cross_entropy", "max_margin")
SSL_PATTERNS = ("none", "rfm", "rfm-complementary", "cfm")
SSL_FIELDS = 2  # the item id and the genre bag: the item tower's sparse slots
DEFAULT_HIDDEN = [128, 64, 32]
BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # PyTorch's convention: TF's momentum (decay) 0.99
PROB_MIN, PROB_MAX = 1e-8, 1.0  # the logQ share's clip (models/sampler.h)
USER_KEYS = ("user", "gender", "age", "occupation", "zip", "hist", "n_hist", "dense")
ITEM_KEYS = ("item", "genres", "n_genres", "dense")
FIELDS = ("user", "item", "gender", "age", "occupation", "zip", "label", "genres", "hist",
          "dense")


def parse_args(argv):
    ap = ref.Parser(description="PyTorch twin of hogrec's twotower (see the module docstring).")
    ap.add_argument("--data", required=True, help="hogrec store (LMDB directory)")
    ap.add_argument("--loss", choices=LOSSES, default="softmax")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=256, help="positives per minibatch")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="torch intra-op threads (default: cores)")
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="OpenBLAS threads (default 1, as torch_ref.py)")
    ap.add_argument("--emb-dim", type=int, default=16)
    ap.add_argument("--hidden", default=",".join(map(str, DEFAULT_HIDDEN)),
                    help="tower widths, comma separated (default 128,64,32)")
    ap.add_argument("--norm-embed", action="store_true",
                    help="L2-normalise each tower's output")
    ap.add_argument("--temperature", type=float, default=1.0,
                    help="softmax: logits divided by it; <= 0: learned, from 1.0")
    ap.add_argument("--no-correction", action="store_true",
                    help="softmax: no logQ (sampling-bias) correction")
    ap.add_argument("--remove-accidental-hits", action="store_true",
                    help="softmax: mask in-batch negatives with the row's own item")
    ap.add_argument("--num-neg", type=int, default=1,
                    help="cross_entropy, max_margin: negatives per positive (default 1)")
    ap.add_argument("--margin", type=float, default=1.0, help="max_margin: margin")
    ap.add_argument("--ssl-pattern", choices=SSL_PATTERNS, default="none",
                    help="softmax: self-supervised term over feature-masked item views")
    ap.add_argument("--alpha", type=float, default=0.2, help="weight of the SSL term")
    ap.add_argument("--dropout", type=float, default=0.0,
                    help="dropout rate after each hidden layer's BatchNorm (0 .. 0.9)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-train", type=int, default=None,
                    help="use only the first N train records (time order)")
    ap.add_argument("--eval-batch", type=int, default=16384)
    ap.add_argument("--keep-denormals", action="store_true",
                    help="do not call torch.set_flush_denormal(True)")
    a = ap.parse_args(argv)
    if a.epochs < 1 or a.batch < 1 or a.threads < 1 or a.emb_dim < 1 or a.eval_batch < 1:
        ap.error("--epochs, --batch, --threads, --emb-dim and --eval-batch must be >= 1")
    if a.blas_threads < 1:
        ap.error("--blas-threads must be >= 1")
    if not 1 <= a.num_neg <= 100:
        ap.error("--num-neg must be 1 .. 100")
    if not a.lr > 0 or not math.isfinite(a.lr):
        ap.error("--lr must be positive")
    if not math.isfinite(a.temperature):
        ap.error("--temperature must be finite")
    if not math.isfinite(a.margin):
        ap.error("--margin must be finite")
    if a.ssl_pattern != "none" and a.loss != "softmax":
        ap.error("--ssl-pattern %s needs --loss softmax, not %s" % (a.ssl_pattern, a.loss))
    if not 0 <= a.alpha <= 100:
        ap.error("--alpha must be 0 .. 100")
    if not 0 <= a.dropout <= 0.9:
        ap.error("--dropout must be 0 .. 0.9")
    if a.max_train is not None and a.max_train < 1:
        ap.error("--max-train must be >= 1")
    try:
        a.hidden = [int(x) for x in a.hidden.split(",")]
    except ValueError:
        ap.error("--hidden: '%s' is not a list of widths" % a.hidden)
    if not a.hidden or min(a.hidden) < 1:
        ap.error("--hidden: widths must be >= 1")
    return a


def build_model(torch, vocab, E, hidden, norm_embed, learn_temperature, dropout):
    nn = torch.nn
    F = torch.nn.functional

    def glorot_(w):
        a = math.sqrt(6.0 / (w.shape[0] + w.shape[1]))
        with torch.no_grad():
            w.uniform_(-a, a)

    class BatchNorm(nn.BatchNorm1d):
        """BatchNorm1d(eps 1e-3, momentum 0.01); a one-row training batch
        normalises to beta (nn_batchnorm_forward) instead of raising."""

        def __init__(self, D):
            super().__init__(D, eps=BN_EPS, momentum=BN_MOMENTUM)

        def forward(self, x):
            if not (self.training and x.shape[0] == 1):
                return super().forward(x)
            xm = x - x.mean(dim=0, keepdim=True)  # exactly 0, gradient 0
            var = (xm * xm).mean(dim=0)
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(x[0].detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach(), alpha=m)
                self.num_batches_tracked += 1
            return xm * torch.rsqrt(var + self.eps) * self.weight + self.bias

    def tower(n_in):
        """dense_nn(use_bn=True, bn_after_activation=True), last layer linear."""
        layers, prev = [BatchNorm(n_in)], n_in
        for k, w in enumerate(hidden):
            lin = nn.Linear(prev, w)
            glorot_(lin.weight)
            with torch.no_grad():
                lin.bias.zero_()
            layers.append(lin)
            if k < len(hidden) - 1:
                layers += [nn.ReLU(), BatchNorm(w)]
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
            prev = w
        return nn.Sequential(*layers)

    class TwoTower(nn.Module):
        def __init__(self):
            super().__init__()
            for name in ("user", "item", "gender", "age", "occupation", "zip", "genre"):
                e = nn.Embedding(vocab[name], E, padding_idx=0)
                glorot_(e.weight)
                with torch.no_grad():
                    e.weight[0].zero_()
                setattr(self, name + "_emb", e)
            self.dense_emb = nn.Parameter(torch.empty(4, E))
            glorot_(self.dense_emb)
            self.user_tower = tower(8 * E)
            self.item_tower = tower(4 * E)
            if learn_temperature:
                self.temperature = nn.Parameter(torch.ones(()))

        @staticmethod
        def bag_mean(emb, ids, lens):
            # torch_ref.py's DSSM.bag_mean: the sum over the padded ids (row 0
            # stays zero) divided by the length; zeros for an empty bag
            s = F.embedding_bag(ids, emb.weight, mode="sum", padding_idx=0)
            return s / lens.clamp(min=1).unsqueeze(1)

        def dense_part(self, values, first):
            # [values[:, 0] * D[first] | values[:, 1] * D[first + 1]]
            d = values.unsqueeze(2) * self.dense_emb[first:first + 2].unsqueeze(0)
            return d.reshape(values.shape[0], -1)

        def out(self, x):
            return F.normalize(x, dim=1) if norm_embed else x

        def user_vec(self, b):
            x = torch.cat([self.user_emb(b["user"]), self.gender_emb(b["gender"]),
                           self.age_emb(b["age"]), self.occupation_emb(b["occupation"]),
                           self.zip_emb(b["zip"]),
                           self.bag_mean(self.item_emb, b["hist"], b["n_hist"]),
                           self.dense_part(b["dense"][:, 0:2], 0)], dim=1)
            return self.out(self.user_tower(x))

        def item_vec(self, item, genres, n_genres, item_dense, masked=()):
            """item_dense: the item's two dense values (dense[2], dense[3]);
            masked: the SSL fields (0 the id, 1 the genres) entered as zeros."""
            zero = torch.zeros(item.shape[0], E)
            x = torch.cat([zero if 0 in masked else self.item_emb(item),
                           zero if 1 in masked else
                           self.bag_mean(self.genre_emb, genres, n_genres),
                           self.dense_part(item_dense, 2)], dim=1)
            return self.out(self.item_tower(x))

    return TwoTower()


def item_genres_table(splits, n_items, width):
    """(n_items, width) genres and (n_items) lengths of each item id, from the
    first train/valid/test record (in that order) holding it; row 0 empty."""
    items = np.concatenate([splits[s]["item"] for s in ("train", "valid", "test")])
    genres = np.concatenate([splits[s]["genres"][:, :width] for s in ("train", "valid", "test")])
    lens = np.concatenate([splits[s]["n_genres"] for s in ("train", "valid", "test")])
    ids, first = np.unique(items, return_index=True)
    keep = ids > 0
    ids, first = ids[keep], first[keep]
    g = np.zeros((n_items, width), dtype=np.int64)
    n = np.zeros(n_items, dtype=np.int32)
    g[ids] = genres[first]
    n[ids] = lens[first]
    return g, n


def items_table(path, meta, n_items):
    """Every item's genres (n_items, width), genre count and two dense values
    from the store's `items` table (as of the end of train); row 0 empty."""
    import lmdb
    import msgpack
    names = meta["item_fields"]
    gi, di = names.index("genres"), names.index("dense")
    rows = {}
    env = lmdb.open(path, readonly=True, lock=False, max_dbs=8, subdir=True)
    try:
        with env.begin() as txn:
            db = env.open_db(b"items", txn=txn, create=False)
            for k, v in txn.cursor(db=db):
                r = msgpack.unpackb(v)
                rows[int.from_bytes(k, "big")] = (r[gi], r[di])
    finally:
        env.close()
    width = max([1] + [len(g) for g, _ in rows.values()])
    genres = np.zeros((n_items, width), dtype=np.int64)
    n_genres = np.zeros(n_items, dtype=np.int32)
    dense = np.zeros((n_items, 2), dtype=np.float32)
    for i, (g, d) in rows.items():
        if 0 < i < n_items:
            genres[i, :len(g)] = g
            n_genres[i] = len(g)
            dense[i] = d
    return genres, n_genres, dense


def cfm_partners(pos_items, genres, n_genres):
    """For each seed field s, the SSL_FIELDS // 2 other fields of highest
    mutual information with it over the train positives (each positive
    counting as its item's values: the id, the genre set), ties to the
    lower field; and the information matrix (nats)."""
    sets = [tuple(sorted(genres[i, :n_genres[i]].tolist())) for i in range(len(n_genres))]
    cols = [pos_items.tolist(), [sets[i] for i in pos_items]]

    def entropy(xs):
        _, c = np.unique(np.array([hash(x) for x in xs], dtype=np.int64), return_counts=True)
        p = c / c.sum()
        return float(-(p * np.log(p)).sum())
    h = [entropy(c) for c in cols]
    mi = np.full((SSL_FIELDS, SSL_FIELDS), -1.0)
    for f in range(SSL_FIELDS):
        for g in range(f + 1, SSL_FIELDS):
            mi[f, g] = mi[g, f] = max(0.0, h[f] + h[g] - entropy(list(zip(cols[f], cols[g]))))
    left = []
    for s_ in range(SSL_FIELDS):
        order = sorted((f for f in range(SSL_FIELDS) if f != s_), key=lambda f: (-mi[s_, f], f))
        left.append(tuple(order[:SSL_FIELDS // 2]))
    return left, mi


def main(argv):
    a = parse_args(argv)

    t0 = time.perf_counter()
    try:
        meta, splits = ref.load_store(a.data, a.max_train, fields=FIELDS)
    except ref.StoreError as e:
        log(str(e))
        return e.code
    load_s = time.perf_counter() - t0

    torch, info = ref.setup_torch(a.threads, a.blas_threads, a.seed, a.keep_denormals)
    F = torch.nn.functional

    if not meta.get("has_demographics"):
        log("model 'twotower' needs user demographics, which store '%s' lacks" % a.data)
        return 65
    if len(meta["dense_fields"]) != 4:
        log("model 'twotower' expects the 4 dense fields of format 1")
        return 65
    vocab = meta["vocab_sizes"]
    n_items = int(vocab["item"])
    for name, d in splits.items():
        for f in ("user", "item", "gender", "age", "occupation", "zip"):
            if d["n"] and (d[f].min() < 0 or d[f].max() >= int(vocab[f])):
                log("store '%s': a %s record's %s id is outside its vocabulary of %d"
                    % (a.data, name, f, int(vocab[f])))
                return 65
        if d["n"] and (d["genres"].max() >= int(vocab["genre"]) or d["hist"].max() >= n_items):
            log("store '%s': a %s record's genre or history id is outside its vocabulary"
                % (a.data, name))
            return 65
    tr = splits["train"]
    n_train = tr["n"]
    pos_rows = np.flatnonzero(tr["label"] > 0.5)
    P = int(pos_rows.size)
    if P == 0:
        log("store '%s' has no positive train records" % a.data)
        return 65
    sampled = a.loss != "softmax"
    if sampled and n_items < 3:
        log("loss '%s' samples negatives among item ids other than the positive's; "
            "store '%s' has %d item ids" % (a.loss, a.data, n_items - 1))
        return 65
    N = a.num_neg if sampled else 0
    learn_t = a.loss == "softmax" and a.temperature <= 0

    # Padded bags trimmed to the widest bag in the data (the rest is padding).
    gw = max(1, int(max(s["n_genres"].max(initial=0) for s in splits.values())))
    hw = max(1, int(max(s["n_hist"].max(initial=0) for s in splits.values())))

    def to_torch(d, rows=None):
        sel = (lambda v: v) if rows is None else (lambda v: v[rows])
        t = {k: torch.from_numpy(np.ascontiguousarray(sel(d[k])))
             for k in ("user", "item", "gender", "age", "occupation", "zip", "n_genres",
                       "n_hist", "dense", "label")}
        t["genres"] = torch.from_numpy(np.ascontiguousarray(sel(d["genres"][:, :gw])))
        t["hist"] = torch.from_numpy(np.ascontiguousarray(sel(d["hist"][:, :hw])))
        return t

    tp = to_torch(tr, pos_rows)  # the train positives
    ev = {s: to_torch(splits[s]) for s in ("valid", "test")}
    counts = np.bincount(tr["item"][pos_rows], minlength=n_items)
    logq = torch.from_numpy(np.log(np.clip(counts / P, PROB_MIN, PROB_MAX)).astype(np.float32))
    if sampled:
        g, n = item_genres_table(splits, n_items, gw)
        item_g, item_ng = torch.from_numpy(g), torch.from_numpy(n)

    ssl = a.ssl_pattern != "none"
    if ssl:
        if n_items < 2:
            log("--ssl-pattern needs items; store '%s' has none" % a.data)
            return 65
        sg, sng, sdense = (torch.from_numpy(x) for x in items_table(a.data, meta, n_items))
        if a.ssl_pattern == "cfm":
            cfm_left, cfm_mi = cfm_partners(tr["item"][pos_rows], sg.numpy(), sng.numpy())
            log("cfm: mutual information %s; left masks by seed field %s"
                % (np.round(cfm_mi, 4).tolist(), cfm_left))

    model = build_model(torch, vocab, a.emb_dim, a.hidden, a.norm_embed, learn_t, a.dropout)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    gen = torch.Generator().manual_seed(a.seed)

    def temperature():
        return float(model.temperature.detach()) if learn_t else a.temperature

    hyper = {"loss": a.loss, "emb_dim": a.emb_dim, "hidden": a.hidden,
             "norm_embed": a.norm_embed, "lr": a.lr, "dropout": a.dropout}
    if a.loss == "softmax":
        hyper.update({"temperature": temperature(), "learn_temperature": learn_t,
                      "correction": not a.no_correction,
                      "remove_accidental_hits": a.remove_accidental_hits,
                      "ssl_pattern": a.ssl_pattern})
        if ssl:
            hyper["alpha"] = a.alpha
    else:
        hyper.update({"num_neg": N, "sampler": "random"})
        if a.loss == "max_margin":
            hyper["margin"] = a.margin
    common = {**info, "optimizer": "adam"}
    emit({"impl": "torch", "model": "twotower", "load_s": round(load_s, 3), "train": n_train,
          "train_positives": P, "valid": splits["valid"]["n"], "test": splits["test"]["n"],
          **hyper, "parameters": n_params, **common})
    log("twotower (%s): %d parameters; %d train records (%d positives), %d valid, %d test, "
        "loaded in %.2fs; %d torch threads, %s OpenBLAS threads (core %s), batch %d, adam lr %g"
        % (a.loss, n_params, n_train, P, splits["valid"]["n"], splits["test"]["n"], load_s,
           torch.get_num_threads(), info["blas_threads"], info["blas_core"], a.batch, a.lr))

    def evaluate(t):
        model.eval()
        out = []
        n = t["label"].shape[0]
        with torch.no_grad():
            for s in range(0, n, a.eval_batch):
                b = {k: v[s:s + a.eval_batch] for k, v in t.items()}
                u = model.user_vec(b)
                v = model.item_vec(b["item"], b["genres"], b["n_genres"], b["dense"][:, 2:4])
                out.append((u * v).sum(dim=1))
        model.train()
        return torch.cat(out).numpy()

    def ssl_masks():
        """The batch's (left, right) masked fields."""
        half = SSL_FIELDS // 2
        if a.ssl_pattern == "cfm":
            s_ = int(torch.randint(SSL_FIELDS, (1,), generator=gen))
            left = cfm_left[s_]
            return left, tuple(f for f in range(SSL_FIELDS) if f not in left)
        perm = torch.randperm(SSL_FIELDS, generator=gen).tolist()
        if a.ssl_pattern == "rfm-complementary":
            return tuple(perm[:half]), tuple(perm[half:])
        return tuple(perm[:half]), tuple(torch.randperm(SSL_FIELDS, generator=gen)[:half].tolist())

    def ssl_loss(Bb):
        """alpha times the in-batch softmax of Bb random items' two views."""
        n = n_items - 1
        if Bb < n:
            si = torch.randperm(n, generator=gen)[:Bb] + 1
        else:
            si = torch.randint(1, n_items, (Bb,), generator=gen)
        ml, mr = ssl_masks()
        g, ng, d = sg.index_select(0, si), sng.index_select(0, si), sdense.index_select(0, si)
        left = model.item_vec(si, g, ng, d, ml)
        right = model.item_vec(si, g, ng, d, mr)
        z = (left @ right.t()) / (model.temperature if learn_t else a.temperature)
        return a.alpha * F.cross_entropy(z, torch.arange(Bb))

    B = a.batch
    if a.loss == "cross_entropy":
        ce_y = torch.zeros(1, 1 + N)
        ce_y[0, 0] = 1.0
    for epoch in range(1, a.epochs + 1):
        model.train()
        loss_sum = torch.zeros((), dtype=torch.float64)
        ssl_sum = torch.zeros((), dtype=torch.float64)
        terms = 0
        t0 = time.perf_counter()
        perm = torch.randperm(P, generator=gen)
        if sampled:
            # num_neg per positive, uniform over 1 .. n-1 without the
            # positive's id: a draw from 1 .. n-2 moved up by one from the
            # positive's id on (torch_ref.py, sampler.c draw_random())
            pos_i = tp["item"].index_select(0, perm)
            neg = torch.randint(1, n_items - 1, (P, N), generator=gen)
            neg += (neg >= pos_i.unsqueeze(1)).to(neg.dtype)
        for s in range(0, P, B):
            idx = perm[s:s + B]
            Bb = idx.numel()
            b = {k: tp[k].index_select(0, idx) for k in USER_KEYS + ITEM_KEYS}
            u = model.user_vec(b)
            item_dense = b["dense"][:, 2:4]
            if not sampled:
                v = model.item_vec(b["item"], b["genres"], b["n_genres"], item_dense)
                logits = u @ v.t()
                logits = logits / (model.temperature if learn_t else a.temperature)
                if not a.no_correction:
                    logits = logits - logq.index_select(0, b["item"]).unsqueeze(0)
                if a.remove_accidental_hits:
                    it = b["item"]
                    hit = (it.unsqueeze(0) == it.unsqueeze(1)) & ~torch.eye(Bb, dtype=torch.bool)
                    logits = logits.masked_fill(hit, torch.finfo(logits.dtype).min)
                loss = F.cross_entropy(logits, torch.arange(Bb))
                n_terms = Bb
                if ssl:
                    sl = ssl_loss(Bb)
                    ssl_sum += sl.detach().double() * Bb
            else:
                ni = neg[s:s + B].reshape(-1)  # (Bb * N), positive by positive
                v = model.item_vec(torch.cat([b["item"], ni]),
                                   torch.cat([b["genres"], item_g.index_select(0, ni)]),
                                   torch.cat([b["n_genres"], item_ng.index_select(0, ni)]),
                                   torch.cat([item_dense, item_dense.repeat_interleave(N, 0)]))
                s_pos = (u * v[:Bb]).sum(dim=1)
                s_neg = (u.unsqueeze(1) * v[Bb:].view(Bb, N, -1)).sum(dim=2)
                if a.loss == "cross_entropy":
                    z = torch.cat([s_pos.unsqueeze(1), s_neg], dim=1)
                    loss = F.binary_cross_entropy_with_logits(z, ce_y.expand(Bb, -1))
                    n_terms = Bb * (1 + N)
                else:
                    loss = F.relu(a.margin - s_pos.unsqueeze(1) + s_neg).mean()
                    n_terms = Bb * N
            opt.zero_grad(set_to_none=True)
            (loss + sl if ssl else loss).backward()
            opt.step()
            loss_sum += loss.detach().double() * n_terms
            terms += n_terms
        secs = time.perf_counter() - t0
        train_loss = float(loss_sum) / terms
        ssl_mean = float(ssl_sum) / terms
        if not math.isfinite(train_loss) or not math.isfinite(ssl_mean):
            log("loss is not finite in epoch %d; try a lower --lr" % epoch)
            return 65
        rate = P / secs
        if learn_t:
            hyper["temperature"] = round(temperature(), 6)
        for split in ("valid", "test"):
            t = ev[split]
            n = t["label"].shape[0]
            if n == 0:
                continue
            te = time.perf_counter()
            scores = evaluate(t)
            if not np.all(np.isfinite(scores)):
                log("the model scored a %s row as non-finite" % split)
                return 65
            y = t["label"].numpy()
            auc = ref.auc_exact(scores, y)
            line = {"impl": "torch", "model": "twotower", "split": split, "epoch": epoch,
                    "n": n, "auc": round(auc, 6) if math.isfinite(auc) else None,
                    "logloss": round(ref.logloss(scores, y), 6),
                    "positive_rate": round(float(y.mean()), 4),
                    "train_loss": round(train_loss, 6), "ssl_loss": round(ssl_mean, 6),
                    "samples_per_s": round(rate),
                    "epoch_s": round(secs, 3), "eval_s": round(time.perf_counter() - te, 3),
                    "threads": a.threads, "batch": a.batch, **hyper, **common}
            if split == "test" and epoch == a.epochs:
                line["final"] = True
            emit(line)
        log("epoch %d: train loss %.4f%s, %.0f samples/s (%.1fs)%s"
            % (epoch, train_loss, ", ssl loss %.4f" % ssl_mean if ssl else "", rate, secs,
               ", temperature %.4f" % temperature() if learn_t else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
