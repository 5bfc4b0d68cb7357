#!/usr/bin/python3
"""PyTorch twin of hogrec's inttower model (IntTower, Li et al. CIKM 2022).

    bench/torch_inttower.py --data STORE [--epochs 1] [--batch 256] [--lr 0.001]
                            [--emb-dim 32] [--hidden 300,300,128] [--heads 32]
                            [--head-dim 32] [--fe-score mean|sum]
                            [--fe-input inputs|outputs]
                            [--use-bn yes|no] [--dropout 0]
                            [--cir-weight 0] [--cir-tau 0.07] [--threads 2]
                            [--blas-threads 1] [--seed 1] [--max-train N]
                            [--eval-batch 16384] [--keep-denormals]

Reads a hogrec store (docs/FORMAT.md) with bench/torch_ref.py's loader and
trains the model of models/inttower.c, written after the official code
(archersama/IntTower: model/IntTower.py, layers/core.py User_Fe_DNN and
Item_Fe_DNN, layers/interaction.py LightSE, preprocessing/utils.py
fe_score), then evaluates on valid and test after every epoch.  Debian
packages only (python3-torch 1.13, python3-numpy, python3-lmdb,
python3-msgpack).

Fields (E = --emb-dim, default 32), every table N(0, 0.05^2) (hogrec's; the
official init_std is 1e-4), row 0 padding (zero, never updated):
  user tower: user, gender, age, occupation, zip, mean of item[h] over the
              history (6 fields), then dense[0], dense[1] raw
  item tower: item, mean of genre[g] over the item's genres (2 fields), then
              dense[2], dense[3] raw
The history uses the item tower's item table; a mean is torch_ref.py's
bag_mean.  LightSE on each tower's (B, F, E) fields: z = mean over E,
a = softmax_F(z W^T) (Linear(F, F) without bias), out = e + e * a; the
tower input is [flatten(out) | dense].

Tower layer l (width --hidden[l]): Linear (weight N(0, 1 / (3 fan_in)),
PyTorch's default variance; the official N(0, 1e-4^2); no bias before a
BatchNorm, whose batch mean cancels it, bias 0 without) -> BatchNorm1d
(--use-bn, default yes; eps 1e-5, momentum 0.1) -> ReLU -> Dropout(--dropout).  FE-Block, H = --heads heads of d = --head-dim: the
user side projects the INPUT of each of its n layers, U_l = Linear(in_l ->
H d) (--fe-input inputs, the official code; with outputs, the paper's
formula, the output of each: U_l = Linear(h_l -> H d)); the item side
projects its tower's output, V = Linear(h_{n-1} -> H d) (FE weights and
biases N(0, 1 / (3 fan_in)), PyTorch's default variance).  With inputs the
user tower's last Linear feeds nothing (official code); like hogrec, it is
not built.  Score:
    logit = b + c sum_l sum_h max_k <U_l[h], V[k]>
(bmm of (B, H, d) by (B, d, H), max over the item heads, sum), b a scalar
bias initialised to 0, c = 1 / (n H) with --fe-score mean (the default) or
1 with sum (the official).  Loss: mean binary cross-entropy on the logits over
every train record (labels 0/1, shuffled every epoch), plus --cir-weight
times the CIR term: over the batch's positive rows, u = U_{n-1}, v = V
L2-normalised (F.normalize), cross_entropy((u v^T) / --cir-tau, diagonal).
A one-row training batch normalises to beta (nn_batchnorm_forward), where
torch.nn.BatchNorm1d would refuse.

Optimiser: torch.optim.Adam over every parameter (lr --lr, default 1e-3;
betas 0.9/0.999, eps 1e-8; dense gradients for the tables).  Evaluation in
eval mode (running BatchNorm statistics, no dropout): every valid and test
record scored by its logit; exact AUC and logloss as torch_ref.py.

stdout, JSON lines as torch_ref.py's, "model":"inttower", with the options
and "cir_loss" (the epoch's mean of the weighted CIR term) beside
"train_loss" (the BCE).  samples_per_s = train records / wall seconds of the
epoch's training loop.  Differences from bin/trainer: torch_ref.py's
(synchronous, dense Adam, random streams).

Exit status: 0 ok, 64 bad option, 65 bad store or non-finite loss, 66 store
missing (as bin/trainer).
"""
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ref as ref  # noqa: E402  (the store loader, threads, metrics, output)

