#!/usr/bin/env bash
# salmap explain end to end: maps and index on real MNIST digits, resuming
# after an interruption (a killed process) gives the same files as one
# uninterrupted run, and the refusals name what is wrong.
set -u
BUILD=${BUILD:-build}
SALMAP=$BUILD/bin/salmap
MODEL=tests/fixtures/mnist_lenet_trained.onnx
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source tests/lib/procs.sh # ok, bad, expect
explain() { "$SALMAP" explain --model $MODEL --config configs/mnist.yaml \
                --dataset data/mnist/test "$@"; }

# --- a clean run --------------------------------------------------------------
expect 0 "60 maps written" -- explain --methods sal --out "$tmp/a" --limit 60 --batch 16
[ "$(wc -l <"$tmp/a/index.csv")" = 61 ] && ok || bad "index rows: $(wc -l <"$tmp/a/index.csv")"
head -1 "$tmp/a/index.csv" | grep -q '^id,label,predicted,target,score,method,seconds,evals,deletion_auc,insertion_auc,faithfulness,sparseness,complexity,sensitivity,precision,coverage,fidelity,rule_length,relevance,params,extras$' \
    && ok || bad "index header"
n=$(find "$tmp/a/maps" -name sal.npy | wc -l)
[ "$n" = 60 ] && ok || bad "$n maps"
# every map: a 28 x 28 float32 npy (80-byte header + 3136 bytes of data)
bad_size=$(find "$tmp/a/maps" -name sal.npy -size -3136c | wc -l)
[ "$bad_size" = 0 ] && ok || bad "$bad_size maps too small"
# AUCs in [0, 1] and insertion above deletion on average for a trained model
awk -F, 'NR > 1 { if ($9 < 0 || $9 > 1 || $10 < 0 || $10 > 1) bad++; d += $9; i += $10 }
         END { exit !(bad == 0 && i > d) }' "$tmp/a/index.csv" && ok || bad "AUC columns"
# the quality metrics: faithfulness in [-1, 1] (empty: undefined), sparseness
# in [0, 1), complexity in [0, ln 784], sensitivity empty (off by default)
awk -F, 'NR > 1 { if (($11 != "" && ($11 < -1 || $11 > 1)) || $12 == "" || $12 < 0 ||
                      $12 >= 1 || $13 == "" || $13 < 0 || $13 > log(784) || $14 != "") bad++;
                  if ($11 != "") f++ }
         END { exit !(bad == 0 && f > 0) }' "$tmp/a/index.csv" && ok || bad "quality columns"
head -1 "$tmp/a/summary.csv" | grep -q '^method,maps,failed,deletion_auc,deletion_auc_sd,insertion_auc,insertion_auc_sd,faithfulness,faithfulness_sd,sparseness,sparseness_sd,complexity,complexity_sd,sensitivity,sensitivity_sd,precision,precision_sd,' \
    && ok || bad "summary header"
# sal's row: means and deviations of the first five metrics, none of sensitivity
awk -F, 'NR == 2 { for (k = 4; k <= 13; k++) if ($k == "") bad++;
                   if ($14 != "" || $15 != "") bad++ }
         END { exit !(NR == 2 && bad == 0) }' "$tmp/a/summary.csv" && ok || bad "summary row"

# --- what a person opens: PNGs, the figure, the report, job.json ---------------
n=$(find "$tmp/a/maps" -name sal.png | wc -l)
[ "$n" = 60 ] && ok || bad "$n sal.png, not 60"
n=$(find "$tmp/a/maps" -name sal.overlay.png | wc -l)
[ "$n" = 60 ] && ok || bad "$n sal.overlay.png, not 60"
[ -s "$tmp/a/figure.png" ] && [ -s "$tmp/a/figure.svg" ] && [ -s "$tmp/a/report/index.html" ] &&
    ok || bad "no figure or report after the job"
grep -q '"state": "done"' "$tmp/a/job.json" && grep -q '"images": 60' "$tmp/a/job.json" &&
    ok || bad "job.json: $(cat "$tmp/a/job.json")"
# the report shows the job as it ended, not as it started
grep -q 'state</th><td>done' "$tmp/a/report/index.html" && grep -q '60 written, 0 failed' "$tmp/a/report/index.html" &&
    ok || bad "the report does not show the finished job"
