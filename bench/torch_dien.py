#!/usr/bin/python3
"""PyTorch twin of hogrec's dien (Deep Interest Evolution Network).

    bench/torch_dien.py --data STORE [--epochs 1] [--batch 256] [--lr 0.001]
                        [--emb-dim 32] [--hidden 200,80]
                        [--gru-type augru|augru_paper|agru|aigru] [--aux-weight 1]
                        [--att-activation dice|prelu|relu] [--att-hidden 64]
                        [--att-hidden-second 16] [--dnn-activation dice|prelu|relu]
                        [--dnn-bn yes|no] [--threads 2] [--blas-threads 1] [--seed 1]
                        [--max-train N] [--max-batches N] [--eval-batch 2048]
                        [--keep-denormals]

The options are bin/trainer's (the same names and values), so that
bench/run.sh hands both sides the same ones.

Reads a hogrec store (docs/FORMAT.md) with bench/torch_ref.py's loader (and
the records' neg_hist, which that loader skips, in a second pass of the
train split), the items table with bench/torch_twotower.py's reader, and
trains the architecture of models/dien.c (docs/models.md, "dien") written
the way PyTorch users write DIEN (DeepCTR-Torch's DIEN, the seed
write-up 004): nn.GRU over a PackedSequence for the interest extractor, a
Python loop over the packed batch sizes for the AUGRUs / AGRU (DeepCTR-Torch's
DynamicGRU, the input projections of all steps in one F.linear first and
split into the steps with torch.split),
nn.GRU over the score-scaled states for AIGRU.  Debian packages only
(python3-torch 1.13, python3-numpy, python3-lmdb, python3-msgpack).

The model (E = --emb-dim, D = 2E; every Linear Xavier-uniform with bias 0,
embeddings N(0, 0.05^2) with row 0 zero, as models/params.c initialises):
  * an item's representation: [item_emb[i] | mean of genre_emb over i's
    genres] (D); the candidate's genres from its record, a history or
    negative item's from the store's items table;
  * the interest extractor: a GRU (hidden D) over the history's
    representations, oldest first (nn.GRU; its z is hogrec's 1 - u, the same
    family; weight_ih / weight_hh Xavier-uniform as one stacked matrix each,
    biases 0, as hogrec's);
  * the auxiliary loss (--aux-weight, default 1; 0 leaves the network out):
    for t + 1 < len, the pair [h_t, e_{t+1}] labelled 1 and, where the
    record has a negative at t + 1, [h_t, e^neg_{t+1}] labelled 0, scored by
    Linear(2D, 100) -> sigmoid -> Linear(100, 50) -> sigmoid -> Linear(50,
    1); the mean BCE over all of them (the first Linear's h and e column
    blocks initialised as hogrec's two tensors, each Xavier over (100, D));
  * attention: DIN's local activation unit over [q | h_t | q - h_t | q * h_t],
    q the candidate: Linear(4D, --att-hidden-1) -> act [-> Linear(.,
    --att-hidden-2) -> act] -> Linear(., 1, no bias), on the valid
    positions only (Dice's batch statistics over them, as models/nn/attn.h),
    softmax over each row's history;
  * interest evolution (--gru-type): augru, the authors' AUGRU (their
    VecAttGRUCell: 1 - u' = (1 - a_t)(1 - u)), augru_paper, the paper's
    (u' = a_t u, DeepCTR-Torch's AUGRUCell), AGRU (u' = a_t) or AIGRU
    (inputs a_t h_t), hidden D, gate blocks (r, u, n) / (r, n), the last
    state of each row;
  * x = [user | gender | age | occupation | zip | dense (4 values) | q |
    last state | sum of the history's representations | q * that sum]
    (13E + 4: the authors' item_his_eb_sum and item_eb * item_his_eb_sum), then per
    --hidden width Linear (no bias with --dnn-bn) -> [BatchNorm1d(eps 1e-5,
    momentum 0.1)] -> Dice / PReLU / ReLU, and a Linear(., 1) logit; loss =
    BCE + aux_weight * aux.
Dice: BatchNorm1d(affine=False, eps 1e-8, momentum 0.1) -> sigmoid p,
p x + (1 - p) alpha x, alpha 0 at first (DeepCTR); PReLU slopes 0.25.  An
empty history gives zero states, a zero last state and a zero sum.

Training: torch.optim.Adam (betas 0.9/0.999, eps 1e-8, dense gradients for
every table), --batch shuffled train records per step.  stdout, JSON lines
as torch_ref.py's, with "aux_loss" beside "train_loss" (the epoch's means
of the two terms, the aux one weighted, as bin/trainer reports them);
samples_per_s = train records / wall seconds of the epoch's loop (batch
gathering, forward, backward, optimiser step), train_cpu_s the process's
CPU seconds (every thread) over the same loop; --max-batches N ends each
epoch after N shuffled batches (a speed measurement: the rate of typical
batches, the AUCs those of a partly trained model).  Evaluation scores every
valid and test record in eval mode (running statistics) in --eval-batch
rows; exact AUC and logloss as torch_ref.py.

Differences from bin/trainer, as torch_ref.py's docstring lists them
(synchronous training with --threads OpenMP threads and --blas-threads
OpenBLAS ones, dense Adam over every row, eps inside the bias correction,
flush-to-zero on the main thread only, other random streams).

Exit status: 0 ok, 64 bad option, 65 bad store (no demographics, no
history, not the 4 dense fields) or non-finite loss, 66 store missing.
"""
import itertools
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ref as ref  # noqa: E402  (the store loader, threads, metrics, output)
import torch_twotower as twin_tt  # noqa: E402  (the items table)

