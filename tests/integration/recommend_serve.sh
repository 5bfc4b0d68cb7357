# bin/recommend --serve (serve/http.c, reload.c, swap.c) against curl on
# loopback, on a port the system picks (--serve 127.0.0.1:0; the server
# prints the port it got).
#  1. a server started on an empty run directory answers 503 until the
#     trainer publishes its first checkpoint, then 200;
#  2. while two curl loops request /recommend back to back, the trainer
#     publishes a checkpoint per epoch: no request fails (every answer 200
#     once the first model is in, every curl exits 0), each loop sees the
#     step only grow, and the server ends on the run's latest checkpoint;
#  3. /recommend's items equal bin/recommend's for the same checkpoint;
#     /healthz and /metrics report the model, step, requests, reloads;
#  4. bad requests: 400 (missing, non-numeric, negative, huge user; k out
#     of range; unknown or repeated parameter), 404 (unknown path, unknown
#     user), 405 (POST, DELETE), 413 (a body), 414 (a long query), each with
#     a JSON body {"error", "status"}; an oversized header gets a 4xx from
#     libmicrohttpd; the server is still up after all of them;
#  5. a corrupt checkpoint published under a final name is skipped (the
#     step stays, the log names it); a valid checkpoint of another store's
#     schema is refused and counted (reload failures 1), the model stays;
#  6. SIGTERM stops it cleanly (exit 0); usage errors 64, a missing
#     directory 66, a port in use 74.
source "$(dirname "$0")/_lib.sh"
# a failing check must not leave a server or a curl loop running
spid= l1= l2=
trap 'kill $spid $l1 $l2 2>/dev/null || true; rm -rf "$T"' EXIT

"$BIN/mlgen" -q -o "$T/ml" --users 300 --items 300 --ratings 20000 --seed 5
"$BIN/ingest" -q --split global -o "$T/gl.lmdb" "$T/ml"
"$BIN/ingest" -q --split global --hist-len 10 -o "$T/other.lmdb" "$T/ml"
mkdir "$T/run"
train() { "$BIN/trainer" -q --threads 1 --batch 64 --seed 1 --model gmf --emb-dim 8 "$@" >/dev/null; }
user=$(head -1 "$T/ml/ratings.dat" | cut -d: -f1)

# start_server OUT ERR ARGS...: runs bin/recommend --serve in the background
# ($spid), waits for its "listening on" line, sets $url.
start_server() {
	local out=$1; errf=$2; shift 2
	"$BIN/recommend" --serve 127.0.0.1:0 "$@" >"$out" 2>"$errf" &
	spid=$! pid=$spid
	wait_for "the server's port" grep -qs '^listening on ' "$out"
	url="http://$(sed -n 's/^listening on //p' "$out")"
}
get() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }

# 1. empty directory: 503 until the first checkpoint
start_server "$T/srv.out" "$T/srv.err" --ckpt "$T/run" --data "$T/gl.lmdb" --threads 2
[ "$(get "$url/recommend?user=$user")" = 503 ] || fail "no model yet, not 503"
[ "$(get "$url/healthz")" = 503 ] || fail "/healthz before a model: not 503"
grep -q '"loading"' "$T/body" || fail "/healthz: not loading"
ok "an empty run directory: 503 until the first checkpoint"