expect 0 "3 maps written" -- explain --methods sal --out "$tmp/np" --limit 3 --no-png
[ -z "$(find "$tmp/np/maps" -name '*.png')" ] && [ -s "$tmp/np/figure.png" ] &&
    [ -s "$tmp/np/report/index.html" ] && ok || bad "--no-png: PNGs written, or no figure/report"
expect 0 "6 maps written" -- explain --methods sal,grad --out "$tmp/js" --limit 3 --scale job --direct
grep -q '^grad,diverging,' "$tmp/js/scales.csv" && grep -q '^sal,sequential,' "$tmp/js/scales.csv" &&
    ok || bad "--scale job --direct: scales.csv: $(cat "$tmp/js/scales.csv" 2>&1)"
expect 2 "--scale must be map or job" -- explain --methods sal --scale each --out "$tmp/c"

# --- the metrics' parameters: command line, job file, batching ----------------
# max-sensitivity on: the same rows (but the timing) whatever the batching
# and workers, and from a job file's metric_params.
expect 0 "8 maps written" -- explain --methods grad,lime --set lime.samples=60 --limit 4 \
    --set metrics.sensitivity_samples=3 --set metrics.faithfulness_subsets=30 --batch 4 --out "$tmp/m1"
expect 0 "8 maps written" -- explain --methods grad,lime --set lime.samples=60 --limit 4 \
    --set metrics.sensitivity_samples=3 --set metrics.faithfulness_subsets=30 --batch 1 \
    --workers 2 --out "$tmp/m2"
awk -F, 'NR > 1 && ($14 == "" || $14 < 0) { bad++ } END { exit !(NR == 9 && bad == 0) }' \
    "$tmp/m1/index.csv" && ok || bad "sensitivity column: $(sed -n 2p "$tmp/m1/index.csv")"
cut -d, -f1-6,8- "$tmp/m1/index.csv" >"$tmp/i1"; cut -d, -f1-6,8- "$tmp/m2/index.csv" >"$tmp/i2"
cmp -s "$tmp/i1" "$tmp/i2" && ok || bad "metrics differ between --batch 4 and --batch 1 with 2 workers"
cat >"$tmp/mjob.yaml" <<EOF
model: $MODEL
config: configs/mnist.yaml
dataset: data/mnist/test
out: $tmp/m3
methods: [grad, lime]
limit: 4
metric_params:
  sensitivity_samples: 3
  faithfulness_subsets: 30
params:
  lime: {samples: 60}
EOF
expect 0 "8 maps written" -- "$SALMAP" explain --job "$tmp/mjob.yaml"
cut -d, -f1-6,8- "$tmp/m3/index.csv" >"$tmp/i3"
cmp -s "$tmp/i1" "$tmp/i3" && ok || bad "job file's metric_params differ from --set metrics.*"
expect 2 "--set metrics.bogus=1: no such metric parameter" -- explain --methods sal \
    --set metrics.bogus=1 --out "$tmp/c"
expect 2 "must be an integer in 0..10000" -- explain --methods sal \
    --set metrics.sensitivity_samples=-1 --out "$tmp/c"

# --- interrupted, then resumed: the same files --------------------------------
explain --methods sal --out "$tmp/b" --limit 60 --batch 16 >/dev/null 2>&1 &
pid=$!
deadline=$((SECONDS + 30))
until [ "$(find "$tmp/b/maps" -name '*.row' 2>/dev/null | wc -l)" -ge 8 ] || [ $SECONDS -ge $deadline ]; do
    kill -0 $pid 2>/dev/null || break
    sleep 0.05
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
part=$(find "$tmp/b/maps" -name '*.row' | wc -l)
[ "$part" -ge 1 ] && ok || bad "nothing written before the kill"
expect 0 "already there" -- explain --methods sal --out "$tmp/b" --limit 60 --batch 16
for f in $(cd "$tmp/a/maps" && find . -name sal.npy); do
    cmp -s "$tmp/a/maps/$f" "$tmp/b/maps/$f" || { bad "resumed map $f differs"; break; }
