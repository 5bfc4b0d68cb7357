#!/usr/bin/python3
"""Checkpoints written by C, read by Python from docs/FORMAT.md alone.

bin/ckpt selftest-write writes a checkpoint of deterministic tensors
(~673k floats).  A ~20-line reader below (struct + json + zlib + numpy, no
safetensors package: importing it is blocked) loads it, checks the layout
rules and the crc32, and compares every tensor with the values the C side
computed and with `bin/ckpt export` .npy files loaded by numpy.  Then the
CLI: inspect --json, verify (good, corrupt, truncated, missing), an injected
disk-full save (exit 74, nothing published, latest unchanged) and watch
--once running a command on a newly published checkpoint.

Environment: BIN (default "bin") locates the programs.  Prints "ok <check>"
per check; exits non-zero on the first failure.
"""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

sys.modules["safetensors"] = None  # any import of it now fails: not needed

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("BIN", "bin")
CKPT = os.path.join(BIN if os.path.isabs(BIN) else os.path.join(ROOT, BIN), "ckpt")
SHAPES = [("user_emb", 6041, 32), ("item_emb", 3707, 32), ("mlp.w0", 512, 640),
          ("mlp.b0", 1, 512), ("mlp.w1", 64, 512), ("mlp.b1", 1, 64), ("out.w", 1, 64),
          ("out.b", 1, 1), ("empty", 0, 8)]


def ok(what):
    print("ok", what, flush=True)


def file_crc(data, n, version):
    """Version 2: the whole file, its crc's 8 digits read as "00000000"."""
    if version == "1":
        return zlib.crc32(data[8 + n:])  # version 1: the tensor bytes only
    key = b'"crc32":"'
    i = data.find(key, 8, 8 + n)
    if i < 0 or data.find(key, i + 1, 8 + n) >= 0:
        raise ValueError('the header must hold "crc32":" exactly once')
    at = i + len(key)
    return zlib.crc32(data[at + 8:], zlib.crc32(b"00000000", zlib.crc32(data[:at])))


def reseal(data):
    """data (bytes) with its version 2 crc32 recomputed: what a writer does last."""
    (n,) = struct.unpack("<Q", data[:8])
    at = data.find(b'"crc32":"', 8, 8 + n) + 9
    return data[:at] + b"%08x" % file_crc(data, n, "2") + data[at + 8:]