ref.PROG = "torch_dien"
log, emit = ref.log, ref.emit

GRU_TYPES = ("augru", "augru_paper", "agru", "aigru")
ACTS = ("dice", "prelu", "relu")
AUX_H = (100, 50)
DICE_EPS, MOMENTUM = 1e-8, 0.1
FIELDS = ("user", "item", "gender", "age", "occupation", "zip", "label", "genres", "hist",
          "dense")


def yes_no(text):
    """bin/trainer's spelling of a boolean option."""
    v = {"yes": True, "true": True, "on": True, "1": True,
         "no": False, "false": False, "off": False, "0": False}.get(text.lower())
    if v is None:
        raise ValueError(text)
    return v


def parse_args(argv):
    ap = ref.Parser(description="PyTorch twin of hogrec's dien (see the module docstring).")
    ap.add_argument("--data", required=True, help="hogrec store (LMDB directory)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="torch intra-op threads (default: cores)")
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="OpenBLAS threads (default 1, as torch_ref.py)")
    ap.add_argument("--emb-dim", type=int, default=32)
    ap.add_argument("--hidden", default="200,80", help="MLP widths (default 200,80)")
    ap.add_argument("--gru-type", choices=GRU_TYPES, default="augru")
    ap.add_argument("--aux-weight", type=float, default=1.0)
    ap.add_argument("--att-activation", choices=ACTS, default="dice")
    ap.add_argument("--att-hidden", type=int, default=64)
    ap.add_argument("--att-hidden-second", type=int, default=16, help="0: one hidden layer")
    ap.add_argument("--dnn-activation", choices=ACTS, default="dice")
    ap.add_argument("--dnn-bn", type=yes_no, default=False, metavar="yes|no",
                    help="BatchNorm in the MLP")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-train", type=int, default=None,
                    help="use only the first N train records (time order)")
    ap.add_argument("--max-batches", type=int, default=None,
                    help="speed only: end each epoch after N batches (of a shuffled epoch: "
                         "the rate of typical batches without training a whole epoch)")
    ap.add_argument("--eval-batch", type=int, default=2048)
    ap.add_argument("--keep-denormals", action="store_true",
                    help="do not call torch.set_flush_denormal(True)")
    a = ap.parse_args(argv)
    if a.epochs < 1 or a.batch < 2 or a.threads < 1 or a.emb_dim < 1 or a.eval_batch < 1:
        ap.error("--epochs, --threads, --emb-dim, --eval-batch must be >= 1, --batch >= 2")
    if a.blas_threads < 1 or a.att_hidden < 1 or a.att_hidden_second < 0:
        ap.error("--blas-threads and --att-hidden must be >= 1, --att-hidden-second >= 0")
    if not a.lr > 0 or not math.isfinite(a.lr):
        ap.error("--lr must be positive")
    if not 0 <= a.aux_weight <= 100:
        ap.error("--aux-weight must be 0 .. 100")
    if a.max_train is not None and a.max_train < 1:
        ap.error("--max-train must be >= 1")
    if a.max_batches is not None and a.max_batches < 1:
        ap.error("--max-batches must be >= 1")
    try:
        a.hidden = [int(x) for x in a.hidden.split(",")]
    except ValueError:
        ap.error("--hidden: '%s' is not a list of widths" % a.hidden)
    if not a.hidden or min(a.hidden) < 1:
        ap.error("--hidden: widths must be >= 1")
    return a


