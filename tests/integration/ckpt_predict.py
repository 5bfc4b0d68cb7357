"""A checkpoint is a usable model outside hogrec: numpy loads the latest
checkpoint of a trained NCF with a 20-line safetensors reader that follows
docs/FORMAT.md, recomputes the forward pass of models/ncf.c for the first
test records of the store (read with python3-lmdb/msgpack), and must agree
with `bin/trainer --predict` to float precision."""
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import lmdb
import msgpack
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("BIN", "bin")
BIN = BIN if os.path.isabs(BIN) else os.path.join(ROOT, BIN)


def run(*args):
    return subprocess.run([os.path.join(BIN, args[0])] + list(args[1:]), check=True,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode()


def load_safetensors(path):
    """The whole reader: 8-byte header length, JSON header, raw tensors."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__")
    payload = raw[8 + n:]
    # Version 2: the crc32 of the whole file with its own 8 digits as zeros.
    at = raw.index(b'"crc32":"', 8, 8 + n) + 9
    crc = zlib.crc32(raw[at + 8:], zlib.crc32(b"00000000", zlib.crc32(raw[:at])))
    assert meta["version"] == "2" and "%08x" % crc == meta["crc32"], "checksum"
    tensors = {}
    for name, h in header.items():
        assert h["dtype"] == "F32"
        a, b = h["data_offsets"]
        tensors[name] = np.frombuffer(payload[a:b], dtype="<f4").reshape(h["shape"])
    return meta, tensors


with tempfile.TemporaryDirectory() as t:
    run("mlgen", "-q", "-o", t + "/ml", "--users", "120", "--items", "150", "--ratings",
        "8000", "--seed", "5")
    run("ingest", "-q", "--split", "user", "-o", t + "/ml.lmdb", t + "/ml")
    run("trainer", "-q", "--data", t + "/ml.lmdb", "--model", "ncf", "--out", t + "/out",
        "--epochs", "2", "--threads", "1")
    want = [json.loads(l) for l in run("trainer", "-q", "--data", t + "/ml.lmdb", "--model",
                                       "ncf", "--out", t + "/out", "--predict", "test",
                                       "--limit", "25").splitlines()]
    meta, w = load_safetensors(os.path.join(t, "out", "latest"))
    assert meta["format"] == "hogrec-ckpt" and meta["model"] == "ncf", meta
    env = lmdb.open(t + "/ml.lmdb", readonly=True, lock=False, max_dbs=8)
    test_db = env.open_db(b"test", create=False)
    with env.begin() as txn:
        recs = [msgpack.unpackb(txn.get(struct.pack(">Q", k), db=test_db))
                for k in range(len(want))]
    # models/ncf.c: x = [user_emb[u] | item_emb[i]]; MLP with ReLU; last layer linear.
    x = np.concatenate([w["user_emb"][[r[5] for r in recs]], w["item_emb"][[r[6] for r in recs]]],
                       axis=1).astype(np.float64)
    layers = sorted({k.split(".")[1] for k in w if k.startswith("mlp.")}, key=int)
    for i, layer in enumerate(layers):
        x = x @ w["mlp.%s.w" % layer].T.astype(np.float64) + w["mlp.%s.b" % layer][0]
        if i < len(layers) - 1:
            x = np.maximum(x, 0)
    got = x[:, 0]
    for r, g, p in zip(recs, got, want):
        assert (r[0], r[1]) == (p["user_raw"], p["item_raw"]), (r[:2], p)
        assert abs(g - p["logit"]) < 1e-4 * max(1, abs(g)), (p, g)
    print("ok numpy reproduces bin/trainer's logits for %d test records from the checkpoint"
          % len(want))
