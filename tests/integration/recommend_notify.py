"""bin/recommend --serve under a real systemd notify socket (a unix datagram
socket, as systemd gives): started on an empty run directory it sends no
READY=1 until the trainer publishes a checkpoint (while it waits, /healthz
answers 503); then READY=1, a STATUS= naming the model and step, WATCHDOG=1
pings; SIGTERM sends STOPPING=1 and exits 0."""
import atexit
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("BIN", "bin")
BIN = BIN if os.path.isabs(BIN) else os.path.join(ROOT, BIN)


def run(*args):
    subprocess.run([os.path.join(BIN, args[0])] + list(args[1:]), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def drain(sock, msgs, seconds):
    end = time.time() + seconds
    while time.time() < end:
        try:
            msgs.append(sock.recv(4096).decode())
        except socket.timeout:
            pass


def status(url):
    try:
        return urllib.request.urlopen(url, timeout=30).status
    except urllib.error.HTTPError as e:
        return e.code


with tempfile.TemporaryDirectory() as t:
    run("mlgen", "-q", "-o", t + "/ml", "--users", "100", "--items", "100", "--ratings", "5000",
        "--seed", "3")
    run("ingest", "-q", "--split", "user", "-o", t + "/ml.lmdb", t + "/ml")
    os.mkdir(t + "/run")
    sock_path = t + "/notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(0.2)
    env = dict(os.environ, NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="2000000")
    env.pop("WATCHDOG_PID", None)
    p = subprocess.Popen([os.path.join(BIN, "recommend"), "--serve", "127.0.0.1:0", "--ckpt",
                          t + "/run", "--data", t + "/ml.lmdb", "--threads", "1"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # a failing check must not leave the server running
    atexit.register(lambda: p.poll() is None and p.kill())
    line = p.stdout.readline().decode()
    assert line.startswith("listening on "), (line, p.stderr.read())
    url = "http://" + line.split()[-1]
    msgs = []
    drain(sock, msgs, 2.5)
    assert not any(m.startswith("READY") for m in msgs), msgs
    assert status(url + "/healthz") == 503
    run("trainer", "-q", "--data", t + "/ml.lmdb", "--model", "ncf", "--threads", "1",
        "--epochs", "1", "--out", t + "/run")
    deadline = time.time() + 120
    while time.time() < deadline and not any(m.startswith("READY") for m in msgs):
        drain(sock, msgs, 0.5)
    drain(sock, msgs, 2.5)  # a watchdog ping or two after READY
    assert status(url + "/healthz") == 200
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=60)
    drain(sock, msgs, 0.5)
    err = p.stderr.read().decode()
    kinds = [m.split("=", 1)[0] for m in msgs]
    assert rc == 0, "exit status %d after SIGTERM: %s" % (rc, err)
    assert "READY" in kinds, (msgs, err)
    ready = kinds.index("READY")
    assert any(m.startswith("STATUS=serving ncf step ") for m in msgs), msgs
    assert "WATCHDOG" in kinds[ready:], msgs
    assert "STOPPING" in kinds and kinds.index("STOPPING") > ready, msgs
    print("ok READY only after the first checkpoint; STATUS, WATCHDOG, STOPPING; exit 0")
