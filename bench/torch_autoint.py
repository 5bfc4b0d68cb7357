#!/usr/bin/python3
"""PyTorch twin of hogrec's autoint model (FuxiCTR's AutoInt).

    bench/torch_autoint.py --data STORE [--epochs 1] [--batch 256] [--lr 0.001]
                           [--l2 0] [--emb-dim 32] [--hidden 64,64,64]
                           [--attention-layers 2] [--num-heads 1]
                           [--attention-dim 8] [--use-residual yes|no]
                           [--layer-norm yes|no] [--use-scale yes|no]
                           [--use-dnn yes|no] [--use-wide yes|no]
                           [--net-dropout 0] [--threads 2] [--blas-threads 1]
                           [--seed 1] [--max-train N] [--eval-batch 16384]
                           [--keep-denormals]

Reads a hogrec store (docs/FORMAT.md) with bench/torch_ref.py's loader and
trains AutoInt as FuxiCTR builds it (reczoo/FuxiCTR
model_zoo/AutoInt/src/AutoInt.py: MultiHeadSelfAttention, MLP_Block,
LogisticRegression) on the store's labels, the same architecture and
initialisation as models/autoint.c, then evaluates on valid and test after
every epoch.  The flags are bin/trainer's (the model options spelled as its
flags, yes/no for switches), with bin/trainer's defaults, so that make
bench passes one option list to both.  Debian packages only
(python3-torch 1.13, python3-numpy, python3-lmdb, python3-msgpack).

Fields (F = 8 + the store's dense fields, each of width E = --emb-dim):
  user | item | gender | age | occupation | zip
  | mean of genre[g] over the item's genres | mean of item[h] over the history
  | dense_k * Dn[k] for each dense feature k
The history shares the item table.  A mean is the sum over the first n
slots divided by n, as torch_ref.py's bag_mean (an id 0 inside the length
counts in the divisor; an empty list gives zeros).

Interacting layers (--attention-layers, each FuxiCTR's
MultiHeadSelfAttention): Q, K, V = X W_q^T, X W_k^T, X W_v^T (no bias,
width A = --attention-dim), split into --num-heads heads; per head softmax(Q
K^T [/ sqrt(A / heads) with --use-scale yes]) V, dropout (--net-dropout) on
the attention weights; heads concatenated; plus the residual (--use-residual:
X W_res^T when the input width differs from A, else X); LayerNorm(A) with
--layer-norm yes; ReLU.  logit = Linear(F A -> 1)(flattened output)
  + (--use-dnn yes) MLP over the flattened fields: Linear, ReLU, Dropout
    (--net-dropout) per --hidden width, then Linear(-> 1)
  + (--use-wide yes) a logistic regression without bias: a scalar weight
    per id (user, item, gender, age, occupation, zip), the sum over the
    genres and over the history (its own table: FuxiCTR's LR shares no
    embedding), and w_k dense_k.

Initialisation (FuxiCTR's): embedding tables N(0, 1e-4^2), row 0 zero and
never updated (padding_idx); every Linear Xavier-normal, bias 0; dense
vectors N(0, 2 / (1 + E)) (a Linear(1, E)); the wide part's dense weights
N(0, 1) (a Linear(1, 1)); LayerNorm gain 1, shift 0.

Loss: mean binary cross-entropy on the logits; Adam (betas 0.9/0.999, eps
1e-8, --lr) with weight_decay = --l2, torch's coupled L2 (as
torch_autorec.py; bin/trainer's --l2 adds l2 * w to the gradient of what an
update touches).  Batches of --batch shuffled records every epoch.

stdout, JSON lines (compact, like torch_ref.py's):
  {"impl":"torch","model":"autoint","load_s":..,"train":N,"valid":N,"test":N,
   ...options...,"parameters":..}                                  once, first
  {"impl":"torch","model":"autoint","split":"valid"|"test","epoch":e,"n":..,
   "auc":..,"logloss":..,"positive_rate":..,"train_loss":..,"samples_per_s":..,
   "epoch_s":..,"eval_s":..,"threads":..,"batch":..,"torch":..,"blas_core":..,
   ...}                                                    per epoch and split
samples_per_s = train records / wall seconds of the epoch's training loop
(batch gathering, forward, backward, optimiser step), as bin/trainer counts
them.  AUC exact (ties averaged) on the logits, logloss on sigmoid(logit)
clipped to [1e-7, 1 - 1e-7], as trainer/eval.c.

Differences from FuxiCTR: no gradient-norm clipping (FuxiCTR's fit() clips
at 10; bin/trainer does not clip either); no learning-rate decay on plateau
nor early stopping (make bench trains every epoch on both sides); its
MaskedAveragePooling divides by the non-zero ids, here by the length (as
bin/trainer).  Differences from bin/trainer, as torch_ref.py's (see its
docstring): synchronous training (--threads sizes torch's OpenMP pool,
--blas-threads OpenBLAS's, default 1), dense Adam and L2 over every row
instead of lazy rows, eps inside the bias correction, flush-to-zero on the
main thread only (--keep-denormals skips it), different random streams.

Exit status: 0 ok, 64 bad option, 65 bad store (no demographics, no dense
fields, an id outside its vocabulary) or non-finite loss, 66 store missing
(as torch_ref.py and bin/trainer).
"""
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ref as ref  # noqa: E402  (the store loader, threads, metrics, output)