ref.PROG = "torch_inttower"
log, emit = ref.log, ref.emit

DEFAULT_HIDDEN = [300, 300, 128]
EMB_STD = 0.05
BN_EPS, BN_MOMENTUM = 1e-5, 0.1
FIELDS = ("user", "item", "gender", "age", "occupation", "zip", "label", "genres", "hist",
          "dense")
KEYS = ("user", "item", "gender", "age", "occupation", "zip", "genres", "n_genres", "hist",
        "n_hist", "dense")


def yes_no(text):
    t = text.lower()
    if t in ("yes", "true", "on", "1"):
        return True
    if t in ("no", "false", "off", "0"):
        return False
    raise ValueError(text)


def parse_args(argv):
    ap = ref.Parser(description="PyTorch twin of hogrec's inttower (see the module docstring).")
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
                    help="tower widths, comma separated (default 300,300,128)")
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--head-dim", type=int, default=32)
    ap.add_argument("--fe-score", choices=("mean", "sum"), default="mean")
    ap.add_argument("--fe-input", choices=("inputs", "outputs"), default="inputs")
    ap.add_argument("--use-bn", default="yes", help="yes|no (default yes)")
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--cir-weight", type=float, default=0.0)
    ap.add_argument("--cir-tau", type=float, default=0.07)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-train", type=int, default=None,
                    help="use only the first N train records (time order)")
    ap.add_argument("--eval-batch", type=int, default=16384)
    ap.add_argument("--keep-denormals", action="store_true",
                    help="do not call torch.set_flush_denormal(True)")
    a = ap.parse_args(argv)
    if min(a.epochs, a.batch, a.threads, a.emb_dim, a.eval_batch, a.blas_threads, a.heads,
           a.head_dim) < 1:
        ap.error("--epochs, --batch, --threads, --blas-threads, --emb-dim, --heads, "
                 "--head-dim and --eval-batch must be >= 1")
    if not a.lr > 0 or not math.isfinite(a.lr):
        ap.error("--lr must be positive")
    if not 0 <= a.dropout < 1:
        ap.error("--dropout must be in [0, 1)")
    if not (a.cir_weight >= 0 and math.isfinite(a.cir_weight)):
        ap.error("--cir-weight must be >= 0")
    if not (a.cir_tau > 0 and math.isfinite(a.cir_tau)):
        ap.error("--cir-tau must be > 0")
    try:
        a.use_bn = yes_no(a.use_bn)
    except ValueError:
        ap.error("--use-bn: must be yes or no, not '%s'" % a.use_bn)
    if a.max_train is not None and a.max_train < 1:
        ap.error("--max-train must be >= 1")
    try:
        a.hidden = [int(x) for x in a.hidden.split(",")]
    except ValueError:
        ap.error("--hidden: '%s' is not a list of widths" % a.hidden)
    if not a.hidden or min(a.hidden) < 1:
        ap.error("--hidden: widths must be >= 1")
    return a