# 2. requests in flight while the trainer publishes one checkpoint per epoch
loop() { # loop N: requests until $T/stop exists; one line "http_code curl_status step" each
	while [ ! -e "$T/stop" ]; do
		local rc=0 code
		code=$(curl -s -o "$T/b$1" -w '%{http_code}' --max-time 60 "$url/recommend?user=$user&k=5") || rc=$?
		echo "$code $rc $(sed -n 's/.*"step":\([0-9]*\).*/\1/p' "$T/b$1")"
	done >"$T/loop$1"
}
loop 1 & l1=$!
loop 2 & l2=$!
train --data "$T/gl.lmdb" --out "$T/run" --epochs 3 --early-stop 0
last=$(readlink "$T/run/latest" | sed 's/ckpt-0*\([0-9]*\)\.safetensors/\1/')
wait_for "step $last served" sh -c "curl -s '$url/healthz' | grep -q '\"step\":$last}'"
# each loop answered by the last model at least twice, however slow the build
served_twice() { [ "$(grep -c "^200 0 $last\$" "$T/loop1")" -ge 2 ] && [ "$(grep -c "^200 0 $last\$" "$T/loop2")" -ge 2 ]; }
wait_for "both loops served by step $last" served_twice
touch "$T/stop"
wait $l1 $l2
/usr/bin/python3 - "$T/loop1" "$T/loop2" "$last" <<'PY'
import sys
last = int(sys.argv[3])
for p in sys.argv[1:3]:
    rows = [l.split() for l in open(p).read().splitlines()]
    assert rows, p
    served = False
    steps = []
    for r in rows:
        code, rc = r[0], int(r[1])
        assert rc == 0, (p, r, "curl failed")
        if code == "503" and not served:
            continue
        assert code == "200", (p, r, "a request failed after the first model")
        served = True
        steps.append(int(r[2]))
    assert steps == sorted(steps), (p, "the step went back", steps)
    assert steps and steps[-1] == last, (p, steps[-3:], last)
    print(p, len(rows), "requests,", len(steps), "answered by a model, steps", sorted(set(steps)))
PY
n=$(ls "$T/run" | grep -c '^ckpt-')
[ "$n" -ge 2 ] || fail "the trainer published $n checkpoints"
ok "checkpoints published while curl loops ran: no request failed, the step only grew, to $last"

# 3. the same list as the CLI; healthz; metrics
[ "$(get "$url/recommend?user=$user&k=7")" = 200 ] || fail "/recommend not 200"
"$BIN/recommend" -q --ckpt "$T/run" --data "$T/gl.lmdb" --user "$user" -k 7 --format json >"$T/cli.json"
/usr/bin/python3 - "$T/body" "$T/cli.json" "$last" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["step"] == int(sys.argv[3]) and a["source"] == "model", a
assert a["items"] == b["items"] and len(a["items"]) == 7, (a, b)
PY
[ "$(get "$url/healthz")" = 200 ] && grep -q "\"model\":\"gmf\",\"step\":$last" "$T/body" ||
	fail "/healthz: $(cat "$T/body")"
[ "$(get "$url/metrics")" = 200 ] || fail "/metrics not 200"
grep -q "^hogrec_checkpoint_step $last$" "$T/body" || fail "metrics: no step $last"
grep -q '^hogrec_checkpoint_info{model="gmf",path=".*ckpt-0*'"$last"'.safetensors"} 1$' "$T/body" ||
	fail "metrics: no checkpoint info"
reloads=$(sed -n 's/^hogrec_reloads_total //p' "$T/body")
[ "$reloads" -ge 2 ] || fail "metrics: $reloads reloads"
grep -q '^hogrec_reload_failures_total 0$' "$T/body" || fail "metrics: reload failures"
reqs=$(sed -n 's/^hogrec_requests_total //p' "$T/body")
[ "$reqs" -gt 10 ] || fail "metrics: $reqs requests"
ok "/recommend equals the CLI's list; /healthz, /metrics ($reqs requests, $reloads reloads)"

# 4. bad requests
while read -r want how path; do
	case $how in
	GET) code=$(get "$url$path") ;;
	BODY) code=$(get -X GET -H 'Content-Type: text/plain' --data-binary abc "$url$path") ;;
	*) code=$(get -X "$how" "$url$path") ;;
	esac
	[ "$code" = "$want" ] || fail "$how $path: $code, expected $want ($(cat "$T/body"))"
	/usr/bin/python3 -c '
import json, sys
b = json.load(open(sys.argv[1]))
assert b["status"] == int(sys.argv[2]) and b["error"], b' "$T/body" "$want" ||
		fail "$how $path: not a JSON error: $(cat "$T/body")"