ref.PROG = "torch_autoint"
log, emit = ref.log, ref.emit

FIELDS = ("user", "item", "gender", "age", "occupation", "zip", "label", "genres", "hist",
          "dense")
ID_FIELDS = ("user", "item", "gender", "age", "occupation", "zip")
DEFAULT_HIDDEN = [64, 64, 64]
TABLE_STD = 1e-4  # FuxiCTR's embedding_initializer
LN_EPS = 1e-5


def yes_no(text):
    v = text.lower()
    if v in ("yes", "true", "on", "1"):
        return True
    if v in ("no", "false", "off", "0"):
        return False
    raise ValueError(text)


yes_no.__name__ = "yes|no"  # argparse's message: "invalid yes|no value"


def parse_args(argv):
    ap = ref.Parser(description="PyTorch twin of hogrec's autoint (see the module docstring).")
    ap.add_argument("--data", required=True, help="hogrec store (LMDB directory)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--l2", type=float, default=0.0, help="Adam weight_decay (default 0)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="torch intra-op threads (default: cores)")
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="OpenBLAS threads (default 1, as torch_ref.py)")
    ap.add_argument("--emb-dim", type=int, default=32)
    ap.add_argument("--hidden", default=",".join(map(str, DEFAULT_HIDDEN)),
                    help="DNN widths, comma separated (default 64,64,64)")
    ap.add_argument("--attention-layers", type=int, default=2)
    ap.add_argument("--num-heads", type=int, default=1)
    ap.add_argument("--attention-dim", type=int, default=8)
    ap.add_argument("--use-residual", type=yes_no, default=True)
    ap.add_argument("--layer-norm", type=yes_no, default=False)
    ap.add_argument("--use-scale", type=yes_no, default=False)
    ap.add_argument("--use-dnn", type=yes_no, default=True)
    ap.add_argument("--use-wide", type=yes_no, default=False)
    ap.add_argument("--net-dropout", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-train", type=int, default=None,
                    help="use only the first N train records (time order)")
    ap.add_argument("--eval-batch", type=int, default=16384)
    ap.add_argument("--keep-denormals", action="store_true",
                    help="do not call torch.set_flush_denormal(True)")
    a = ap.parse_args(argv)
    if min(a.epochs, a.batch, a.threads, a.emb_dim, a.eval_batch, a.blas_threads) < 1:
        ap.error("--epochs, --batch, --threads, --emb-dim, --eval-batch and --blas-threads "
                 "must be >= 1")
    if not 1 <= a.attention_layers <= 6:
        ap.error("--attention-layers must be 1 .. 6 (as bin/trainer)")
    if a.num_heads < 1 or a.attention_dim < 1 or a.attention_dim % a.num_heads:
        ap.error("--attention-dim must be a positive multiple of --num-heads")
    if not 0 <= a.net_dropout <= 0.9:
        ap.error("--net-dropout must be 0 .. 0.9 (as bin/trainer)")
    if not (a.lr > 0 and math.isfinite(a.lr)) or not (a.l2 >= 0 and math.isfinite(a.l2)):
        ap.error("--lr must be positive and --l2 >= 0")
    if a.max_train is not None and a.max_train < 1:
        ap.error("--max-train must be >= 1")
    try:
        a.hidden = [int(x) for x in a.hidden.split(",")]
    except ValueError:
        ap.error("--hidden: '%s' is not a list of widths" % a.hidden)
    if not a.hidden or min(a.hidden) < 1:
        ap.error("--hidden: widths must be >= 1")
    return a


