# bin/trainer report RUN_DIR: a run's learning curves as SVG (gnuplot).
#  - a run with ranking metrics: the SVG parses as XML and has its four
#    panels; the data file beside it holds each epoch's train loss, valid
#    AUC and Recall@10 as the metrics lines say, the closing lines left out;
#  - a rating model's report plots RMSE; a run without ranking metrics
#    says how to get them;
#  - errors: a missing RUN_DIR or metrics.jsonl (66), a malformed line
#    (65, naming its number), gnuplot not on PATH (69), bad usage (64), an
#    output that cannot be written (74); nothing is left at the output.
source "$(dirname "$0")/_lib.sh"

"$BIN/mlgen" -q -o "$T/ml" --users 120 --items 100 --ratings 6000 --seed 3
"$BIN/ingest" -q --split user -o "$T/ex.lmdb" "$T/ml"
"$BIN/ingest" -q --split user --label implicit -o "$T/im.lmdb" "$T/ml"
train() { "$BIN/trainer" -q --threads 1 --batch 64 --seed 1 "$@" >/dev/null; }
train --data "$T/ex.lmdb" --model ncf --out "$T/ncf" --epochs 3 --early-stop 2 --rank-metrics yes
train --data "$T/im.lmdb" --model autorec --out "$T/ar" --epochs 2 --early-stop 0
train --data "$T/ex.lmdb" --model gmf --out "$T/gmf" --epochs 2 --early-stop 0

expect_exit 0 "$BIN/trainer" report "$T/ncf"
/usr/bin/python3 - "$T/ncf" <<'PY' || fail "report of a ranked run"
import json, sys
import xml.etree.ElementTree as ET
d = sys.argv[1]
svg = ET.parse(d + "/report.svg").getroot()
assert svg.tag.endswith("svg"), svg.tag
text = " ".join(t for t in svg.itertext())
for want in ("train loss", "AUC", "training samples/s", "Recall@K on valid", "iALS @10"):
    assert want in text, (want, text[:400])
lines = [json.loads(l) for l in open(d + "/metrics.jsonl")]
valid = {r["epoch"]: r for r in lines if r.get("split") == "valid" and "best_epoch" not in r}
assert len(lines) == 8 and "best_epoch" in lines[-2], "3 epochs and the closing lines"
rows = [l.rstrip("\n").split("\t") for l in open(d + "/report.svg.dat") if not l.startswith("#")]
head = open(d + "/report.svg.dat").readline().lstrip("# ").rstrip("\n").split("\t")
assert [int(r[0]) for r in rows] == sorted(valid), (rows, sorted(valid))
for r in rows:
    v = valid[int(r[0])]
    got = dict(zip(head, r))
    for col, key in (("train_loss", "train_loss"), ("valid:auc", "auc"),
                     ("valid:recall@10", "recall@10"), ("valid:knn_recall@10", "knn_recall@10")):
        assert abs(float(got[col]) - v[key]) < 1e-5 * (1 + abs(v[key])), (col, got[col], v[key])
print("report: %d epochs" % len(rows))
PY
ok "a ranked run's report: four panels, each epoch's numbers as its metrics lines"
expect_exit 0 "$BIN/trainer" report "$T/ar" -o "$T/ar.svg"
grep -q "RMSE" "$T/ar.svg" || fail "autorec's report does not plot RMSE"
expect_exit 0 "$BIN/trainer" report "$T/gmf"
grep -q "no ranking metrics" "$T/gmf/report.svg" || fail "an unranked run's report does not say so"
ok "a rating model's report plots RMSE; an unranked run's says how to rank"

expect_exit 66 "$BIN/trainer" report "$T/none"
expect_err "none"
mkdir "$T/empty"
expect_exit 66 "$BIN/trainer" report "$T/empty"
expect_err "metrics.jsonl"
cp -r "$T/gmf" "$T/bad"
rm -f "$T/bad/report.svg"
echo '{"split":"valid","epoch":"two"}' >>"$T/bad/metrics.jsonl"
expect_exit 65 "$BIN/trainer" report "$T/bad"
expect_err "line 5"
[ ! -e "$T/bad/report.svg" ] || fail "a failed report left an SVG"
expect_exit 69 env PATH=/nonexistent "$BIN/trainer" report "$T/gmf"
expect_err "gnuplot"
expect_exit 64 "$BIN/trainer" report
expect_exit 64 "$BIN/trainer" report "$T/gmf" "$T/ar"
expect_exit 74 "$BIN/trainer" report "$T/gmf" -o "$T/no/such/dir/r.svg"
ok "report's errors: 66 missing, 65 malformed line named, 69 no gnuplot, 64 usage, 74 unwritable"