done <<EOF2
400 GET /recommend
400 GET /recommend?k=5
400 GET /recommend?user=abc
400 GET /recommend?user=-1
400 GET /recommend?user=4294967296
400 GET /recommend?user=1%00
400 GET /recommend?user=%ff%fe
400 GET /recommend?user=$user&k=0
400 GET /recommend?user=$user&k=1001
400 GET /recommend?user=$user&k=
400 GET /recommend?user=$user&exclude_rated=maybe
400 GET /recommend?user=$user&bogus=1
400 GET /recommend?user=$user&user=$user
400 GET /recommend?user
400 GET /healthz?x=1
404 GET /recommend?user=99999
404 GET /nothing
404 GET /
405 POST /recommend?user=$user
405 DELETE /healthz
413 BODY /recommend?user=$user
414 GET /recommend?user=$user&k=$(printf '1%.0s' $(seq 3000))
EOF2
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 40000 /dev/zero | tr '\0' a)" "$url/healthz")
case $code in 4??) ;; *) fail "a 40 kB header: $code" ;; esac
[ "$(get "$url/recommend?user=$user&k=3&exclude_rated=no")" = 200 ] || fail "not up after bad requests"
ok "bad requests: 400/404/405/413/414 with JSON errors; still serving"

# 5. a corrupt checkpoint, then one of another schema: skipped, the model stays
f=$(readlink -f "$T/run/latest")
cp "$f" "$T/run/.bad.tmp"
printf 'X' | dd of="$T/run/.bad.tmp" bs=1 seek=$(($(stat -c %s "$f") - 3)) conv=notrunc 2>/dev/null
mv "$T/run/.bad.tmp" "$T/run/ckpt-000000999999.safetensors"
wait_for "the corrupt checkpoint skipped" grep -q "ckpt-000000999999.safetensors.*checksum mismatch" "$errf"
[ "$(get "$url/healthz")" = 200 ] && grep -q "\"step\":$last}" "$T/body" || fail "step changed: $(cat "$T/body")"
train --data "$T/other.lmdb" --out "$T/other" --epochs 1
o=$(readlink -f "$T/other/latest")
cp "$o" "$T/run/.other.tmp"
mv "$T/run/.other.tmp" "$T/run/ckpt-000001000000.safetensors"
wait_for "the foreign checkpoint refused" grep -q "ckpt-000001000000.safetensors' was trained on a store with schema" "$errf"
[ "$(get "$url/metrics")" = 200 ] && grep -q '^hogrec_reload_failures_total 1$' "$T/body" ||
	fail "metrics after a refused checkpoint: $(cat "$T/body")"
grep -q "^hogrec_checkpoint_step $last$" "$T/body" || fail "the foreign checkpoint was swapped in"
[ "$(get "$url/recommend?user=$user")" = 200 ] || fail "not serving after the bad checkpoints"
ok "a corrupt checkpoint skipped, a foreign one refused and counted; step $last still served"

# 6. SIGTERM; usage and start-up errors
kill -TERM "$spid"
rc=0; wait "$spid" || rc=$?
[ "$rc" -eq 0 ] || { cat "$errf"; fail "SIGTERM: exit $rc"; }
grep -q "SIGTERM: stopping" "$errf" || fail "no stopping line"
ok "SIGTERM: a clean stop (exit 0)"
d=(--data "$T/gl.lmdb")
expect_exit 64 "$BIN/recommend" --serve nohost:1 --ckpt "$T/run" "${d[@]}"
expect_exit 64 "$BIN/recommend" --serve 127.0.0.1 --ckpt "$T/run" "${d[@]}"
expect_exit 64 "$BIN/recommend" --serve 127.0.0.1:70000 --ckpt "$T/run" "${d[@]}"
expect_exit 64 "$BIN/recommend" --serve 127.0.0.1:0 --ckpt "$f" "${d[@]}"
expect_err "--ckpt must be one"
expect_exit 64 "$BIN/recommend" --serve 127.0.0.1:0 --ckpt "$T/run" "${d[@]}" --threads 0
expect_exit 64 "$BIN/recommend" --serve 127.0.0.1:0 --ckpt "$T/run" "${d[@]}" --user 1
expect_exit 66 "$BIN/recommend" --serve 127.0.0.1:0 --ckpt "$T/nodir" "${d[@]}"
start_server "$T/s2.out" "$T/s2.err" --ckpt "$T/run" "${d[@]}" --threads 1
port=${url##*:}
expect_exit 74 "$BIN/recommend" --serve "127.0.0.1:$port" --ckpt "$T/run" "${d[@]}"
expect_err "cannot listen on 127.0.0.1:$port"
kill -TERM "$spid"
wait "$spid"
ok "usage 64, missing directory 66, a port in use 74"