def read_checkpoint(path):
    """The reader of docs/FORMAT.md, "Checkpoints", reading a file."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__")
    if meta["format"] != "hogrec-ckpt" or meta["version"] not in ("1", "2"):
        raise ValueError("not a version 1 or 2 hogrec checkpoint")
    payload = data[8 + n:]
    if file_crc(data, n, meta["version"]) != int(meta["crc32"], 16):
        raise ValueError("checksum mismatch")
    tensors = {}
    for name, e in header.items():
        if e["dtype"] != "F32" or len(e["shape"]) != 2:
            raise ValueError(f"tensor {name}: unexpected dtype or shape")
        begin, end = e["data_offsets"]
        tensors[name] = np.frombuffer(payload[begin:end], dtype="<f4").reshape(e["shape"])
    return meta, json.loads(meta["hogrec"]), tensors, header, n, len(payload)


def expected(k, rows, cols):
    """What selftest-write stores in tensor k (see trainer/main_ckpt.c)."""
    j = np.arange(rows * cols, dtype=np.int64)
    v = ((j * 7919 + k * 104729) % 65536 - 32768).astype(np.float32) / np.float32(4096)
    return v.reshape(rows, cols)


def run(args, want=0, env=None):
    p = subprocess.run([CKPT] + args, capture_output=True, text=True, env=env, timeout=120)
    if p.returncode != want:
        sys.exit(f"FAIL: ckpt {' '.join(args)} exited {p.returncode}, expected {want}\n"
                 f"{p.stdout}{p.stderr}")
    return p


def check(cond, what):
    if not cond:
        sys.exit(f"FAIL: {what}")


def main():
    tmp = tempfile.mkdtemp(prefix="hogrec-ckpt-interop.")
    try:
        d = os.path.join(tmp, "ck")
        path = run(["selftest-write", d, "--step", "12345"]).stdout.strip()
        check(path == os.path.join(d, "ckpt-000000012345.safetensors"), f"path {path}")
        check(os.readlink(os.path.join(d, "latest")) == os.path.basename(path), "latest")

        meta, extra, tensors, header, n, plen = read_checkpoint(path)
        check((8 + n) % 8 == 0, "payload is 8-byte aligned")
        check(all(isinstance(v, str) for v in meta.values()), "metadata values are strings")
        check(meta["model"] == "selftest" and meta["schema_hash"] == "0123456789abcdef", "meta")
        check((meta["epoch"], meta["step"], meta["samples"]) == ("3", "12345", str(12345 * 256)),
              "epoch/step/samples")
        check(abs(int(meta["created"]) - time.time()) < 600, "created")
        check(extra["optim"] == {"name": "adam", "lr": 0.001} and extra["big"] == 2**64 - 1,
              "hogrec JSON")
        check(list(tensors) == [s[0] for s in SHAPES], "tensor order")
        pos = 0
        for name, e in header.items():  # contiguous, in header order, covering the payload
            check(e["data_offsets"][0] == pos, f"{name} contiguous")
            pos = e["data_offsets"][1]
        check(pos == plen, "payload fully indexed")
        for k, (name, r, c) in enumerate(SHAPES):
            check(tensors[name].shape == (r, c), f"{name} shape")
            check(np.array_equal(tensors[name], expected(k, r, c)), f"{name} values")
        ok(f"python reader: {sum(t.size for t in tensors.values())} floats, crc32, layout")

        out = os.path.join(tmp, "npy")
        run(["-q", "export", d, "--all", "-o", out])
        for name, r, c in SHAPES:
            a = np.load(os.path.join(out, name + ".npy"))
            check(a.dtype == np.float32 and a.shape == (r, c) and a.flags["C_CONTIGUOUS"],
                  f"{name}.npy dtype/shape")
            check(np.array_equal(a, tensors[name]), f"{name}.npy equals the reader's")
        one = os.path.join(tmp, "w0.npy")
        run(["export", path, "--tensor", "mlp.w0", "-o", one])
        with open(one, "rb") as f:
            check(f.read(8) == b"\x93NUMPY\x01\x00", "npy format 1.0")
        check(np.array_equal(np.load(one), tensors["mlp.w0"]), "export --tensor")
        run(["export", path, "--tensor", "nope", "-o", one], want=66)
        run(["export", path, "-o", one], want=64)
        ok("bin/ckpt export matches (numpy.load)")

        info = json.loads(run(["inspect", "--json", d]).stdout)
        check(info["step"] == 12345 and info["crc32"] == meta["crc32"], "inspect --json")
        check([t["name"] for t in info["tensors"]] == [s[0] for s in SHAPES], "inspect tensors")
        check("mlp.w0" in run(["inspect", path]).stdout, "inspect text")
        run(["verify", d])
        run(["verify", path])
        check(meta["version"] == "2" and info["version"] == "2", "version 2")
        ok("inspect, verify")

        # The crc covers the metadata: Python edits a value, bin/ckpt refuses
        # it until Python reseals it the way FORMAT.md says.
        with open(path, "rb") as f:
            data = f.read()
        edited = data.replace(b'"step":"12345"', b'"step":"12346"', 1)
        check(edited != data, "step in the header")
        other = os.path.join(tmp, "edited.safetensors")
        with open(other, "wb") as f:
            f.write(edited)
        check("checksum mismatch" in run(["verify", other], want=65).stdout, "edit caught")
        with open(other, "wb") as f:
            f.write(reseal(edited))
        run(["verify", other])
        check(json.loads(run(["inspect", "--json", other]).stdout)["step"] == 12346, "resealed")
        ok("python reseals an edited header; bin/ckpt verifies it")

        with open(path, "rb") as f:
            data = bytearray(f.read())
        bad = os.path.join(tmp, "bad.safetensors")
        data[8 + n + 1000] ^= 0x40
        with open(bad, "wb") as f:
            f.write(data)
        check("checksum mismatch" in run(["verify", bad], want=65).stdout, "flipped byte")
        with open(bad, "wb") as f:
            f.write(data[:len(data) // 2])
        check("truncated" in run(["verify", bad], want=65).stdout, "truncated")
        run(["verify", os.path.join(tmp, "missing.safetensors")], want=66)
        run(["verify"], want=64)
        run(["frobnicate"], want=64)
        # A directory with one bad checkpoint fails and names it.
        shutil.copy(bad, os.path.join(d, "ckpt-000000000001.safetensors"))
        p = run(["verify", d], want=65)
        check("ckpt-000000000001.safetensors" in p.stdout, "verify DIR names the bad file")
        os.unlink(os.path.join(d, "ckpt-000000000001.safetensors"))
        ok("corrupt files rejected (65), missing (66), usage (64)")

        env = dict(os.environ, HOGREC_CKPT_FAULT="100000")
        p = run(["selftest-write", d, "--step", "20000"], want=74, env=env)
        check("No space left on device" in p.stderr, "disk full message")
        check(sorted(os.listdir(d)) == ["ckpt-000000012345.safetensors", "latest"],
              f"nothing left by the failed save: {os.listdir(d)}")
        check(os.readlink(os.path.join(d, "latest")) == os.path.basename(path), "latest kept")
        ok("injected disk full: exit 74, nothing published, latest unchanged")

        got = os.path.join(tmp, "got.txt")
        cmd = [CKPT, "watch", d, "--once", "--", "/bin/sh", "-c", 'echo "$1" > "$0"', got]
        w = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        check("watching" in w.stderr.readline(), "watch started")  # inotify is set up
        new = run(["-q", "selftest-write", d, "--step", "12346"]).stdout.strip()
        rc = w.wait(timeout=30)
        err = w.stderr.read()
        check(rc == 0, f"watch --once exited {rc}: {err}")
        with open(got) as f:
            check(f.read().strip() == new, "watch ran CMD with the new checkpoint's path")
        w = subprocess.Popen([CKPT, "watch", d], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        check("watching" in w.stderr.readline(), "watch started")
        w.send_signal(signal.SIGTERM)
        check(w.wait(timeout=10) == 0, "watch stops cleanly on SIGTERM")
        ok("watch --once runs CMD; SIGTERM stops it")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
