#!/usr/bin/env bash
# Hostile peers on both ports of a real broker while two real workers run
# a job (50 MNIST digits, sal and lime; loopback, random ports): garbage
# frames, wrong frame counts, truncated and huge-length msgpack, raw TCP
# junk, a flood of requests (tests/tools/hostile_peer client); strangers'
# RESULTs, forged RESULTs for tasks never leased or leased to other
# workers, a worker that takes leases and goes silent, and one that keeps
# heartbeating but never answers (hostile_peer worker). The broker stays
# up and answers STATUS, the job's maps and records are byte-identical to
# salmap explain's, each once, and the log names every refusal. Then the
# broker's own rules: a SUBMIT naming paths outside dataset_roots or
# output_root is refused with the path and the key; without CURVE, a
# bind beyond loopback refuses to start unless insecure_allow_plaintext;
# with CURVE, a plaintext client, an unknown client key and an unknown
# worker key get nowhere (logged), an allowed key works.
source tests/integration/lib/common.sh
BROKER=$BUILD/bin/salmap-broker
WORKER=$BUILD/bin/salmap-worker
PEER=$BUILD/tests/hostile_peer
source tests/lib/procs.sh
trap kill_all EXIT
[ -x "$PEER" ] || { bad "$PEER is not built (make $PEER)"; finish hostile; exit 1; }

N=50
# A hanging worker loses its leases after task_timeout; a real task must
# take less. Under the sanitizers (make test SAN=...) tasks run several
# times slower.
TT=8
case $BUILD in */san) TT=40 ;; esac
job() { # NAME OUT [DATASET]
    cat >"$tmp/$1.yaml" <<EOT
model: models/mnist_cnn.onnx
config: models/mnist_cnn.yaml
dataset: ${3:-data/mnist/test}
out: $2
methods: [sal, lime]
limit: $N
seed: 7
metrics: false
params:
  lime: {samples: 300}
EOT
}

# --- the reference: salmap explain, embedded --------------------------------
job embedded "$tmp/emb"
"$SALMAP" explain "$tmp/embedded.yaml" --workers 2 >"$tmp/emb.log" 2>&1 && ok ||
    bad "embedded run: $(tail -3 "$tmp/emb.log")"

# --- a broker (task_timeout 8 s, paths confined), two workers ---------------
cat >"$tmp/broker.yaml" <<EOT
task_timeout: $TT
dataset_roots: [data/mnist/test]
output_root: $tmp/out
EOT
start_broker "$tmp/broker.log" "$tmp/state" --config "$tmp/broker.yaml" && ok ||
    bad "broker did not start: $(cat "$tmp/broker.log")"
# The hostile workers join first, so that they hold some of the first tasks.
"$PEER" worker "$WORKERS" silent $((TT + 60)) >"$tmp/silent.log" 2>&1 &
silent=$!
"$PEER" worker "$WORKERS" hang $((TT + 60)) >"$tmp/hang.log" 2>&1 &
hang=$!
wait_for "$tmp/broker.log" "worker hostile ready" 10 && ok || bad "the hostile workers did not join"
start_worker w1
start_worker w2
job dist "$tmp/out/dist"
id=$("$SALMAP" submit "$tmp/dist.yaml" --broker "$CLIENT" 2>"$tmp/submit.err" | tail -1)
[ -n "$id" ] && ok || bad "submit: $(cat "$tmp/submit.err")"
"$PEER" client "$CLIENT" >"$tmp/client.log" 2>&1 && ok ||
    bad "hostile client: $(cat "$tmp/client.log")"
wait "$silent" && ok || bad "silent worker: $(cat "$tmp/silent.log")"
wait "$hang" && ok || bad "hanging worker: $(cat "$tmp/hang.log")"
kill -0 "$BPID" 2>/dev/null && ok || bad "the broker died: $(tail -5 "$tmp/broker.log")"
expect 0 "$id" -- "$SALMAP" status "$id" --broker "$CLIENT"
"$SALMAP" wait "$id" --broker "$CLIENT" >"$tmp/wait.log" 2>&1 && ok ||
    bad "wait: $(tail -3 "$tmp/wait.log")"
expect 0 "100/100 maps" -- "$SALMAP" status "$id" --broker "$CLIENT"
same_outputs "$tmp/emb" "$tmp/out/dist" $((2 * N)) "under attack"
rows_once "$tmp/out/dist" $((2 * N)) "under attack"
grep -q '"hostile"' "$tmp/out/dist/job.json" && bad "a result of the hostile worker was kept" || ok

# The log names what it refused.
for line in "dropped: message refused" "a worker's READY dropped" \
    "from an unknown worker ignored; told to join again" \
    "worker hostile: dropped:" "worker hostile: unknown command 'STEAL' dropped" \
    "worker hostile: late result for task" "worker hostile silent for" \
    "worker hostile held task" "over task_timeout ($TT s)"; do
    grep -qF -- "$line" "$tmp/broker.log" && ok || bad "the broker's log lacks '$line'"
done

# --- paths outside the roots: refused at SUBMIT, naming the path and key ----
mkdir -p "$tmp/elsewhere"
ln -s "$tmp/elsewhere" "$tmp/out/escape"
ln -s "$(realpath data/mnist/test/7)" "$tmp/seven"
refused() { # WHAT NEEDLE DATASET OUT
    job refused "$4" "$3"
    expect 1 "$2" -- "$SALMAP" submit "$tmp/refused.yaml" --broker "$CLIENT"
}
refused "out elsewhere" "outside output_root ($(realpath "$tmp/out")" data/mnist/test "$tmp/elsewhere/a"
refused "out via .." "outside output_root" data/mnist/test "$tmp/out/../elsewhere/b"
refused "out via a symlink" "outside output_root" data/mnist/test "$tmp/out/escape/c"
refused "dataset elsewhere" "outside dataset_roots ($(realpath data/mnist/test))" \
    data/fashion-mnist "$tmp/out/d"
