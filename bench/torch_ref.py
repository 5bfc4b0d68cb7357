#!/usr/bin/python3
"""Side-by-side PyTorch reference for bin/trainer (models ncf, dssm, neumf).

    bench/torch_ref.py --data STORE --model ncf|dssm|neumf [--epochs 1]
                       [--batch 256] [--lr 0.001] [--threads 2] [--emb-dim 32]
                       [--hidden 64,32,16 | 300,300,128] [--seed 1]
                       [--max-train N] [--eval-batch 16384] [--sparse-adam]
                       [--blas-threads 1] [--keep-denormals] [--num-neg 4]

Reads the train, valid and test splits of a hogrec store (docs/FORMAT.md)
once, with python3-lmdb and python3-msgpack, into numpy arrays (struct of
arrays), then trains the same architecture as models/ncf.c, models/dssm.c or
models/neumf.c with the same initialisation (models/params.c), loss (mean
binary cross-entropy on logits) and optimiser (Adam, betas 0.9/0.999, eps
1e-8), and evaluates on valid and test after every epoch.  Only Debian
packages are used (python3-torch 1.13, python3-numpy, python3-lmdb,
python3-msgpack).  bench/torch_autorec.py (AutoRec) imports the loading,
thread and output code from here.

neumf (He et al. 2017): four embedding tables of --emb-dim (user_gmf,
item_gmf, user_mlp, item_mlp); GMF branch user_gmf[u] * item_gmf[i]; MLP
branch [user_mlp[u] | item_mlp[i]] through --hidden (default 64,32,16) with a
ReLU after every layer, the last one included (Kaiming-uniform, bias 0);
logit = Linear([gmf | mlp] -> 1), Xavier-uniform, bias 0.

Negatives (ncf and neumf, as models/model.c): on an explicit store the
models train on the records' labels.  On an implicit store (bin/ingest
--label implicit: every train record a positive, train positive rate 1)
each positive is trained together with --num-neg (default 4; 0: the records
alone) negatives of the same user, label 0, drawn every epoch uniformly from
the item ids 1 .. n_items-1 other than the positive's own item (sampler
"random": an item the user rated elsewhere can be drawn).  A minibatch is
--batch shuffled positives, each followed by its negatives: --batch *
(1 + num_neg) rows, the mean BCE over them.  samples_per_s counts positives
+ negatives; records_per_s counts positives, which is what bin/trainer's
samples_per_s counts for these models (docs/models.md), so compare
bin/trainer's samples_per_s with records_per_s here.  The valid and test
records of an implicit store are all positives, so their AUC is null (one
class) and only their logloss is reported.

stdout, JSON lines:
  {"impl":"torch","load_s":..,"train":N,"valid":N,"test":N,...}   once, first
  {"impl":"torch","split":"valid"|"test","epoch":e,"model":..,"n":..,"auc":..,
   "logloss":..,"train_loss":..,"samples_per_s":..,"threads":..,"batch":..,
   "torch":..,"blas_core":..,...}                         per epoch and split
With sampled negatives both add "num_neg" and "sampler", the first also
"train_samples" (positives + negatives per epoch), the others
"records_per_s".

samples_per_s = train samples / wall seconds of the epoch's training loop
(negative sampling, batch gathering, forward, backward, optimiser step), as
bin/trainer reports it; loading and evaluation are not included.  AUC is
exact (average ranks for tied scores) and computed on the logits, logloss on
sigmoid(logit) clipped to [1e-7, 1 - 1e-7], as trainer/eval.c and
common/metrics.c do.

Deliberate differences from bin/trainer, which move accuracy a little:
  * bin/trainer is Hogwild!: --threads workers each take whole minibatches and
    update shared weights without locks; here training is synchronous, one
    minibatch at a time, and --threads is torch's intra-op (OpenMP) thread
    count (OpenBLAS: --blas-threads, below).  Synchronous OpenMP regions
    stall whenever another process holds a core: on a busy 2-core machine
    --threads 2 was measured 10-30x slower than on an idle one, so only
    compare runs made on an idle machine.
  * bin/trainer keeps embeddings sparse: only the rows a minibatch touched get
    an Adam update ("lazy" Adam, global step in the bias correction).  Here
    the default is torch.optim.Adam over every parameter with dense embedding
    gradients: rows not in the minibatch get a zero gradient but still move
    with their decaying first moment.  --sparse-adam uses sparse=True
    embeddings with torch.optim.SparseAdam (lazy rows, like the C side) plus
    torch.optim.Adam for the dense layers; the lines report which was used
    ("optimizer").
  * torch's Adam adds eps to sqrt(v_t / (1 - beta2^t)); the C side adds it to
    sqrt(v_t) and folds the bias corrections into the step size.  Negligible
    with eps = 1e-8.
  * Random streams differ (initial weights, shuffling): same distributions,
    different draws.
  * Threads: torch.set_num_threads(--threads) sizes torch's OpenMP pool.
    Debian's torch reaches OpenBLAS (pthreads build) through libblas.so.3,
    and OpenBLAS keeps its own pool, one thread per core unless told
    otherwise; torch does not size it.  With both pools at 2 threads on a
    2-core machine the OpenMP workers spin while OpenBLAS runs, and training
    was measured 3-5x slower than with OpenBLAS single-threaded, so OpenBLAS
    is set to --blas-threads (default 1, as bin/trainer, whose workers each
    call a single-threaded OpenBLAS) through openblas_set_num_threads().
  * bin/trainer sets flush-to-zero/denormals-are-zero in every worker; here
    torch.set_flush_denormal(True) applies to the main thread (pass
    --keep-denormals to skip it).

Exit status: 0 ok, 64 bad option, 65 bad store or non-finite loss,
66 store missing (as bin/trainer).
"""
import argparse
import ctypes
import itertools
import json
import math
import os
import re
import sys
import time