done
ok
# rows differ only in the timing column
cut -d, -f1-6,8- "$tmp/a/index.csv" >"$tmp/ia"; cut -d, -f1-6,8- "$tmp/b/index.csv" >"$tmp/ib"
cmp -s "$tmp/ia" "$tmp/ib" && ok || bad "resumed index differs"
# no temporary files left by the killed run
[ -z "$(find "$tmp/b" -name '*.tmp*')" ] && ok || bad "temporary files left"

# --- maps do not depend on the batch, the workers or the instruction set -------
# Every method (cheap settings) on 12 digits, with the arrays of their
# records: --batch 5 against --batch 12,
# --batch 1 with 2 workers, and the kernels capped at AVX2 (the same bits
# as AVX-512 by design; on a CPU without AVX-512 the cap changes nothing);
# and on the baseline kernels, two batchings against each other.
ALL=sal,grad,intg,smoothgrad,gradcam,elrp,occlusion,rise,extremal,lime,kernelshap,anchor,lore,abele
quick() { explain --methods $ALL --limit 12 --no-metrics --set intg.steps=8 \
              --set smoothgrad.samples=8 --set rise.masks=200 \
              --set extremal.iterations=20 --set lime.samples=200 \
              --set kernelshap.budget=200 --set anchor.hide=constant \
              --set lore.hide=constant --set lore.samples=200 \
              --set abele.aae=models/mnist_aae.yaml \
              --set abele.samples=100 --set abele.generations=2 \
              --set abele.exemplars=10 --set abele.counter_exemplars=10 "$@"; }
expect 0 "168 maps written" -- quick --out "$tmp/q1" --batch 5
same_as_q1() { # DIR WHAT
    local f n=0
    for f in $(cd "$tmp/q1/maps" && find . -name '*.npy'); do
        n=$((n + 1))
        cmp -s "$tmp/q1/maps/$f" "$1/maps/$f" || { bad "map $f differs between --batch 5 and $2"; return; }
    done
    # and so the pictures of them
    for f in $(cd "$tmp/q1/maps" && find . -name '*.png'); do
        n=$((n + 1))
        cmp -s "$tmp/q1/maps/$f" "$1/maps/$f" || { bad "$f differs between --batch 5 and $2"; return; }
    done
    cmp -s "$tmp/q1/figure.png" "$1/figure.png" || { bad "figure.png differs between --batch 5 and $2"; return; }
    # 168 maps, and the arrays of anchor's, lore's and abele's records
    [ $n -gt $((168 * 3)) ] && ok || bad "$n maps and PNGs in the --batch 5 run"
}
expect 0 "168 maps written" -- quick --out "$tmp/q2" --batch 12
same_as_q1 "$tmp/q2" "--batch 12"
expect 0 "168 maps written" -- quick --out "$tmp/q3" --batch 1 --workers 2
same_as_q1 "$tmp/q3" "--batch 1 with 2 workers"
SALMAP_ISA=avx2 expect 0 "168 maps written" -- quick --out "$tmp/q4" --batch 5
same_as_q1 "$tmp/q4" "SALMAP_ISA=avx2"
# The baseline kernels (no FMA) round otherwise, but as batch-independently.
SALMAP_ISA=baseline expect 0 "168 maps written" -- quick --out "$tmp/b1" --batch 5
SALMAP_ISA=baseline expect 0 "168 maps written" -- quick --out "$tmp/b2" --batch 12 --workers 2
diff -r -x '*.row' "$tmp/b1/maps" "$tmp/b2/maps" >/dev/null && ok ||
    bad "baseline kernels: maps differ between --batch 5 and --batch 12 with 2 workers"

# --- refusals ------------------------------------------------------------------
expect 1 "unknown method 'salt'" -- explain --methods salt --out "$tmp/c"
expect 1 "sal has no parameter 'steps'" -- explain --methods sal --set sal.steps=3 --out "$tmp/c"
expect 1 "intg is not among the methods" -- explain --methods sal --set intg.steps=3 --out "$tmp/c"
expect 2 "--score must be logit or prob" -- explain --methods sal --score logits --out "$tmp/c"
expect 2 "needs --model, --dataset, --methods and --out" -- "$SALMAP" explain --methods sal
expect 0 "--methods" -- "$SALMAP" explain --help
expect 0 "sal " -- "$SALMAP" explain --help