refused "dataset via .." "dataset 'data/mnist/test/../../fashion-mnist' resolves to" \
    data/mnist/test/../../fashion-mnist "$tmp/out/e"
grep -qF "a job refused: out '$tmp/elsewhere/a' resolves to" "$tmp/broker.log" && ok ||
    bad "the broker's log does not name the refused out folder"
[ -z "$(ls -A "$tmp/elsewhere")" ] && ok || bad "a refused job wrote outside: $(ls "$tmp/elsewhere")"
# a symlink that stays inside the roots is taken
ln -s "$(realpath data/mnist/test)" "$tmp/out/inside"
job inside "$tmp/out/f" "$tmp/out/inside"
sed -i 's/^limit: .*/limit: 1/' "$tmp/inside.yaml"
expect 0 "" -- "$SALMAP" submit "$tmp/inside.yaml" --broker "$CLIENT"
job inside "$tmp/out/g" data/mnist/test/7/../3
sed -i 's/^limit: .*/limit: 1/' "$tmp/inside.yaml"
expect 0 "" -- "$SALMAP" submit "$tmp/inside.yaml" --broker "$CLIENT"
kill -0 "$BPID" 2>/dev/null && ok || bad "the broker died on a refused SUBMIT"

# --- without CURVE: loopback only, unless told -------------------------------
expect 1 "client_endpoint tcp://*:0 is not loopback and CURVE is off: set curve_secret_key and curve_allow_dir (salmap keygen NAME" \
    -- "$BROKER" --client "tcp://*:0" --workers tcp://127.0.0.1:0 --state "$tmp/s2"
expect 1 "worker_endpoint tcp://0.0.0.0:0 is not loopback" \
    -- "$BROKER" --client tcp://127.0.0.1:0 --workers "tcp://0.0.0.0:0" --state "$tmp/s2"
printf 'insecure_allow_plaintext: true\n' >"$tmp/open.yaml"
"$BROKER" --config "$tmp/open.yaml" --client "tcp://*:*" --workers "tcp://*:*" --state "$tmp/s3" \
    >"$tmp/open.log" 2>&1 &
pids+=("$!")
wait_for "$tmp/open.log" "serving in the clear (insecure_allow_plaintext)" 10 && ok ||
    bad "insecure_allow_plaintext did not bind every interface: $(cat "$tmp/open.log")"

# --- with CURVE: only the allowed keys get in --------------------------------
mkdir -p "$tmp/keys/allow"
(s=$(realpath "$SALMAP") && cd "$tmp/keys" && for k in broker client worker stranger; do
    "$s" keygen "$k" >/dev/null; done)
cp "$tmp/keys/client.pub" "$tmp/keys/worker.pub" "$tmp/keys/allow/"
printf 'curve_secret_key: %s\ncurve_allow_dir: %s\n' "$tmp/keys/broker.key" "$tmp/keys/allow" \
    >"$tmp/curve.yaml"
start_broker "$tmp/curve.log" "$tmp/s4" --config "$tmp/curve.yaml" && ok ||
    bad "the CURVE broker did not start: $(cat "$tmp/curve.log")"
# The refused clients wait out the client's timeout (30 s) side by side.
"$SALMAP" status --broker "$CLIENT" >"$tmp/plain.out" 2>&1 &
plain=$!
"$SALMAP" status --broker "$CLIENT" --server-key "$tmp/keys/broker.pub" \
    --secret-key "$tmp/keys/stranger.key" >"$tmp/stranger.out" 2>&1 &
stranger=$!
printf 'broker: %s\ncurve_server_key: %s\ncurve_secret_key: %s\n' "$WORKERS" \
    "$tmp/keys/broker.pub" "$tmp/keys/stranger.key" >"$tmp/wstranger.yaml"
"$WORKER" --config "$tmp/wstranger.yaml" --name wstranger --threads 1 >"$tmp/wstranger.log" 2>&1 &
pids+=("$!")
expect 0 "" -- "$SALMAP" status --broker "$CLIENT" --server-key "$tmp/keys/broker.pub" \
    --secret-key "$tmp/keys/client.key"
wait "$plain" && bad "a plaintext client got in: $(cat "$tmp/plain.out")" || ok
grep -qF "no reply to LIST within 30 s (is the broker there, and does it run without CURVE" \
    "$tmp/plain.out" && ok || bad "the plaintext client's error: $(cat "$tmp/plain.out")"
wait "$stranger" && bad "an unknown key got in: $(cat "$tmp/stranger.out")" || ok
grep -qF "does it admit this client's key" "$tmp/stranger.out" && ok ||
    bad "the unknown client's error: $(cat "$tmp/stranger.out")"
# The broker names a plaintext peer when it has read its greeting; when
# the connection ends before that (the peer drops it on reading the
# broker's), libzmq reports only that the handshake failed: seen once in
# CI on a loaded machine, four such lines and no other. Either way the
# refusal is logged.
grep -qE "clients port $CLIENT: refused a peer: (it does not speak CURVE \(a plaintext peer\)|its handshake failed)" \
    "$tmp/curve.log" && ok || bad "the plaintext refusal is not logged: $(cat "$tmp/curve.log")"
stranger_key=$(cat "$tmp/keys/stranger.pub")
wait_for "$tmp/curve.log" "refused a peer at 127.0.0.1: its CURVE key $stranger_key is not in curve_allow_dir" 5 &&
    ok || bad "the unknown key's refusal is not logged: $(cat "$tmp/curve.log")"
grep -qF "worker wstranger ready" "$tmp/curve.log" && bad "a worker with an unknown key joined" || ok

finish hostile