def build_model(torch, vocab, n_dense, a):
    nn = torch.nn
    F = torch.nn.functional
    E, A = a.emb_dim, a.attention_dim
    n_fields = 8 + n_dense

    def linear(n_in, n_out, bias):
        lin = nn.Linear(n_in, n_out, bias=bias)
        nn.init.xavier_normal_(lin.weight)  # FuxiCTR's BaseModel.reset_parameters
        if bias:
            nn.init.zeros_(lin.bias)
        return lin

    def table(rows, width):
        e = nn.Embedding(rows, width, padding_idx=0)
        with torch.no_grad():
            e.weight.normal_(0.0, TABLE_STD)
            e.weight[0].zero_()
        return e

    class MultiHeadSelfAttention(nn.Module):
        """FuxiCTR's MultiHeadSelfAttention (no mask: the fields are all present)."""

        def __init__(self, d_in):
            super().__init__()
            self.heads, self.d = a.num_heads, A // a.num_heads
            self.W_q, self.W_k, self.W_v = (linear(d_in, A, False) for _ in range(3))
            self.W_res = linear(d_in, A, False) if a.use_residual and d_in != A else None
            self.drop = nn.Dropout(a.net_dropout) if a.net_dropout > 0 else None
            self.ln = nn.LayerNorm(A, eps=LN_EPS) if a.layer_norm else None

        def forward(self, X):
            B = X.shape[0]

            def split(t):  # (B, F, A) -> (B, heads, F, d)
                return t.view(B, -1, self.heads, self.d).transpose(1, 2)
            Q, K, V = split(self.W_q(X)), split(self.W_k(X)), split(self.W_v(X))
            S = Q @ K.transpose(-1, -2)
            if a.use_scale:
                S = S / math.sqrt(self.d)
            P = S.softmax(dim=-1)
            if self.drop is not None:
                P = self.drop(P)
            out = (P @ V).transpose(1, 2).reshape(B, -1, A)
            if self.W_res is not None:
                out = out + self.W_res(X)
            elif a.use_residual:
                out = out + X
            if self.ln is not None:
                out = self.ln(out)
            return out.relu()

    class AutoInt(nn.Module):
        def __init__(self):
            super().__init__()
            for name in ("user", "item", "gender", "age", "occupation", "zip", "genre"):
                setattr(self, name + "_emb", table(vocab[name], E))
            self.dense_emb = nn.Parameter(torch.empty(n_dense, E))
            nn.init.normal_(self.dense_emb, 0.0, math.sqrt(2.0 / (1 + E)))
            self.attention = nn.Sequential(*[MultiHeadSelfAttention(E if l == 0 else A)
                                             for l in range(a.attention_layers)])
            self.fc = linear(n_fields * A, 1, True)
            self.dnn = None
            if a.use_dnn:
                layers, prev = [], n_fields * E
                for w in a.hidden:
                    layers += [linear(prev, w, True), nn.ReLU()]
                    if a.net_dropout > 0:
                        layers.append(nn.Dropout(a.net_dropout))
                    prev = w
                layers.append(linear(prev, 1, True))
                self.dnn = nn.Sequential(*layers)
            if a.use_wide:
                for name, voc in (("user", "user"), ("item", "item"), ("gender", "gender"),
                                  ("age", "age"), ("occupation", "occupation"), ("zip", "zip"),
                                  ("genre", "genre"), ("hist", "item")):
                    setattr(self, name + "_lr", table(vocab[voc], 1))
                self.dense_lr = nn.Parameter(torch.empty(n_dense))
                nn.init.normal_(self.dense_lr, 0.0, 1.0)

        @staticmethod
        def bag(weight, ids, lens, mean):
            s = F.embedding_bag(ids, weight, mode="sum", padding_idx=0)
            return s / lens.clamp(min=1).unsqueeze(1) if mean else s

        def forward(self, b):
            B = b["user"].shape[0]
            fields = [self.user_emb(b["user"]), self.item_emb(b["item"]),
                      self.gender_emb(b["gender"]), self.age_emb(b["age"]),
                      self.occupation_emb(b["occupation"]), self.zip_emb(b["zip"]),
                      self.bag(self.genre_emb.weight, b["genres"], b["n_genres"], True),
                      self.bag(self.item_emb.weight, b["hist"], b["n_hist"], True)]
            X = torch.cat([torch.stack(fields, dim=1),
                           b["dense"].unsqueeze(2) * self.dense_emb.unsqueeze(0)], dim=1)
            logit = self.fc(self.attention(X).reshape(B, -1)).squeeze(1)
            if self.dnn is not None:
                logit = logit + self.dnn(X.reshape(B, -1)).squeeze(1)
            if a.use_wide:
                w = (self.user_lr(b["user"]) + self.item_lr(b["item"]) +
                     self.gender_lr(b["gender"]) + self.age_lr(b["age"]) +
                     self.occupation_lr(b["occupation"]) + self.zip_lr(b["zip"]) +
                     self.bag(self.genre_lr.weight, b["genres"], b["n_genres"], False) +
                     self.bag(self.hist_lr.weight, b["hist"], b["n_hist"], False))
                logit = logit + w.squeeze(1) + b["dense"] @ self.dense_lr
            return logit

    return AutoInt()


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

    if not meta.get("has_demographics"):
        log("model 'autoint' needs user demographics, which store '%s' lacks" % a.data)
        return 65
    n_dense = len(meta["dense_fields"])
    if n_dense == 0:
        log("model 'autoint' needs dense features; store '%s' has none" % a.data)
        return 65
    vocab = {k: int(v) for k, v in meta["vocab_sizes"].items()}
    for name, d in splits.items():
        if not d["n"]:
            continue
        for f in ID_FIELDS:
            if d[f].min() < 0 or d[f].max() >= vocab[f]:
                log("store '%s': a %s record's %s id is outside its vocabulary of %d"
                    % (a.data, name, f, vocab[f]))
                return 65
        if d["genres"].max() >= vocab["genre"] or d["hist"].max() >= vocab["item"]:
            log("store '%s': a %s record's genre or history id is outside its vocabulary"
                % (a.data, name))
            return 65
    n_train = splits["train"]["n"]
    if n_train == 0:
        log("store '%s' has no train records" % a.data)
        return 65

    # Padded bags trimmed to the widest bag in the data (the rest is padding).
    gw = max(1, int(max(s["n_genres"].max(initial=0) for s in splits.values())))
    hw = max(1, int(max(s["n_hist"].max(initial=0) for s in splits.values())))

    def to_torch(d):
        t = {k: torch.from_numpy(np.ascontiguousarray(d[k]))
             for k in ID_FIELDS + ("n_genres", "n_hist", "dense", "label")}
        t["genres"] = torch.from_numpy(np.ascontiguousarray(d["genres"][:, :gw]))
        t["hist"] = torch.from_numpy(np.ascontiguousarray(d["hist"][:, :hw]))
        return t

    tens = {name: to_torch(d) for name, d in splits.items()}
    model = build_model(torch, vocab, n_dense, a)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8,
                           weight_decay=a.l2)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(a.seed)

    hyper = {"emb_dim": a.emb_dim, "hidden": a.hidden, "attention_layers": a.attention_layers,
             "num_heads": a.num_heads, "attention_dim": a.attention_dim,
             "use_residual": a.use_residual, "layer_norm": a.layer_norm,
             "use_scale": a.use_scale, "use_dnn": a.use_dnn, "use_wide": a.use_wide,
             "net_dropout": a.net_dropout, "lr": a.lr, "l2": a.l2}
    common = {**info, "optimizer": "adam"}
    emit({"impl": "torch", "model": "autoint", "load_s": round(load_s, 3), "train": n_train,
          "valid": splits["valid"]["n"], "test": splits["test"]["n"], **hyper,
          "parameters": n_params, **common})
    log("autoint: %d parameters; %d train, %d valid, %d test records loaded in %.2fs; "
        "%d torch threads, %s OpenBLAS threads (core %s), batch %d, adam lr %g, l2 %g"
        % (n_params, n_train, splits["valid"]["n"], splits["test"]["n"], load_s,
           torch.get_num_threads(), info["blas_threads"], info["blas_core"], a.batch, a.lr,
           a.l2))

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
    for epoch in range(1, a.epochs + 1):
        perm = torch.randperm(n_train, generator=gen)
        model.train()
        loss_sum = torch.zeros((), dtype=torch.float64)
        t0 = time.perf_counter()
        for s in range(0, n_train, a.batch):
            idx = perm[s:s + a.batch]
            b = {k: tr[k].index_select(0, idx) for k in keys}
            y = tr["label"].index_select(0, idx)
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
            line = {"impl": "torch", "model": "autoint", "split": split, "epoch": epoch,
                    "n": n, "auc": round(auc, 6) if math.isfinite(auc) else None,
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