def build_model(torch, vocab, a):
    nn = torch.nn
    F = torch.nn.functional
    E, H, D = a.emb_dim, a.heads, a.head_dim

    class BatchNorm(nn.BatchNorm1d):
        """BatchNorm1d(eps 1e-5, momentum 0.1); a one-row training batch
        normalises to beta (nn_batchnorm_forward) instead of raising."""

        def __init__(self, n):
            super().__init__(n, eps=BN_EPS, momentum=BN_MOMENTUM)

        def forward(self, x):
            if not (self.training and x.shape[0] == 1):
                return super().forward(x)
            xm = x - x.mean(dim=0, keepdim=True)
            var = (xm * xm).mean(dim=0)
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(x[0].detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach(), alpha=m)
                self.num_batches_tracked += 1
            return xm * torch.rsqrt(var + self.eps) * self.weight + self.bias

    def linear(n_in, n_out, std, bias_std):
        lin = nn.Linear(n_in, n_out)
        with torch.no_grad():
            lin.weight.normal_(0.0, std)
            if bias_std:
                lin.bias.normal_(0.0, bias_std)
            else:
                lin.bias.zero_()
        return lin

    def default_linear(n_in, n_out):
        sd = 1.0 / math.sqrt(3.0 * n_in)  # the variance of U(+-1/sqrt(fan_in))
        return linear(n_in, n_out, sd, sd)

    def tower(n_in, widths):
        layers, prev = nn.ModuleList(), n_in
        for w in widths:
            lin = nn.Linear(prev, w, bias=not a.use_bn)
            with torch.no_grad():
                lin.weight.normal_(0.0, 1.0 / math.sqrt(3.0 * prev))
                if lin.bias is not None:
                    lin.bias.zero_()
            mods = [lin]
            if a.use_bn:
                mods.append(BatchNorm(w))
            mods.append(nn.ReLU())
            if a.dropout > 0:
                mods.append(nn.Dropout(a.dropout))
            layers.append(nn.Sequential(*mods))
            prev = w
        return layers

    class LightSE(nn.Module):
        def __init__(self, n_fields):
            super().__init__()
            self.excitation = nn.Linear(n_fields, n_fields, bias=False)
            with torch.no_grad():
                self.excitation.weight.normal_(0.0, 1.0 / math.sqrt(3.0 * n_fields))

        def forward(self, e):  # (B, F, E)
            att = F.softmax(self.excitation(e.mean(dim=2)), dim=1)
            return e + e * att.unsqueeze(2)

    class IntTower(nn.Module):
        def __init__(self):
            super().__init__()
            for name in ("user", "item", "gender", "age", "occupation", "zip", "genre"):
                e = nn.Embedding(vocab[name], E, padding_idx=0)
                with torch.no_grad():
                    e.weight.normal_(0.0, EMB_STD)
                    e.weight[0].zero_()
                setattr(self, name + "_emb", e)
            self.user_se, self.item_se = LightSE(6), LightSE(2)
            uin, iin, n = 6 * E + 2, 2 * E + 2, len(a.hidden)
            self.outputs = a.fe_input == "outputs"
            if self.outputs:  # FE_l projects user layer l's output (the paper)
                self.user_tower = tower(uin, a.hidden)
                ins = a.hidden
            else:  # its input (the official code): the last layer feeds nothing
                self.user_tower = tower(uin, a.hidden[:n - 1])
                ins = [uin] + a.hidden[:n - 1]
            self.item_tower = tower(iin, a.hidden)
            self.user_fe = nn.ModuleList([default_linear(w, H * D) for w in ins])
            self.item_fe = default_linear(a.hidden[-1], H * D)
            self.bias = nn.Parameter(torch.zeros(()))
            self.scale = 1.0 / (n * H) if a.fe_score == "mean" else 1.0

        @staticmethod
        def bag_mean(emb, ids, lens):
            s = F.embedding_bag(ids, emb.weight, mode="sum", padding_idx=0)
            return s / lens.clamp(min=1).unsqueeze(1)

        def forward(self, b):
            """(logits (B), U_{n-1} (B, H D), V (B, H D))."""
            B = b["user"].shape[0]
            eu = torch.stack([self.user_emb(b["user"]), self.gender_emb(b["gender"]),
                              self.age_emb(b["age"]), self.occupation_emb(b["occupation"]),
                              self.zip_emb(b["zip"]),
                              self.bag_mean(self.item_emb, b["hist"], b["n_hist"])], dim=1)
            ei = torch.stack([self.item_emb(b["item"]),
                              self.bag_mean(self.genre_emb, b["genres"], b["n_genres"])], dim=1)
            dense = b["dense"]
            x = torch.cat([self.user_se(eu).reshape(B, -1), dense[:, 0:2]], dim=1)
            y = torch.cat([self.item_se(ei).reshape(B, -1), dense[:, 2:4]], dim=1)
            for layer in self.item_tower:
                y = layer(y)
            V = self.item_fe(y)
            Vt = V.view(B, H, D).transpose(1, 2)  # (B, D, H)
            score = None
            for l, fe in enumerate(self.user_fe):
                if self.outputs:
                    x = self.user_tower[l](x)
                elif l:
                    x = self.user_tower[l - 1](x)
                U = fe(x)
                s = torch.bmm(U.view(B, H, D), Vt).max(dim=2).values.sum(dim=1)
                score = s if score is None else score + s
            return score * self.scale + self.bias, U, V

    return IntTower()


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
        log("model 'inttower' needs user demographics, which store '%s' lacks" % a.data)
        return 65
    if len(meta["dense_fields"]) != 4:
        log("model 'inttower' expects the 4 dense fields of format 1")
        return 65
    vocab = meta["vocab_sizes"]
    n_train = splits["train"]["n"]
    if n_train == 0:
        log("store '%s' has no train records" % a.data)
        return 65
    gw = max(1, int(max(s["n_genres"].max(initial=0) for s in splits.values())))
    hw = max(1, int(max(s["n_hist"].max(initial=0) for s in splits.values())))

    def to_torch(d):
        t = {k: torch.from_numpy(np.ascontiguousarray(d[k]))
             for k in KEYS + ("label",) if k not in ("genres", "hist")}
        t["genres"] = torch.from_numpy(np.ascontiguousarray(d["genres"][:, :gw]))
        t["hist"] = torch.from_numpy(np.ascontiguousarray(d["hist"][:, :hw]))
        return t

    tens = {s: to_torch(d) for s, d in splits.items()}
    model = build_model(torch, vocab, a)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    gen = torch.Generator().manual_seed(a.seed)
    hyper = {"emb_dim": a.emb_dim, "hidden": a.hidden, "heads": a.heads,
             "head_dim": a.head_dim, "fe_score": a.fe_score, "fe_input": a.fe_input,
             "use_bn": a.use_bn, "dropout": a.dropout,
             "cir_weight": a.cir_weight, "cir_tau": a.cir_tau, "lr": a.lr}
    common = {**info, "optimizer": "adam"}
    emit({"impl": "torch", "model": "inttower", "load_s": round(load_s, 3), "train": n_train,
          "valid": splits["valid"]["n"], "test": splits["test"]["n"], **hyper,
          "parameters": n_params, **common})
    log("inttower: %d parameters; %d train, %d valid, %d test records loaded in %.2fs; "
        "%d torch threads, %s OpenBLAS threads (core %s), batch %d, adam lr %g"
        % (n_params, n_train, splits["valid"]["n"], splits["test"]["n"], load_s,
           torch.get_num_threads(), info["blas_threads"], info["blas_core"], a.batch, a.lr))

    def evaluate(t):
        model.eval()
        out = []
        n = t["label"].shape[0]
        with torch.no_grad():
            for s in range(0, n, a.eval_batch):
                out.append(model({k: v[s:s + a.eval_batch] for k, v in t.items()})[0])
        model.train()
        return torch.cat(out).numpy()

    tr = tens["train"]
    for epoch in range(1, a.epochs + 1):
        perm = torch.randperm(n_train, generator=gen)
        model.train()
        bce_sum = torch.zeros((), dtype=torch.float64)
        cir_sum = torch.zeros((), dtype=torch.float64)
        t0 = time.perf_counter()
        for s in range(0, n_train, a.batch):
            idx = perm[s:s + a.batch]
            b = {k: tr[k].index_select(0, idx) for k in KEYS}
            y = tr["label"].index_select(0, idx)
            logits, U, V = model(b)
            bce = F.binary_cross_entropy_with_logits(logits, y)
            loss = bce
            cir = torch.zeros(())
            if a.cir_weight > 0:
                pos = torch.nonzero(y > 0.5).squeeze(1)
                if pos.numel() > 1:
                    u = F.normalize(U.index_select(0, pos), dim=1)
                    v = F.normalize(V.index_select(0, pos), dim=1)
                    cir = a.cir_weight * F.cross_entropy(
                        (u @ v.t()) / a.cir_tau, torch.arange(pos.numel()))
                    loss = loss + cir
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bce_sum += bce.detach().double() * idx.numel()
            cir_sum += cir.detach().double() * idx.numel()
        secs = time.perf_counter() - t0
        train_loss = float(bce_sum) / n_train
        cir_loss = float(cir_sum) / n_train
        if not math.isfinite(train_loss + cir_loss):
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
            line = {"impl": "torch", "model": "inttower", "split": split, "epoch": epoch,
                    "n": n, "auc": round(auc, 6) if math.isfinite(auc) else None,
                    "logloss": round(ref.logloss(logits, y), 6),
                    "positive_rate": round(float(y.mean()), 4),
                    "train_loss": round(train_loss, 6), "cir_loss": round(cir_loss, 6),
                    "samples_per_s": round(rate), "epoch_s": round(secs, 3),
                    "eval_s": round(time.perf_counter() - te, 3), "threads": a.threads,
                    "batch": a.batch, **hyper, **common}
            if split == "test" and epoch == a.epochs:
                line["final"] = True
            emit(line)
        log("epoch %d: train loss %.4f (cir %.4f), %.0f samples/s (%.1fs)"
            % (epoch, train_loss, cir_loss, rate, secs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
