#!/usr/bin/env bash
# salmap predict end to end: the real binary on the real MNIST test split,
# the .npy mode, and the refusals a user meets (missing or corrupt files,
# bad config keys, wrong shapes, bad options).
set -u
BUILD=${BUILD:-build}
SALMAP=$BUILD/bin/salmap
FIX=tests/fixtures
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source tests/lib/procs.sh # ok, bad, expect

# --- help -------------------------------------------------------------------
expect 0 "predict" -- "$SALMAP" --help
for opt in --model --config --dataset --input --out --batch; do
    expect 0 "$opt" -- "$SALMAP" predict --help
done
expect 2 "unknown command 'frobnicate'" -- "$SALMAP" frobnicate

# --- MNIST test split with the trained fixture ------------------------------
out=$("$SALMAP" predict --model $FIX/mnist_lenet_trained.onnx --config configs/mnist.yaml \
      --dataset data/mnist/test --out "$tmp/preds.csv" --batch 300 2>"$tmp/err")
rc=$?
acc=$(sed -n 's/^accuracy: \([0-9.]*\).*/\1/p' <<<"$out")
if [ $rc -ne 0 ] || [ -z "$acc" ]; then bad "mnist predict: rc $rc, out '$out' $(cat "$tmp/err")"
elif awk -v a="$acc" 'BEGIN{exit !(a >= 0.95)}'; then ok
else bad "mnist accuracy $acc < 0.95"; fi
[ "$(head -1 "$tmp/preds.csv")" = "id,label,predicted,probability" ] && ok || bad "csv header"
[ "$(wc -l <"$tmp/preds.csv")" = 2001 ] && ok || bad "csv rows: $(wc -l <"$tmp/preds.csv")"
# every row: an id under its class folder, label = that class, p in [0, 1]
awk -F, 'NR > 1 { split($1, a, "/"); if (a[1] != $2 || $4 < 0 || $4 > 1 || $3 !~ /^[0-9]$/) bad++ }
         END { exit bad > 0 }' "$tmp/preds.csv" && ok || bad "csv rows malformed"
# the accuracy printed is the one the CSV holds
csv_acc=$(awk -F, 'NR > 1 { n++; c += ($2 == $3) } END { printf "%.4f", c / n }' "$tmp/preds.csv")
[ "$csv_acc" = "$acc" ] && ok || bad "printed accuracy $acc, CSV says $csv_acc"
# same predictions whatever the batch size
"$SALMAP" predict --model $FIX/mnist_lenet_trained.onnx --config configs/mnist.yaml \
    --dataset data/mnist/test --out "$tmp/preds1.csv" --batch 7 >/dev/null 2>&1
cut -d, -f1-3 "$tmp/preds.csv" >"$tmp/a"; cut -d, -f1-3 "$tmp/preds1.csv" >"$tmp/b"
cmp -s "$tmp/a" "$tmp/b" && ok || bad "predictions depend on --batch"

# --- raw outputs ---------------------------------------------------------------
expect 0 "4 outputs written" -- "$SALMAP" predict --model $FIX/lenet.onnx \
    --input $FIX/lenet_input.npy --out "$tmp/y.npy"
[ -s "$tmp/y.npy" ] && [ "$(head -c 6 "$tmp/y.npy" | tail -c 5)" = "NUMPY" ] && ok || bad "y.npy"
# the input is read a batch at a time: 3 rows then 1, the same bytes
expect 0 "4 outputs written" -- "$SALMAP" predict --model $FIX/lenet.onnx \
    --input $FIX/lenet_input.npy --out "$tmp/y3.npy" --batch 3
cmp -s "$tmp/y.npy" "$tmp/y3.npy" && ok || bad "raw outputs depend on --batch"
expect 1 "does not fit the model's input" -- "$SALMAP" predict --model $FIX/resnet18s.onnx \
    --input $FIX/lenet_input.npy --out "$tmp/y2.npy"
[ ! -e "$tmp/y2.npy" ] && ok || bad "an output was written after a refusal"

# --- refusals -------------------------------------------------------------------
expect 1 "$tmp/none.onnx" -- "$SALMAP" predict --model "$tmp/none.onnx" --dataset data/mnist/test
expect 1 "not an ONNX model" -- "$SALMAP" predict --model configs/mnist.yaml --dataset data/mnist/test
head -c 5000 $FIX/lenet.onnx >"$tmp/cut.onnx"
expect 1 "cut.onnx" -- "$SALMAP" predict --model "$tmp/cut.onnx" --dataset data/mnist/test
expect 2 "--batch must be a positive integer" -- "$SALMAP" predict --model $FIX/lenet.onnx \
    --dataset data/mnist/test --batch 0
expect 2 "exactly one of --dataset or --input" -- "$SALMAP" predict --model $FIX/lenet.onnx
printf 'input: {channels: 1, height: 28, width: 28}\nsacle: 0.5\n' >"$tmp/typo.yaml"
expect 1 "typo.yaml:2" -- "$SALMAP" predict --model $FIX/lenet.onnx --config "$tmp/typo.yaml" \
    --dataset data/mnist/test
expect 1 "sacle" -- "$SALMAP" predict --model $FIX/lenet.onnx --config "$tmp/typo.yaml" \
    --dataset data/mnist/test
printf 'input: {channels: 3, height: 28, width: 28}\n' >"$tmp/rgb.yaml"
expect 1 "does not fit" -- "$SALMAP" predict --model $FIX/lenet.onnx --config "$tmp/rgb.yaml" \
    --dataset data/mnist/test

# a corrupt image is reported and skipped; the others are still predicted
mkdir -p "$tmp/ds/7"
first=$(ls data/mnist/test/7 | head -2)
for f in $first; do cp "data/mnist/test/7/$f" "$tmp/ds/7/"; done
head -c 40 "data/mnist/test/7/$(ls data/mnist/test/7 | head -1)" >"$tmp/ds/7/broken.png"
expect 3 "broken.png" -- "$SALMAP" predict --model $FIX/mnist_lenet_trained.onnx \
    --config configs/mnist.yaml --dataset "$tmp/ds" --out "$tmp/ds.csv"
[ "$(wc -l <"$tmp/ds.csv")" = 3 ] && ok || bad "rows after a corrupt image: $(wc -l <"$tmp/ds.csv")"

echo "predict: $pass passed, $fail failed"
[ "$fail" = 0 ]
