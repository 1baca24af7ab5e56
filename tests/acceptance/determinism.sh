#!/usr/bin/env bash
# The determinism promise of docs/EXPLAIN.md, at full size: the maps of
# salmap explain on the first LIMIT MNIST test digits (default 100) with
# every method at its defaults are byte for byte the same with --batch 64,
# 1, 5 and 12, with 1 and 2 workers, with the kernels capped at AVX2 (on an
# AVX-512 CPU), and through a broker and 2 workers whose broker is killed
# with -9 mid-job and restarted. About 15 minutes on 2 cores, so not part
# of `make test` (tests/integration/explain.sh and pipeline.sh check the
# same at small size): `make determinism [LIMIT=N] [METHODS=a,b]`. Prints
# a digest of all maps, to compare runs under other OpenBLAS kernel sets
# (OPENBLAS_CORETYPE) or on other machines.
set -u
BUILD=${BUILD:-build}
SALMAP=$BUILD/bin/salmap
BROKER=$BUILD/bin/salmap-broker
WORKER=$BUILD/bin/salmap-worker
LIMIT=${LIMIT:-100}
METHODS=${METHODS:-sal,grad,intg,smoothgrad,gradcam,elrp,occlusion,rise,extremal,lime,kernelshap,anchor,lore,abele}
tmp=$(mktemp -d)
. tests/lib/procs.sh
trap kill_all EXIT
n_methods=$(tr ',' '\n' <<<"$METHODS" | wc -l)
want=$((LIMIT * n_methods))
# the maps among the .npy files (the others: arrays of records, compared too)
maps_in() { grep -cE "/($(tr ',' '|' <<<"$METHODS"))\.npy\$" <<<"$1"; }

explain() { # OUT [options]
    local out=$1; shift
    "$SALMAP" explain --model models/mnist_cnn.onnx --config models/mnist_cnn.yaml \
        --dataset data/mnist/test --limit "$LIMIT" --methods "$METHODS" \
        --no-metrics --out "$tmp/$out" "$@" >"$tmp/$out.log" 2>&1 ||
        bad "$out: $(tail -2 "$tmp/$out.log")"
}

same() { # DIR WHAT
    local b
    b=$(map_sums "$tmp/$1")
    [ "$(maps_in "$b")" = "$want" ] || { bad "$2: $(maps_in "$b") maps, not $want"; return; }
    [ "$b" = "$ref" ] && ok || bad "$2: maps differ from --batch 64"
    echo "$2: $(diff <(echo "$ref") <(echo "$b") | grep -c '^>') of $want maps differ"
}

start=$SECONDS
explain ref --batch 64
ref=$(map_sums "$tmp/ref")
[ "$(maps_in "$ref")" = "$want" ] && ok || bad "reference: $(maps_in "$ref") maps, not $want"
for b in 1 5 12; do
    explain b$b --batch "$b"
    same b$b "--batch $b"
done
explain w2 --batch 64 --workers 2
same w2 "2 workers"
if grep -qw avx512f /proc/cpuinfo; then
    SALMAP_ISA=avx2 explain avx2 --batch 64
    same avx2 "SALMAP_ISA=avx2"
else
    echo "SALMAP_ISA=avx2: the CPU has no AVX-512, nothing to compare"
fi

# A broker and 2 workers; the broker killed once a third of the maps are in.
start_broker "$tmp/broker.log" "$tmp/state" || bad "broker did not start"
start_worker w1
start_worker w2
cat >"$tmp/job.yaml" <<EOT
model: models/mnist_cnn.onnx
config: models/mnist_cnn.yaml
dataset: data/mnist/test
out: $tmp/dist
methods: [${METHODS//,/, }]
limit: $LIMIT
metrics: false
EOT
id=$("$SALMAP" submit "$tmp/job.yaml" --broker "$CLIENT" | tail -1)
wait_maps "$tmp/dist" $((want / 3)) 3600 || bad "no third of the maps within an hour"
kill -9 "$BPID"; wait "$BPID" 2>/dev/null
restart_broker "$tmp/broker2.log" "$tmp/state"
wait_for "$tmp/broker2.log" "job $id resumed" 10 && ok || bad "no resume: $(cat "$tmp/broker2.log")"
"$SALMAP" wait "$id" --broker "$CLIENT" >"$tmp/wait.log" 2>&1 || bad "wait: $(tail -2 "$tmp/wait.log")"
same dist "broker killed and restarted"

echo "kernels: ${OPENBLAS_CORETYPE:-unset, OpenBLAS chooses}, SALMAP_ISA ${SALMAP_ISA:-unset}; $want maps a run; $((SECONDS - start)) s"
echo "maps digest: $(md5sum <<<"$ref" | cut -c1-32)"
echo "determinism: $pass passed, $fail failed"
[ "$fail" = 0 ]