def load_neg_hist(path, n, L, limit=None):
    """The train split's neg_hist (n, L) and lengths (n): the field
    torch_ref.load_split does not decode."""
    import lmdb
    import msgpack
    want = n if limit is None else min(n, limit)
    neg = np.zeros((want, L), dtype=np.int64)
    n_neg = np.zeros(want, dtype=np.int32)
    env = lmdb.open(path, readonly=True, lock=False, max_dbs=8, subdir=True)
    try:
        with env.begin() as txn:
            cur = txn.cursor(db=env.open_db(b"train", txn=txn, create=False))
            it = cur.iternext(keys=False, values=True) if cur.first() else iter(())
            col = ref.REC["neg_hist"]
            got = 0
            while got < want:
                vals = list(itertools.islice(it, min(65536, want - got)))
                if not vals:
                    break
                seqs = [msgpack.unpackb(v, use_list=False)[col] for v in vals]
                ref.fill_padded(neg[got:got + len(seqs)], n_neg[got:got + len(seqs)], seqs)
                got += len(seqs)
    finally:
        env.close()
    return neg, n_neg


def build_model(torch, vocab, a, n_dense, item_genres, item_ngenres):
    nn = torch.nn
    F = torch.nn.functional
    E, D = a.emb_dim, 2 * a.emb_dim

    def xavier_(w):
        b = math.sqrt(6.0 / (w.shape[0] + w.shape[1]))
        with torch.no_grad():
            w.uniform_(-b, b)

    def linear(i, o, bias=True):
        lin = nn.Linear(i, o, bias=bias)
        xavier_(lin.weight)
        if bias:
            with torch.no_grad():
                lin.bias.zero_()
        return lin

    class Dice(nn.Module):
        def __init__(self, w):
            super().__init__()
            self.bn = nn.BatchNorm1d(w, eps=DICE_EPS, momentum=MOMENTUM, affine=False)
            self.alpha = nn.Parameter(torch.zeros(w))

        def forward(self, x):
            p = torch.sigmoid(self.bn(x))
            return p * x + (1 - p) * self.alpha * x

    def act(name, w):
        if name == "dice":
            return Dice(w)
        if name == "prelu":
            return nn.PReLU(w, init=0.25)
        return nn.ReLU()

    def gru_params(G):
        w_ih, w_hh = nn.Parameter(torch.empty(G * D, D)), nn.Parameter(torch.empty(G * D, D))
        xavier_(w_ih)
        xavier_(w_hh)
        return (w_ih, w_hh, nn.Parameter(torch.zeros(G * D)), nn.Parameter(torch.zeros(G * D)))

    class DIEN(nn.Module):
        def __init__(self):
            super().__init__()
            for name in ("user", "item", "gender", "age", "occupation", "zip", "genre"):
                e = nn.Embedding(vocab[name], E, padding_idx=0)
                with torch.no_grad():
                    e.weight.normal_(0.0, 0.05)
                    e.weight[0].zero_()
                setattr(self, name + "_emb", e)
            self.register_buffer("item_genres", item_genres)
            self.register_buffer("item_ngenres", item_ngenres)
            self.extractor = nn.GRU(D, D, batch_first=True)
            xavier_(self.extractor.weight_ih_l0)
            xavier_(self.extractor.weight_hh_l0)
            with torch.no_grad():
                self.extractor.bias_ih_l0.zero_()
                self.extractor.bias_hh_l0.zero_()
            if a.aux_weight > 0:
                self.aux1 = linear(2 * D, AUX_H[0])
                xavier_(self.aux1.weight[:, :D])  # hogrec's aux.w1h and aux.w1e
                xavier_(self.aux1.weight[:, D:])
                self.aux2 = linear(AUX_H[0], AUX_H[1])
                self.aux3 = linear(AUX_H[1], 1)
            widths = [a.att_hidden] + ([a.att_hidden_second] if a.att_hidden_second else [])
            layers, prev = [], 4 * D
            for w in widths:
                layers += [linear(prev, w), act(a.att_activation, w)]
                prev = w
            layers.append(linear(prev, 1, bias=False))  # a softmax follows: no bias
            self.att = nn.Sequential(*layers)
            if a.gru_type == "aigru":
                self.evolution = nn.GRU(D, D, batch_first=True)
                xavier_(self.evolution.weight_ih_l0)
                xavier_(self.evolution.weight_hh_l0)
                with torch.no_grad():
                    self.evolution.bias_ih_l0.zero_()
                    self.evolution.bias_hh_l0.zero_()
            else:
                self.evo = nn.ParameterList(gru_params(2 if a.gru_type == "agru" else 3))
            layers, prev = [], 13 * E + n_dense
            for w in a.hidden:
                layers.append(linear(prev, w, bias=not a.dnn_bn))  # as models/blocks.c
                if a.dnn_bn:
                    layers.append(nn.BatchNorm1d(w, eps=1e-5, momentum=MOMENTUM))
                layers.append(act(a.dnn_activation, w))
                prev = w
            layers.append(linear(prev, 1))
            self.mlp = nn.Sequential(*layers)

        def represent(self, items, genres, n_genres):
            """[item_emb | mean genre_emb] of (N,) items with (N, G) genres."""
            g = F.embedding_bag(genres, self.genre_emb.weight, mode="sum", padding_idx=0)
            return torch.cat([self.item_emb(items),
                              g / n_genres.clamp(min=1).unsqueeze(1).to(g.dtype)], dim=1)

        def history(self, ids):
            return self.represent(ids, self.item_genres[ids], self.item_ngenres[ids])

        def dynamic_gru(self, x, att, batch_sizes):
            """AUGRU (either form) / AGRU over packed x (N, D) with packed scores att (N):
            DeepCTR-Torch's DynamicGRU loop; returns each row's last state in
            the packing's (sorted) row order."""
            w_ih, w_hh, b_ih, b_hh = self.evo
            sizes = batch_sizes.tolist()
            # every step's input projection at once, split into the steps (one
            # SplitBackward: slicing per step, as DeepCTR-Torch does, makes
            # autograd build a full-size gradient for every slice)
            gis = F.linear(x, w_ih, b_ih).split(sizes)
            atts = att.unsqueeze(1).split(sizes)
            h = x.new_zeros(sizes[0], D)
            for bs, gi, a_t in zip(sizes, gis, atts):
                hx = h[:bs]
                gh = F.linear(hx, w_hh, b_hh)
                if a.gru_type == "augru":  # the authors' VecAttGRUCell: the keep gate scaled
                    i_r, i_u, i_n = gi.chunk(3, 1)
                    h_r, h_u, h_n = gh.chunk(3, 1)
                    u = 1 - (1 - a_t) * (1 - torch.sigmoid(i_u + h_u))
                elif a.gru_type == "augru_paper":
                    i_r, i_u, i_n = gi.chunk(3, 1)
                    h_r, h_u, h_n = gh.chunk(3, 1)
                    u = a_t * torch.sigmoid(i_u + h_u)
                else:
                    i_r, i_n = gi.chunk(2, 1)
                    h_r, h_n = gh.chunk(2, 1)
                    u = a_t
                r = torch.sigmoid(i_r + h_r)
                n = torch.tanh(i_n + r * h_n)
                h = torch.cat([hx + u * (n - hx), h[bs:]], dim=0)
            return h

        def forward(self, b, with_aux):
            B = b["item"].shape[0]
            q = self.represent(b["item"], b["genres"], b["n_genres"])  # (B, D)
            lens = b["n_hist"]
            rows = torch.nonzero(lens > 0).squeeze(1)  # rows with a history
            last = q.new_zeros(B, D)
            hsum = q.new_zeros(B, D)
            aux = q.new_zeros(())
            if rows.numel():
                lr = lens[rows]
                T = int(lr.max())
                mask = torch.arange(T).unsqueeze(0) < lr.unsqueeze(1)  # (b, T)
                keys = b["hist"][rows, :T]
                e = q.new_zeros(rows.numel(), T, D)
                e[mask] = self.history(keys[mask])
                hsum[rows] = e.sum(dim=1)
                packed = nn.utils.rnn.pack_padded_sequence(e, lr, batch_first=True,
                                                           enforce_sorted=False)
                out, _ = self.extractor(packed)
                h, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
                if with_aux:
                    aux = self.aux_loss(h, e, b, rows, lr, mask, T)
                # attention on the valid positions only, softmax over each row
                qr = q[rows]
                qk = qr.unsqueeze(1).expand(-1, T, -1)[mask]
                k = h[mask]
                s = self.att(torch.cat([qk, k, qk - k, qk * k], dim=1)).squeeze(1)
                scores = q.new_full((rows.numel(), T), -math.inf)
                scores[mask] = s
                att = torch.softmax(scores, dim=1)
                if a.gru_type == "aigru":
                    xs = nn.utils.rnn.pack_padded_sequence(h * att.unsqueeze(2), lr,
                                                           batch_first=True,
                                                           enforce_sorted=False)
                    _, hn = self.evolution(xs)
                    last[rows] = hn[0]
                else:
                    pa = nn.utils.rnn.pack_padded_sequence(att, lr, batch_first=True,
                                                           enforce_sorted=False)
                    hs = self.dynamic_gru(out.data, pa.data, out.batch_sizes)
                    last[rows] = hs[out.unsorted_indices]
            x = torch.cat([self.user_emb(b["user"]), self.gender_emb(b["gender"]),
                           self.age_emb(b["age"]), self.occupation_emb(b["occupation"]),
                           self.zip_emb(b["zip"]), b["dense"], q, last, hsum, q * hsum], dim=1)
            return self.mlp(x).squeeze(1), aux

        def aux_loss(self, h, e, b, rows, lr, mask, T):
            """BCE of the auxiliary network over the valid (h_t, e_{t+1}) pairs
            and the (h_t, e^neg_{t+1}) ones where a negative exists."""
            if T < 2:
                return h.new_zeros(())
            pos_m = mask[:, 1:]  # t + 1 < len
            nneg = b["n_neg"][rows]
            neg_m = pos_m & (torch.arange(1, T).unsqueeze(0) < nneg.unsqueeze(1))
            hs = h[:, :-1]
            negs = b["neg"][rows, 1:T]
            zp = torch.cat([hs[pos_m], e[:, 1:][pos_m]], dim=1)
            zn = torch.cat([hs[neg_m], self.history(negs[neg_m])], dim=1)
            z = torch.cat([zp, zn], dim=0)
            if z.shape[0] == 0:
                return h.new_zeros(())
            logit = self.aux3(torch.sigmoid(self.aux2(torch.sigmoid(self.aux1(z))))).squeeze(1)
            y = torch.cat([torch.ones(zp.shape[0]), torch.zeros(zn.shape[0])])
            return F.binary_cross_entropy_with_logits(logit, y)

    return DIEN()