import lmdb
import msgpack
import numpy as np

GENRES_CAP = 32  # BATCH_GENRES in models/batch.h
REC = {name: i for i, name in enumerate(
    ["user_raw", "item_raw", "rating", "ts", "label", "user", "item", "gender", "age",
     "occupation", "zip", "genres", "dense", "hist", "neg_hist"])}
DEFAULT_HIDDEN = {"ncf": [64, 32, 16], "dssm": [300, 300, 128], "neumf": [64, 32, 16]}
# Columns load_split() can decode; "genres" and "hist" bring their lengths
# ("n_genres", "n_hist").
LOAD_FIELDS = ("user", "item", "gender", "age", "occupation", "zip", "label", "rating",
               "genres", "hist", "dense")
INT_FIELDS = ("user", "item", "gender", "age", "occupation", "zip")
PROG = "torch_ref"  # the name in messages; bench/torch_autorec.py sets its own


class StoreError(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code


def emit(obj):
    """One JSON line on stdout, compact like bin/trainer's."""
    print(json.dumps(obj, separators=(",", ":")), flush=True)


def log(msg):
    print(PROG + ": " + msg, file=sys.stderr, flush=True)


# ---- loading -----------------------------------------------------------------

def fill_padded(out, lens_out, seqs):
    """Writes a sequence of int sequences into zero-initialised padded rows."""
    lens = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    if lens.size and lens.max() > out.shape[1]:
        raise StoreError(65, "a record has %d values, more than %d" % (lens.max(), out.shape[1]))
    flat = np.fromiter(itertools.chain.from_iterable(seqs), dtype=out.dtype,
                       count=int(lens.sum()))
    rows = np.repeat(np.arange(len(seqs)), lens)
    cols = np.arange(flat.size) - np.repeat(np.cumsum(lens) - lens, lens)
    out[rows, cols] = flat
    lens_out[:] = lens


def load_split(txn, db, n, L, n_dense, limit=None, chunk=65536, fields=LOAD_FIELDS):
    """One split as a dict of numpy arrays (struct of arrays), decoded in chunks.

    fields: the columns to fill (LOAD_FIELDS names); every record is still
    decoded and its field count checked."""
    want = n if limit is None else min(n, limit)
    d = {name: np.zeros(want, dtype=np.int64) for name in INT_FIELDS if name in fields}
    for name in ("label", "rating"):
        if name in fields:
            d[name] = np.zeros(want, dtype=np.float32)
    if "genres" in fields:
        d["genres"] = np.zeros((want, GENRES_CAP), dtype=np.int64)
        d["n_genres"] = np.zeros(want, dtype=np.int32)
    if "hist" in fields:
        d["hist"] = np.zeros((want, L), dtype=np.int64)
        d["n_hist"] = np.zeros(want, dtype=np.int32)
    if "dense" in fields:
        d["dense"] = np.zeros((want, n_dense), dtype=np.float32)
    d["n"] = want
    cur = txn.cursor(db=db)
    it = cur.iternext(keys=True, values=True) if cur.first() else iter(())
    got = 0
    while got < want:
        kv = list(itertools.islice(it, min(chunk, want - got)))
        if not kv:
            break
        keys = np.frombuffer(b"".join(k for k, _ in kv), dtype=">u8")
        if keys.size != len(kv) or not np.array_equal(keys, np.arange(got, got + len(kv))):
            raise StoreError(65, "record keys are not the sequence 0 .. n-1")
        # use_list=False: tuples decode ~3x faster than lists
        recs = [msgpack.unpackb(v, use_list=False) for _, v in kv]
        del kv
        if any(len(r) != len(REC) for r in recs):
            raise StoreError(65, "a record does not have %d fields" % len(REC))
        cols = list(zip(*recs))
        del recs
        sl = slice(got, got + len(cols[0]))
        for name in INT_FIELDS + ("label", "rating"):
            if name in fields:
                d[name][sl] = cols[REC[name]]
        if "genres" in fields:
            fill_padded(d["genres"][sl], d["n_genres"][sl], cols[REC["genres"]])
        if "hist" in fields:
            fill_padded(d["hist"][sl], d["n_hist"][sl], cols[REC["hist"]])
        if "dense" in fields:
            dense = cols[REC["dense"]]
            if any(len(x) != n_dense for x in dense):
                raise StoreError(65, "a record does not have %d dense values" % n_dense)
            d["dense"][sl] = dense
        got = sl.stop
    if got != want:
        raise StoreError(65, "split holds %d records, meta says %d" % (got, n))
    return d


def load_store(path, max_train=None, fields=LOAD_FIELDS):
    """(meta, {"train": .., "valid": .., "test": ..}) of load_split() dicts;
    StoreError(66) when the store is missing, StoreError(65) when it is bad."""
    if not os.path.exists(os.path.join(path, "data.mdb")):
        raise StoreError(66, "store '%s' not found" % path)
    env = None
    try:
        env = lmdb.open(path, readonly=True, lock=False, max_dbs=8, subdir=True)
        with env.begin() as txn:
            meta_db = env.open_db(b"meta", txn=txn, create=False)
            raw = txn.get(b"meta", db=meta_db)
            if raw is None:
                raise StoreError(65, "store '%s' has no meta" % path)
            meta = msgpack.unpackb(raw)
            if meta.get("format") != "hogrec-store" or meta.get("version") != 1:
                raise StoreError(65, "store '%s' is not hogrec-store version 1" % path)
            if meta["record_fields"] != list(REC):
                raise StoreError(65, "unexpected record_fields %r" % meta["record_fields"])
            L = int(meta["options"]["hist_len"])
            n_dense = len(meta["dense_fields"])
            splits = {}
            for name in ("train", "valid", "test"):
                db = env.open_db(name.encode(), txn=txn, create=False)
                splits[name] = load_split(txn, db, int(meta["counts"][name]), L, n_dense,
                                          max_train if name == "train" else None,
                                          fields=fields)
    except lmdb.Error as e:
        raise StoreError(65, "store '%s': %s" % (path, e))
    finally:
        if env is not None:
            env.close()
    return meta, splits


# ---- BLAS introspection ------------------------------------------------------

def openblas_lib():
    """The OpenBLAS torch loaded (via libblas.so.3), or None."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1] if len(line.split()) >= 6 else ""
                if "openblas" in os.path.basename(p).lower() or "/openblas" in p:
                    lib = ctypes.CDLL(p)
                    if hasattr(lib, "openblas_get_corename"):
                        return lib
    except OSError:
        pass
    return None


def blas_info(torch, lib):
    core = "unknown"
    if lib is not None:
        try:
            f = lib.openblas_get_corename
            f.restype = ctypes.c_char_p
            core = (f() or b"unknown").decode()
        except (AttributeError, OSError):
            pass
    m = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    return core, ("BLAS_INFO=" + m.group(1)) if m else "unknown"


def setup_torch(threads, blas_threads, seed, keep_denormals):
    """Imports torch and sizes its thread pools (the docstring's "Threads");
    returns (torch, info), info being what every output line reports."""
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    if not keep_denormals:
        torch.set_flush_denormal(True)
    x = torch.randn(64, 64)
    (x @ x).sum()  # make sure the BLAS is loaded before looking for it
    lib = openblas_lib()
    got = None  # unknown: not OpenBLAS, or no thread control
    if lib is not None and hasattr(lib, "openblas_set_num_threads"):
        # torch.set_num_threads() sizes torch's OpenMP pool only; Debian's
        # torch calls OpenBLAS (pthreads build) through libblas.so.3, whose
        # own pool defaults to every core.
        lib.openblas_set_num_threads(ctypes.c_int(blas_threads))
        if hasattr(lib, "openblas_get_num_threads"):
            got = int(lib.openblas_get_num_threads())
    blas_core, torch_blas = blas_info(torch, lib)
    return torch, {"torch": torch.__version__, "blas_core": blas_core, "torch_blas": torch_blas,
                   "omp_threads": torch.get_num_threads(), "blas_threads": got}


# ---- models --------------------------------------------------------------------

def build_models(torch):
    nn = torch.nn
    F = torch.nn.functional

    def init_embedding(emb):
        # params.c INIT_NORMAL, scale 0.05; row 0 is padding (zero, never updated)
        with torch.no_grad():
            emb.weight.normal_(0.0, 0.05)
            emb.weight[0].zero_()

    def mlp(n_in, widths, relu_last=False):
        """Linear layers, ReLU after all but the last (mlp.c, relu_last = 0)
        or after every one (relu_last = 1)."""
        layers, prev = [], n_in
        for i, w in enumerate(widths):
            lin = nn.Linear(prev, w)
            relu = i < len(widths) - 1 or relu_last
            # params.c: Kaiming-uniform +-sqrt(6/fan_in) before a ReLU,
            # Xavier-uniform +-sqrt(6/(fan_in+fan_out)) on the linear output layer
            a = math.sqrt(6.0 / prev) if relu else math.sqrt(6.0 / (prev + w))
            with torch.no_grad():
                lin.weight.uniform_(-a, a)
                lin.bias.zero_()
            layers.append(lin)
            if relu:
                layers.append(nn.ReLU())
            prev = w
        return nn.Sequential(*layers)

    class NCF(nn.Module):
        """models/ncf.c: [E_user[u] | E_item[i]] -> MLP(hidden..., 1) -> logit."""
        fields = ("user", "item")

        def __init__(self, vocab, E, hidden, sparse):
            super().__init__()
            self.user_emb = nn.Embedding(vocab["user"], E, padding_idx=0, sparse=sparse)
            self.item_emb = nn.Embedding(vocab["item"], E, padding_idx=0, sparse=sparse)
            for e in (self.user_emb, self.item_emb):
                init_embedding(e)
            self.mlp = mlp(2 * E, list(hidden) + [1])

        def forward(self, b):
            x = torch.cat([self.user_emb(b["user"]), self.item_emb(b["item"])], dim=1)
            return self.mlp(x).squeeze(1)

    class DSSM(nn.Module):
        """models/dssm.c: user and item MLP towers scored by a dot product."""
        fields = ("user", "item", "gender", "age", "occupation", "zip", "genres", "n_genres",
                  "dense", "hist", "n_hist")

        def __init__(self, vocab, E, hidden, sparse):
            super().__init__()
            self.sparse = sparse
            for name in ("user", "item", "gender", "age", "occupation", "zip", "genre"):
                e = nn.Embedding(vocab[name], E, padding_idx=0, sparse=sparse)
                init_embedding(e)
                setattr(self, name + "_emb", e)
            self.user_tower = mlp(6 * E + 2, hidden)
            self.item_tower = mlp(2 * E + 2, hidden)

        def bag_mean(self, emb, ids, lens):
            # Sum over the padded (B, L) ids, divided by the length: padding
            # ids are 0 and row 0 stays zero, so this is the mean over the
            # first `lens` slots, exactly nn_bag_forward(NN_POOL_MEAN) (an
            # id 0 inside the length counts in the divisor, as in C); an
            # empty bag gives zeros.
            s = F.embedding_bag(ids, emb.weight, mode="sum", sparse=self.sparse,
                                padding_idx=0)
            return s / lens.clamp(min=1).unsqueeze(1)

        def forward(self, b):
            dense = b["dense"]
            xu = torch.cat([self.user_emb(b["user"]), self.gender_emb(b["gender"]),
                            self.age_emb(b["age"]), self.occupation_emb(b["occupation"]),
                            self.zip_emb(b["zip"]),
                            self.bag_mean(self.item_emb, b["hist"], b["n_hist"]),
                            dense[:, 0:2]], dim=1)
            xi = torch.cat([self.item_emb(b["item"]),
                            self.bag_mean(self.genre_emb, b["genres"], b["n_genres"]),
                            dense[:, 2:4]], dim=1)
            return (self.user_tower(xu) * self.item_tower(xi)).sum(dim=1)

    class NeuMF(nn.Module):
        """NeuMF (He et al. 2017): a GMF branch and an MLP branch on their own
        embeddings, concatenated into one output unit.

            g     = E_user_gmf[u] * E_item_gmf[i]                  (B, E)
            h     = MLP([E_user_mlp[u] | E_item_mlp[i]])           (B, hidden[-1]),
                    ReLU after every layer, the last included
            logit = Linear([g | h] -> 1), Xavier-uniform, bias 0
        """
        fields = ("user", "item")

        def __init__(self, vocab, E, hidden, sparse):
            super().__init__()
            for name in ("user_gmf", "item_gmf", "user_mlp", "item_mlp"):
                e = nn.Embedding(vocab[name.split("_")[0]], E, padding_idx=0, sparse=sparse)
                init_embedding(e)
                setattr(self, name, e)
            self.mlp = mlp(2 * E, hidden, relu_last=True)
            self.out = nn.Linear(E + hidden[-1], 1)
            a = math.sqrt(6.0 / (E + hidden[-1] + 1))
            with torch.no_grad():
                self.out.weight.uniform_(-a, a)
                self.out.bias.zero_()

        def forward(self, b):
            u, i = b["user"], b["item"]
            g = self.user_gmf(u) * self.item_gmf(i)
            h = self.mlp(torch.cat([self.user_mlp(u), self.item_mlp(i)], dim=1))
            return self.out(torch.cat([g, h], dim=1)).squeeze(1)

    return {"ncf": NCF, "dssm": DSSM, "neumf": NeuMF}


# ---- metrics -------------------------------------------------------------------

def auc_exact(score, label):
    """ROC AUC from average ranks (ties share their mean rank); nan with one class."""
    score = np.asarray(score, dtype=np.float64)
    pos = np.asarray(label) > 0.5
    n_pos = int(pos.sum())
    n_neg = pos.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    # boundaries of runs of equal scores in sorted order
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    ends = np.r_[starts[1:], s.size]  # exclusive
    avg = (starts + ends + 1) / 2.0   # mean of 1-based ranks starts+1 .. ends
    ranks = np.empty(s.size, dtype=np.float64)
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def logloss(logits, label):
    p = 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))
    p = np.clip(p, 1e-7, 1.0 - 1e-7)
    y = np.asarray(label, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))


# ---- main ----------------------------------------------------------------------

class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print(PROG + ": " + message, file=sys.stderr)
        sys.exit(64)


def parse_args(argv):
    ap = Parser(description="PyTorch reference for bin/trainer (see the module docstring).")
    ap.add_argument("--data", required=True, help="hogrec store (LMDB directory)")
    ap.add_argument("--model", required=True, choices=["ncf", "dssm", "neumf"])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="torch intra-op and OpenBLAS threads (default: cores)")
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="OpenBLAS threads (default 1, as bin/trainer; see the docstring)")
    ap.add_argument("--emb-dim", type=int, default=32)
    ap.add_argument("--hidden", default=None,
                    help="widths, comma separated (default: ncf and neumf 64,32,16; "
                         "dssm 300,300,128)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-train", type=int, default=None,
                    help="use only the first N train records (time order)")
    ap.add_argument("--eval-batch", type=int, default=16384)
    ap.add_argument("--sparse-adam", action="store_true",
                    help="sparse embeddings with SparseAdam (lazy rows, like bin/trainer) "
                         "+ Adam for dense layers")
    ap.add_argument("--keep-denormals", action="store_true",
                    help="do not call torch.set_flush_denormal(True)")
    ap.add_argument("--num-neg", type=int, default=4,
                    help="ncf and neumf on an implicit store: negatives sampled per "
                         "positive (default 4; 0: the records alone)")
    a = ap.parse_args(argv)
    if a.epochs < 1 or a.batch < 1 or a.threads < 1 or a.emb_dim < 1 or a.eval_batch < 1:
        ap.error("--epochs, --batch, --threads, --emb-dim and --eval-batch must be >= 1")
    if a.blas_threads < 1:
        ap.error("--blas-threads must be >= 1")
    if not 0 <= a.num_neg <= 100:
        ap.error("--num-neg must be 0 .. 100")
    if not a.lr > 0:
        ap.error("--lr must be positive")
    if a.max_train is not None and a.max_train < 1:
        ap.error("--max-train must be >= 1")
    if a.hidden is None:
        a.hidden = DEFAULT_HIDDEN[a.model]
    else:
        try:
            a.hidden = [int(x) for x in a.hidden.split(",")]
        except ValueError:
            ap.error("--hidden: '%s' is not a list of widths" % a.hidden)
        if not a.hidden or min(a.hidden) < 1:
            ap.error("--hidden: widths must be >= 1")
    return a


def main(argv):
    a = parse_args(argv)

    t0 = time.perf_counter()
    try:
        meta, splits = load_store(a.data, a.max_train)
    except StoreError as e:
        log(str(e))
        return e.code
    load_s = time.perf_counter() - t0

    # after loading: the load time is numpy/msgpack only
    torch, info = setup_torch(a.threads, a.blas_threads, a.seed, a.keep_denormals)
    blas_threads, blas_core = info["blas_threads"], info["blas_core"]

    vocab = meta["vocab_sizes"]
    if a.model == "dssm":
        if not meta.get("has_demographics"):
            log("model 'dssm' needs user demographics, which this store lacks")
            return 65
        if len(meta["dense_fields"]) != 4:
            log("model 'dssm' expects the 4 dense fields of format 1")
            return 65
    n_train = splits["train"]["n"]
    if n_train == 0:
        log("store '%s' has no train records" % a.data)
        return 65

    # ncf and neumf on an implicit store (every train record a positive, as
    # models/model.c tells it: train positive rate 1): each positive is
    # trained with --num-neg negatives drawn uniformly from the item ids
    # 1 .. n-1 other than its own (sampler "random"), afresh every epoch.
    implicit = float(meta.get("positive_rate", {}).get("train", 0)) >= 1.0
    sampling = a.model in ("ncf", "neumf") and implicit and a.num_neg > 0
    n_items = int(vocab["item"])
    if sampling and n_items < 3:
        log("model '%s' samples negatives among item ids other than the positive's; "
            "store '%s' has %d item ids" % (a.model, a.data, n_items - 1))
        return 65
    num_neg = a.num_neg if sampling else 0
    F = 1 + num_neg  # rows a record becomes in training
    n_samples = n_train * (1 + num_neg)
    extra = {"num_neg": num_neg, "sampler": "random"} if sampling else {}

    Model = build_models(torch)[a.model]
    model = Model(vocab, a.emb_dim, a.hidden, a.sparse_adam)

    # Index tensors built once; trimming the padded bags to the widest bag in
    # the data changes nothing (the extra columns are padding).
    def to_torch(d):
        t = {}
        for k in Model.fields:
            v = d[k]
            if k == "genres" or k == "hist":
                w = max(1, int(max(s["n_" + k].max(initial=0) for s in splits.values())))
                v = v[:, :w]
            t[k] = torch.from_numpy(np.ascontiguousarray(v))
        t["label"] = torch.from_numpy(d["label"])
        return t

    tens = {name: to_torch(d) for name, d in splits.items()}

    if a.sparse_adam:
        emb_ids = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
        emb = [p for p in model.parameters() if id(p) in emb_ids]
        rest = [p for p in model.parameters() if id(p) not in emb_ids]
        opts = [torch.optim.SparseAdam(emb, lr=a.lr, betas=(0.9, 0.999), eps=1e-8),
                torch.optim.Adam(rest, lr=a.lr, betas=(0.9, 0.999), eps=1e-8)]
        opt_name = "sparse_adam+adam"
    else:
        opts = [torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8)]
        opt_name = "adam"
    loss_fn = torch.nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(a.seed)

    common = {**info, "optimizer": opt_name}
    emit({"impl": "torch", "load_s": round(load_s, 3), "model": a.model, "train": n_train,
          "valid": splits["valid"]["n"], "test": splits["test"]["n"],
          "parameters": sum(p.numel() for p in model.parameters()),
          **({"train_samples": n_samples, **extra} if sampling else {}), **common})
    log("%s: %d parameters; %d train, %d valid, %d test records loaded in %.2fs; "
        "%d torch threads, %s OpenBLAS threads (core %s), batch %d, %s lr %g"
        % (a.model, sum(p.numel() for p in model.parameters()), n_train,
           splits["valid"]["n"], splits["test"]["n"], load_s, torch.get_num_threads(),
           blas_threads, blas_core, a.batch, opt_name, a.lr))

    def evaluate(t):
        model.eval()
        out = []
        n = t["label"].shape[0]
        with torch.no_grad():
            for s in range(0, n, a.eval_batch):
                out.append(model({k: v[s:s + a.eval_batch] for k, v in t.items()}))
        model.train()
        return torch.cat(out).numpy()

    tr = tens["train"]
    keys = [k for k in tr if k != "label"]
    B = a.batch
    if sampling:  # the labels of one positive and its negatives
        group_y = torch.zeros(1 + num_neg)
        group_y[0] = 1.0
    for epoch in range(1, a.epochs + 1):
        perm = torch.randperm(n_train, generator=gen)
        model.train()
        loss_sum = torch.zeros((), dtype=torch.float64)
        t0 = time.perf_counter()
        if sampling:
            # The epoch's samples: the shuffled positives, each followed by
            # its negatives; a minibatch is --batch positives with theirs,
            # --batch * (1 + num_neg) rows (models/model.c with_negatives()).
            # j drawn from 1 .. n-2 and moved up by one from the positive's id
            # on is uniform over 1 .. n-1 without it (sampler.c draw_random()).
            pos_i = tr["item"].index_select(0, perm)
            neg = torch.randint(1, n_items - 1, (n_train, num_neg), generator=gen)
            neg += (neg >= pos_i.unsqueeze(1)).to(neg.dtype)
            ep = {"user": tr["user"].index_select(0, perm).repeat_interleave(1 + num_neg),
                  "item": torch.cat([pos_i.unsqueeze(1), neg], dim=1).reshape(-1)}
            ep_y = group_y.repeat(n_train)
        for s in range(0, n_train, B):
            if sampling:
                b = {k: v[s * F:(s + B) * F] for k, v in ep.items()}
                y = ep_y[s * F:(s + B) * F]
            else:
                idx = perm[s:s + B]
                b = {k: tr[k].index_select(0, idx) for k in keys}
                y = tr["label"].index_select(0, idx)
            logits = model(b)
            loss = loss_fn(logits, y)
            for o in opts:
                o.zero_grad(set_to_none=True)
            loss.backward()
            for o in opts:
                o.step()
            loss_sum += loss.detach().double() * y.numel()
        secs = time.perf_counter() - t0
        train_loss = float(loss_sum) / n_samples
        if not math.isfinite(train_loss):
            log("loss is not finite in epoch %d; try a lower --lr" % epoch)
            return 65
        rate = n_samples / secs
        if sampling:
            extra["records_per_s"] = round(n_train / secs)
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
            auc = auc_exact(logits, y)
            line = {"impl": "torch", "split": split, "epoch": epoch, "model": a.model, "n": n,
                    "auc": round(auc, 6) if math.isfinite(auc) else None,
                    "logloss": round(logloss(logits, y), 6),
                    "positive_rate": round(float(y.mean()), 4),
                    "train_loss": round(train_loss, 6), "samples_per_s": round(rate),
                    "epoch_s": round(secs, 3), "eval_s": round(time.perf_counter() - te, 3),
                    "threads": a.threads, "batch": a.batch, **extra, **common}
            if split == "test" and epoch == a.epochs:
                line["final"] = True
            emit(line)
        log("epoch %d: train loss %.4f, %.0f samples/s (%.1fs)" % (epoch, train_loss, rate, secs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