# --- job files -----------------------------------------------------------------
# The same run from a job file and from the command line: the same files.
cat >"$tmp/job.yaml" <<EOF
# salmap explain job (tests/integration/explain.sh)
model: $MODEL
config: configs/mnist.yaml
dataset: data/mnist/test
out: $tmp/jj
methods: [sal, intg]
limit: 12
batch: 4
target: label
params:
  intg: {steps: 8, method: riemann_middle}
EOF
expect 0 "24 maps written" -- "$SALMAP" explain --job "$tmp/job.yaml"
expect 0 "24 maps written" -- explain --methods sal,intg --limit 12 --batch 4 \
    --target label --set intg.steps=8 --set intg.method=riemann_middle --out "$tmp/jc"
same=1
for f in $(cd "$tmp/jc/maps" && find . -name '*.npy'); do
    cmp -s "$tmp/jc/maps/$f" "$tmp/jj/maps/$f" || { same=0; bad "job-file map $f differs"; break; }
done
[ "$(find "$tmp/jj/maps" -name '*.npy' | wc -l)" = 24 ] && [ $same = 1 ] && ok || bad "job-file maps"
cut -d, -f1-6,8- "$tmp/jc/index.csv" >"$tmp/ic"; cut -d, -f1-6,8- "$tmp/jj/index.csv" >"$tmp/ij"
cmp -s "$tmp/ic" "$tmp/ij" && ok || bad "job-file index differs from the command line's"
# The command line wins: --out, --limit and --set over the file's values.
expect 0 "6 maps written" -- "$SALMAP" explain --job "$tmp/job.yaml" --out "$tmp/jo" \
    --limit 3 --set intg.steps=5
grep -q '""steps"": 5, ""method"": ""riemann_middle""' "$tmp/jo/index.csv" && ok \
    || bad "--set after the job file's params: $(grep -m1 intg "$tmp/jo/index.csv")"
# --methods replaces the file's list; its params for methods dropped go too.
expect 0 "3 maps written" -- "$SALMAP" explain --job "$tmp/job.yaml" --out "$tmp/jm" \
    --limit 3 --methods sal
# Refusals name the file, the line and the key, before anything is written.
sed "s/^batch: 4\$/batch: four/; s#^out: .*#out: $tmp/jx#" "$tmp/job.yaml" >"$tmp/bad.yaml"
expect 1 "bad.yaml:8: batch: must be an integer in 1..65536, not 'four'" -- \
    "$SALMAP" explain --job "$tmp/bad.yaml"
sed "s/steps: 8/stepz: 8/; s#^out: .*#out: $tmp/jx#" "$tmp/job.yaml" >"$tmp/bad.yaml"
expect 1 "bad.yaml:11: params: intg has no parameter 'stepz'" -- \
    "$SALMAP" explain --job "$tmp/bad.yaml"
expect 1 "absent.yaml: No such file" -- "$SALMAP" explain --job "$tmp/absent.yaml"
expect 2 "--batch must be an integer in 1..65536" -- \
    "$SALMAP" explain --job "$tmp/job.yaml" --batch 0 --out "$tmp/jx"
[ ! -e "$tmp/jx" ] && ok || bad "a refused job wrote something"

# --- a corrupt image: reported, skipped, the others explained ------------------
mkdir -p "$tmp/ds/3"
for f in $(ls data/mnist/test/3 | head -3); do cp "data/mnist/test/3/$f" "$tmp/ds/3/"; done
head -c 50 "data/mnist/test/3/$(ls data/mnist/test/3 | head -1)" >"$tmp/ds/3/broken.png"
expect 3 "broken.png" -- "$SALMAP" explain --model $MODEL --config configs/mnist.yaml \
    --dataset "$tmp/ds" --methods sal,grad --out "$tmp/e"
[ "$(wc -l <"$tmp/e/index.csv")" = 7 ] && ok || bad "rows after a corrupt image: $(wc -l <"$tmp/e/index.csv")"

echo "explain: $pass passed, $fail failed"
[ "$fail" = 0 ]
