"""bin/trainer under a real systemd notify socket: a test helper listens on
NOTIFY_SOCKET (a unix datagram socket, as systemd does) and checks the
READY=1, STATUS=, WATCHDOG=1 and STOPPING=1 messages of a run stopped by
SIGTERM, which must then exit 0."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("BIN", "bin")
BIN = BIN if os.path.isabs(BIN) else os.path.join(ROOT, BIN)
small = bool(os.environ.get("HOGREC_SANITIZER"))


def run(*args):
    subprocess.run([os.path.join(BIN, args[0])] + list(args[1:]), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


with tempfile.TemporaryDirectory() as t:
    run("mlgen", "-q", "-o", t + "/ml", "--users", "80" if small else "200", "--items",
        "100" if small else "250", "--ratings", "5000" if small else "20000", "--seed", "3")
    run("ingest", "-q", "--split", "user", "-o", t + "/ml.lmdb", t + "/ml")
    sock_path = t + "/notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(0.2)
    env = dict(os.environ, NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="200000")
    env.pop("WATCHDOG_PID", None)
    p = subprocess.Popen([os.path.join(BIN, "trainer"), "-q", "--data", t + "/ml.lmdb",
                          "--model", "dssm", "--hidden", "64,32", "--threads", "1",
                          "--batch", "32", "--epochs", "1000", "--out", t + "/out"],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    msgs, deadline, signalled = [], time.time() + 60, False
    while time.time() < deadline and p.poll() is None:
        try:
            msgs.append(sock.recv(4096).decode())
        except socket.timeout:
            pass
        if not signalled and any(m.startswith("STATUS=epoch 2/") for m in msgs):
            p.send_signal(signal.SIGTERM)
            signalled = True
    rc = p.wait(timeout=60)
    try:
        while True:
            msgs.append(sock.recv(4096).decode())
    except (socket.timeout, BlockingIOError):
        pass
    err = p.stderr.read().decode()
    assert signalled, "never saw the second epoch's STATUS: %r %s" % (msgs, err)
    assert rc == 0, "exit status %d after SIGTERM: %s" % (rc, err)
    kinds = [m.split("=", 1)[0] for m in msgs]
    assert kinds[0] == "READY", msgs[:3]
    assert "STATUS" in kinds and "WATCHDOG" in kinds, set(kinds)
    assert "STOPPING" in kinds, msgs[-5:]
    assert kinds.index("STOPPING") > kinds.index("READY")
    assert any(m.startswith("STATUS=training dssm") for m in msgs), msgs[:3]
    assert os.path.islink(t + "/out/latest"), "no checkpoint after SIGTERM"
    print("ok READY, STATUS, WATCHDOG, STOPPING over NOTIFY_SOCKET; exit 0 on SIGTERM")
