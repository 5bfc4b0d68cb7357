#!/usr/bin/env bash
# make bench: benchmarks as JSON lines on stdout (one object per line);
# progress and logs on stderr.  Ratios are measured within this one run, so
# a noisy shared machine moves both sides together.
#
#   BENCH_RATINGS  ratings in the synthetic data set (default: ml-1m's 1000209)
#   BENCH_REPEAT   hogrec ingest runs, the best is reported (default 3)
#   BENCH_PANDAS   0 skips the pandas reference (default 1)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-bin}
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
RATINGS=${BENCH_RATINGS:-1000209}
REPEAT=${BENCH_REPEAT:-3}
PANDAS=${BENCH_PANDAS:-1}
W="$ROOT/build/bench"
mkdir -p "$W"
DATA="$W/ml-1m-$RATINGS"

if [ ! -f "$DATA/ratings.dat" ]; then
	echo "bench: generating $RATINGS synthetic ratings in $DATA" >&2
	rm -rf "$DATA"
	"$BIN/mlgen" -o "$DATA" --ratings "$RATINGS" >&2
fi
oracle=$("$BIN/mlgen" --oracle "$DATA")
echo "{\"bench\":\"mlgen_oracle\",\"ratings\":$RATINGS,\"result\":$oracle}"

# hogrec ingest: best wall time of REPEAT runs, peak RSS of that run.
best=""
for i in $(seq "$REPEAT"); do
	rm -rf "$W/hogrec.lmdb"
	/usr/bin/time -f '%e %M' -o "$W/time.txt" \
		"$BIN/ingest" -q --json -o "$W/hogrec.lmdb" "$DATA" >"$W/ingest.json"
	read -r wall rss <"$W/time.txt"
	if [ -z "$best" ] || awk "BEGIN{exit !($wall < $best)}"; then
		best=$wall; best_rss=$rss; cp "$W/ingest.json" "$W/best.json"
	fi
done
store_mb=$(du -sm "$W/hogrec.lmdb" | cut -f1)
echo "{\"bench\":\"ingest\",\"impl\":\"hogrec\",\"ratings\":$RATINGS,\"wall_s\":$best,\"ratings_per_s\":$(awk "BEGIN{printf \"%.0f\", $RATINGS/$best}"),\"peak_rss_mb\":$(awk "BEGIN{printf \"%.1f\", $best_rss/1024}"),\"store_mb\":$store_mb,\"target_wall_s\":2.0,\"target_rss_mb\":1024,\"report\":$(cat "$W/best.json")}"

if [ "$PANDAS" = 1 ]; then
	rm -rf "$W/pandas.lmdb"
	/usr/bin/time -f '%e %M' -o "$W/time.txt" \
		/usr/bin/python3 "$ROOT/bench/ingest_pandas.py" "$DATA" "$W/pandas.lmdb" >"$W/pandas.json"
	read -r pwall prss <"$W/time.txt"
	echo "{\"bench\":\"ingest\",\"impl\":\"pandas\",\"ratings\":$RATINGS,\"wall_s\":$pwall,\"peak_rss_mb\":$(awk "BEGIN{printf \"%.1f\", $prss/1024}"),\"report\":$(tail -1 "$W/pandas.json")}"
	echo "{\"bench\":\"ingest_speedup\",\"hogrec_wall_s\":$best,\"pandas_wall_s\":$pwall,\"speedup\":$(awk "BEGIN{printf \"%.1f\", $pwall/$best}"),\"target\":10}"
	rm -rf "$W/pandas.lmdb"
fi
rm -rf "$W/hogrec.lmdb"
