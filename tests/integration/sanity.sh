#!/usr/bin/env bash
# salmap sanity end to end: the model-randomisation check of sal and grad
# on the shipped MNIST classifier (3 digits), the CSV's shape, sal decaying
# as Adebayo et al. found, and the refusals a user meets.
set -u
BUILD=${BUILD:-build}
SALMAP=$BUILD/bin/salmap
MODEL=models/mnist_cnn.onnx
CONFIG=models/mnist_cnn.yaml
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source tests/lib/procs.sh # ok, bad, expect

# --- help -------------------------------------------------------------------
expect 0 "sanity" -- "$SALMAP" --help
for opt in --model --config --dataset --methods --out --limit --seed --set --threads; do
    expect 0 "$opt" -- "$SALMAP" sanity --help
done

# --- sal and grad on 3 digits -------------------------------------------------
"$SALMAP" sanity --model $MODEL --config $CONFIG --dataset data/mnist/test \
    --methods sal,grad --limit 3 --threads 2 --out "$tmp/o" >"$tmp/table" 2>"$tmp/err"
rc=$?
csv=$tmp/o/sanity.csv
if [ $rc -ne 0 ] || [ ! -s "$csv" ]; then bad "sanity: rc $rc: $(cat "$tmp/err")"; fi
[ "$(head -1 "$csv")" = "method,step,layer,spearman,spearman_sd,spearman_abs,spearman_abs_sd,images" ] \
    && ok || bad "csv header: $(head -1 "$csv")"
# 2 methods x 5 steps (nothing, then fc2, fc1, conv2, conv1 re-drawn)
[ "$(wc -l <"$csv")" = 11 ] && ok || bad "csv rows: $(wc -l <"$csv")"
awk -F, 'NR > 1 && (NF != 8 || $8 != 3) { bad++ } END { exit bad > 0 }' "$csv" \
    && ok || bad "csv rows malformed: $(cat "$csv")"
[ "$(awk -F, 'NR > 1 { printf "%s%s:%s ", $1, $2, $3 }' "$csv")" = \
  "sal0: sal1:fc2 sal2:fc1 sal3:conv2 sal4:conv1 grad0: grad1:fc2 grad2:fc1 grad3:conv2 grad4:conv1 " ] \
    && ok || bad "steps and layers: $(cut -d, -f1-3 "$csv" | tr '\n' ' ')"
# nothing re-drawn: the maps are the same, 1 exactly
[ "$(awk -F, '$2 == 0 { print $4, $6 }' "$csv" | sort -u)" = "1.000000 1.000000" ] \
    && ok || bad "step 0 is not 1: $(cat "$csv")"
# Adebayo: the gradient's ranking is lost once the model is random
# (measured: 0.153 at the last step)
last=$(awk -F, '$1 == "sal" && $2 == 4 { print $4 }' "$csv")
awk -v r="$last" 'BEGIN { exit !(r < 0.5 && r > -0.5) }' && ok \
    || bad "sal's |spearman| at the last step is $last, not below 0.5"
grep -q "^4    conv1" "$tmp/table" && ok || bad "table: $(cat "$tmp/table")"
grep -q "salmap sanity: 36/36 maps" "$tmp/err" && ok || bad "progress: $(cat "$tmp/err")"
# the same bytes with other threads
"$SALMAP" sanity --model $MODEL --config $CONFIG --dataset data/mnist/test \
    --methods sal,grad --limit 3 --threads 1 --out "$tmp/o1" >/dev/null 2>&1
cmp -s "$csv" "$tmp/o1/sanity.csv" && ok || bad "the CSV depends on --threads"

# --- refusals -------------------------------------------------------------------
expect 1 "unknown method 'nope'" -- "$SALMAP" sanity --model $MODEL --dataset data/mnist/test \
    --methods sal,nope --out "$tmp/r"
expect 2 "--limit must be a positive integer, not '0'" -- "$SALMAP" sanity --model $MODEL \
    --dataset data/mnist/test --methods sal --out "$tmp/r" --limit 0
expect 2 "--seed must be an integer" -- "$SALMAP" sanity --model $MODEL \
    --dataset data/mnist/test --methods sal --out "$tmp/r" --seed -1
expect 2 "missing --methods" -- "$SALMAP" sanity --model $MODEL --dataset data/mnist/test \
    --out "$tmp/r"
expect 1 "$tmp/none.onnx" -- "$SALMAP" sanity --model "$tmp/none.onnx" \
    --dataset data/mnist/test --methods sal --out "$tmp/r"
expect 1 "sal has no parameter 'steps'" -- "$SALMAP" sanity --model $MODEL \
    --dataset data/mnist/test --methods sal --out "$tmp/r" --set sal.steps=3
[ ! -e "$tmp/r" ] && ok || bad "a refused run wrote $tmp/r"

echo "sanity: $pass passed, $fail failed"
[ "$fail" = 0 ]
