# bin/blasbench and bin/mlgen on the command line: --help prints usage and
# exits 0 at once; a bad option or value is exit 64 with the error and a
# pointer to --help (at most two lines), never the help text itself.
source "$(dirname "$0")/_lib.sh"

# expect_short_usage_error TEXT : after an exit-64 run, stderr names the
# problem, points at --help and is at most two lines
expect_short_usage_error() {
	expect_err "$1"
	expect_err "--help"
	[ "$(wc -l <"$T/err")" -le 2 ] || { cat "$T/err" >&2; fail "usage error is not short"; }
	! grep -q "^usage:" "$T/err" || fail "usage error prints the help"
}

# --help answers without running the benchmark (which takes 2 s by default).
start=$(date +%s%N)
expect_exit 0 timeout 10 "$BIN/blasbench" --help
[ $(($(date +%s%N) - start)) -lt 1000000000 ] || fail "blasbench --help took a second or more"
grep -q "^usage: blasbench" "$T/out" || fail "blasbench --help prints no usage"
for w in "sgemm" "--seconds" "gflops_512" "exit status"; do
	grep -qF -- "$w" "$T/out" || fail "blasbench --help does not mention '$w'"
done
[ ! -s "$T/err" ] || fail "blasbench --help writes to stderr"
expect_exit 0 timeout 10 "$BIN/blasbench" -h
grep -q "^usage: blasbench" "$T/out" || fail "blasbench -h prints no usage"
ok "blasbench --help"

expect_exit 64 timeout 10 "$BIN/blasbench" --no-such-option
expect_short_usage_error "'--no-such-option'"
expect_exit 64 timeout 10 "$BIN/blasbench" --seconds
expect_short_usage_error "seconds"
expect_exit 64 timeout 10 "$BIN/blasbench" --seconds abc
expect_short_usage_error "not 'abc'"
expect_exit 64 timeout 10 "$BIN/blasbench" 0
expect_short_usage_error "not '0'"
expect_exit 64 timeout 10 "$BIN/blasbench" 1 2
expect_short_usage_error "unexpected argument '2'"
[ ! -s "$T/out" ] || fail "blasbench printed a result after a usage error"
ok "blasbench usage errors"

# A short run still gives its JSON line (bench/run.sh passes the seconds bare).
for args in "0.05" "--seconds 0.05"; do
	# shellcheck disable=SC2086
	expect_exit 0 timeout 60 "$BIN/blasbench" $args
	grep -qE '^\{"bench":"sgemm","core":"[^"]*","threads":1,"gflops_512":[0-9.]+,"gflops_256x300x300":[0-9.]+\}$' \
		"$T/out" || { cat "$T/out" >&2; fail "blasbench $args: no result line"; }
done
ok "blasbench result line"

expect_exit 0 "$BIN/mlgen" --help
grep -q "^usage: mlgen" "$T/out" || fail "mlgen --help prints no usage"
expect_exit 64 "$BIN/mlgen" --users -5 -o "$T/m"
expect_short_usage_error "--users: '-5' is not an integer between 1 and 4294967295"
expect_exit 64 "$BIN/mlgen" --users abc -o "$T/m"
expect_short_usage_error "'abc' is not an integer"
expect_exit 64 "$BIN/mlgen" -o "$T/m" --users
expect_short_usage_error "'--users' requires an argument"
expect_exit 64 "$BIN/mlgen" --no-such-option
expect_short_usage_error "'--no-such-option'"
expect_exit 64 "$BIN/mlgen" -qx -o "$T/m"
expect_short_usage_error "-- 'x'"
expect_exit 64 "$BIN/mlgen" --format tsv -o "$T/m"
expect_short_usage_error "--format: 'tsv' is not ml-1m, ml-100k or csv"
expect_exit 64 "$BIN/mlgen" --users 0 -o "$T/m"
expect_short_usage_error "--users: '0' is not an integer between 1"
expect_exit 64 "$BIN/mlgen"
expect_short_usage_error "give exactly one of -o DIR or --oracle DIR"
expect_exit 64 "$BIN/mlgen" --oracle "$T" --pos-min 3 --neg-max 3
expect_short_usage_error "need 1 <= --neg-max < --pos-min <= 5"
[ ! -e "$T/m" ] || fail "mlgen wrote output after a usage error"
ok "mlgen usage errors"

# bin/ckpt: the same short form for every usage error.
expect_exit 64 "$BIN/ckpt" bogus
expect_short_usage_error "unknown command 'bogus'"
expect_exit 64 "$BIN/ckpt" verify
expect_short_usage_error "verify takes one FILE or DIR"
expect_exit 64 "$BIN/ckpt" export "$T" --no-such-flag
expect_short_usage_error "--help"
expect_exit 0 "$BIN/ckpt" verify --help
grep -q "^usage: ckpt verify" "$T/out" || fail "ckpt verify --help prints no usage"
ok "ckpt usage errors"

# Every model option bin/trainer --help lists is described in docs/models.md
# (a row of a model's option table: "| `name` | ... | default | ...").
"$BIN/trainer" --help > "$T/help"
sed -n '/^model options/,/^$/p' "$T/help" | grep -o '^  --[a-z-]*' | sed 's/^  --//; s/-/_/g' > "$T/mopts"
[ -s "$T/mopts" ] || fail "trainer --help lists no model options"
while read -r name; do
	grep -q "^| \`$name\` |" docs/models.md || fail "docs/models.md has no row for model option '$name'"
done < "$T/mopts"
ok "model options documented"