def main(argv):
    a = parse_args(argv)

    t0 = time.perf_counter()
    try:
        meta, splits = ref.load_store(a.data, a.max_train, fields=FIELDS)
        if not meta.get("has_demographics"):
            raise ref.StoreError(65, "model 'dien' needs user demographics, which store "
                                 "'%s' lacks" % a.data)
        if len(meta["dense_fields"]) != 4:
            raise ref.StoreError(65, "model 'dien' expects the 4 dense fields of format 1")
        L = int(meta["options"]["hist_len"])
        if L == 0:
            raise ref.StoreError(65, "model 'dien' needs histories; the store has none")
        neg, n_neg = load_neg_hist(a.data, splits["train"]["n"], L, a.max_train)
        vocab = meta["vocab_sizes"]
        n_items = int(vocab["item"])
        ig, ing, _ = twin_tt.items_table(a.data, meta, n_items)
    except ref.StoreError as e:
        log(str(e))
        return e.code
    load_s = time.perf_counter() - t0

    torch, info = ref.setup_torch(a.threads, a.blas_threads, a.seed, a.keep_denormals)
    n_dense = len(meta["dense_fields"])
    model = build_model(torch, vocab, a, n_dense, torch.from_numpy(ig),
                        torch.from_numpy(ing.astype(np.int64)))
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    gen = torch.Generator().manual_seed(a.seed)
    gw = max(1, int(max(s["n_genres"].max(initial=0) for s in splits.values())))

    def to_torch(d, extra=None):
        t = {k: torch.from_numpy(np.ascontiguousarray(d[k]))
             for k in ("user", "item", "gender", "age", "occupation", "zip", "dense", "hist",
                       "label")}
        t["genres"] = torch.from_numpy(np.ascontiguousarray(d["genres"][:, :gw]))
        t["n_genres"] = torch.from_numpy(d["n_genres"].astype(np.int64))
        t["n_hist"] = torch.from_numpy(d["n_hist"].astype(np.int64))
        if extra:
            t.update(extra)
        return t

    tr = to_torch(splits["train"], {"neg": torch.from_numpy(neg),
                                    "n_neg": torch.from_numpy(n_neg.astype(np.int64))})
    ev = {s: to_torch(splits[s]) for s in ("valid", "test")}
    n_train = splits["train"]["n"]
    hyper = {"emb_dim": a.emb_dim, "hidden": a.hidden, "gru_type": a.gru_type,
             "aux_weight": a.aux_weight, "att_activation": a.att_activation,
             "att_hidden": [a.att_hidden, a.att_hidden_second],
             "dnn_activation": a.dnn_activation, "dnn_bn": a.dnn_bn, "lr": a.lr}
    common = {**info, "optimizer": "adam"}
    emit({"impl": "torch", "model": "dien", "load_s": round(load_s, 3), "train": n_train,
          "valid": splits["valid"]["n"], "test": splits["test"]["n"], **hyper,
          "parameters": n_params, **common})
    log("dien (%s): %d parameters; %d train, %d valid, %d test records loaded in %.2fs; "
        "%d torch threads, %s OpenBLAS threads (core %s), batch %d, adam lr %g"
        % (a.gru_type, n_params, n_train, splits["valid"]["n"], splits["test"]["n"], load_s,
           torch.get_num_threads(), info["blas_threads"], info["blas_core"], a.batch, a.lr))

    def evaluate(t):
        model.eval()
        out = []
        n = t["label"].shape[0]
        with torch.no_grad():
            for s in range(0, n, a.eval_batch):
                out.append(model({k: v[s:s + a.eval_batch] for k, v in t.items()}, False)[0])
        model.train()
        return torch.cat(out).numpy()

    keys = list(tr)
    with_aux = a.aux_weight > 0
    for epoch in range(1, a.epochs + 1):
        perm = torch.randperm(n_train, generator=gen)
        model.train()
        sums = torch.zeros(2, dtype=torch.float64)
        t0, c0 = time.perf_counter(), time.process_time()
        end = n_train if a.max_batches is None else min(n_train, a.max_batches * a.batch)
        for s in range(0, end, a.batch):
            idx = perm[s:s + a.batch]
            if idx.numel() < 2:  # BatchNorm needs two rows in training
                continue
            b = {k: tr[k].index_select(0, idx) for k in keys}
            logits, aux = model(b, with_aux)
            bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, b["label"])
            loss = bce + a.aux_weight * aux
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums += torch.stack([bce.detach(), a.aux_weight * aux.detach()]).double() * idx.numel()
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        train_loss, aux_loss = (float(x) / end for x in sums)
        if not math.isfinite(train_loss + aux_loss):
            log("loss is not finite in epoch %d; try a lower --lr" % epoch)
            return 65
        rate = end / secs
        for split in ("valid", "test"):
            t = ev[split]
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
            line = {"impl": "torch", "split": split, "epoch": epoch, "model": "dien", "n": n,
                    "auc": round(auc, 6) if math.isfinite(auc) else None,
                    "logloss": round(ref.logloss(logits, y), 6),
                    "positive_rate": round(float(y.mean()), 4),
                    "train_loss": round(train_loss, 6), "aux_loss": round(aux_loss, 6),
                    "samples_per_s": round(rate), "epoch_s": round(secs, 3),
                    "train_cpu_s": round(cpu, 3),
                    "eval_s": round(time.perf_counter() - te, 3), "threads": a.threads,
                    "batch": a.batch, **hyper, **common}
            if split == "test" and epoch == a.epochs:
                line["final"] = True
            emit(line)
        log("epoch %d: train loss %.4f, aux %.4f, %.0f samples/s (%.1fs)"
            % (epoch, train_loss, aux_loss, rate, secs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
