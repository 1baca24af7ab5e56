#!/usr/bin/env bash
# The gateway's per-request latency (docs/PERFORMANCE.md, "HTTP explain"):
# a broker, WORKERS workers (1 thread each) and salmap-gateway on loopback;
# N inline explanations of MNIST test digits, CONC at a time, for each
# method of METHODS, after the same work as an embedded call in one process
# (bench/explain_one: one digit a call, one thread, as each worker runs),
# measured in the same run. Run from the repository root:
#   N=1000 CONC=8 METHODS=sal,lime bash bench/http_latency.sh
set -u
BUILD=${BUILD:-build}
BROKER=$BUILD/bin/salmap-broker
WORKER=$BUILD/bin/salmap-worker
GATEWAY=$BUILD/bin/salmap-gateway
N=${N:-1000} CONC=${CONC:-8} WORKERS_N=${WORKERS_N:-2} METHODS=${METHODS:-sal,lime}
tmp=$(mktemp -d)
"$BUILD/bench/explain_one" "$METHODS" 200 || exit 1
. tests/lib/procs.sh
trap kill_all EXIT
start_broker "$tmp/broker.log" "$tmp/state" || { echo "no broker" >&2; exit 1; }
for k in $(seq "$WORKERS_N"); do start_worker "w$k"; done
"$GATEWAY" --broker "$CLIENT" --listen 127.0.0.1:0 --out-root "$tmp/out" >"$tmp/gw.log" 2>&1 &
pids+=($!)
wait_for "$tmp/gw.log" "listening on" 10 || { cat "$tmp/gw.log" >&2; exit 1; }
URL=$(sed -n 's|.*listening on \(http://[^,]*\),.*|\1|p' "$tmp/gw.log")
H=$(curl -s --data-binary @models/mnist_cnn.onnx "$URL/v1/models" | jq -r .hash)
images=$(ls data/mnist/test/*/*.png | LC_ALL=C sort | head -50)
for m in ${METHODS//,/ }; do
    /usr/bin/python3 bench/http_latency.py "$URL" "$H" "$m" "$N" "$CONC" $images || exit 1
done
