#!/usr/bin/env bash
# Network faults between hosts (docs/RELIABILITY.md): the broker and a
# worker in two network namespaces joined by a veth pair (made here; root
# is needed), CURVE on as beyond loopback it must be, and a second worker
# beside the broker. Mid-job the remote worker's link is cut for less than
# the broker's lease and healed, then cut for longer than the lease (the
# broker gives the worker up and requeues its tasks; the worker, hearing
# nothing, reconnects) and healed. The job ends with every map once and
# maps byte-identical to an embedded run; the broker saw the worker go
# and come back.
. tests/lib/daemons.sh
NB=smb$$ NW=smw$$ VB=vb$$ VW=vw$$
NET=10.$((RANDOM % 200 + 20)).$((RANDOM % 250)).
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    ip netns del "$NB" 2>/dev/null
    ip netns del "$NW" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

N=200
case $BUILD in */san) N=80 ;; esac

if ! { ip netns add "$NB" && ip netns add "$NW" &&
       ip link add "$VB" netns "$NB" type veth peer name "$VW" netns "$NW" &&
       ip -n "$NB" addr add "${NET}1/24" dev "$VB" && ip -n "$NW" addr add "${NET}2/24" dev "$VW" &&
       ip -n "$NB" link set "$VB" up && ip -n "$NW" link set "$VW" up &&
       ip -n "$NB" link set lo up && ip -n "$NW" link set lo up; } 2>"$tmp/ip.err"; then
    bad "cannot make network namespaces (root is needed): $(cat "$tmp/ip.err")"
    finish netns
    exit 1
fi
inb() { ip netns exec "$NB" "$@"; }

# CURVE keys: the broker's, the workers' and the client's
mkdir -p "$tmp/keys" "$tmp/allow"
(cd "$tmp/keys" && for k in broker worker client; do "$OLDPWD/$SALMAP" keygen "$k" >/dev/null || exit 1; done) ||
    bad "salmap keygen"
cp "$tmp/keys/worker.pub" "$tmp/keys/client.pub" "$tmp/allow/"
port=$((20000 + RANDOM % 40000))
CLIENT=tcp://${NET}1:$port WORKERS=tcp://${NET}1:$((port + 1))
fast_configs
printf 'curve_secret_key: %s\ncurve_allow_dir: %s\n' "$tmp/keys/broker.key" "$tmp/allow" \
    >>"$tmp/broker.yaml"
printf 'capacity: 1\ncurve_server_key: %s\ncurve_secret_key: %s\n' "$tmp/keys/broker.pub" \
    "$tmp/keys/worker.key" >>"$tmp/worker.yaml"
cat >"$tmp/job.yaml" <<EOT
model: models/mnist_cnn.onnx
config: models/mnist_cnn.yaml
dataset: data/mnist/test
out: $tmp/net
methods: [sal, lime]
limit: $N
seed: 5
batch: 8
metrics: false
png: false
params:
  lime: {samples: 300}
EOT
"$SALMAP" explain "$tmp/job.yaml" --out "$tmp/emb" --workers 2 >"$tmp/emb.log" 2>&1 && ok ||
    bad "the embedded run: $(tail -3 "$tmp/emb.log")"

# ip netns exec runs the program in its own process: $! is the daemon's pid
ip netns exec "$NB" "$BROKER" --config "$tmp/broker.yaml" --client "$CLIENT" --workers "$WORKERS" \
    --state "$tmp/state" >"$tmp/broker.log" 2>&1 &
pids+=($!)
wait_for "$tmp/broker.log" "clients on" 20 && ok || bad "the broker did not start: $(cat "$tmp/broker.log")"
ip netns exec "$NW" "$WORKER" --config "$tmp/worker.yaml" --broker "$WORKERS" --name far \
    --threads 1 >"$tmp/far.log" 2>&1 &
pids+=($!)
ip netns exec "$NB" "$WORKER" --config "$tmp/worker.yaml" --broker "$WORKERS" --name near \
    --threads 1 >"$tmp/near.log" 2>&1 &
pids+=($!)
wait_for "$tmp/broker.log" "worker far ready" 20 && ok || bad "the far worker did not join over the veth: $(cat "$tmp/far.log")"
keys=(--server-key "$tmp/keys/broker.pub" --secret-key "$tmp/keys/client.key")
id=$(inb "$SALMAP" submit "$tmp/job.yaml" --broker "$CLIENT" "${keys[@]}" 2>"$tmp/submit.log" | tail -1)
[ -n "$id" ] && ok || bad "submit over CURVE: $(cat "$tmp/submit.log")"

done_maps() { find "$tmp/net/maps" -name '*.row' 2>/dev/null | wc -l; }
until_maps() { # N SECONDS
    local deadline=$((SECONDS + $2))
    until [ "$(done_maps)" -ge "$1" ]; do [ $SECONDS -ge $deadline ] && return 1; sleep 0.05; done
}
# a cut shorter than the lease (4 x 0.25 s): nobody is given up
until_maps $((N / 5)) 120 || bad "no progress before the short cut"
ip -n "$NW" link set "$VW" down
sleep 0.4 # the cut's length is the fault itself, not a wait for readiness
ip -n "$NW" link set "$VW" up
# a cut longer than the lease: the broker gives the far worker up
until_maps $((N / 2)) 120 || bad "no progress before the long cut"
ip -n "$NW" link set "$VW" down
wait_for "$tmp/broker.log" "worker far silent" 20 && ok || bad "the broker did not give the far worker up: $(tail -5 "$tmp/broker.log")"
ip -n "$NW" link set "$VW" up
deadline=$((SECONDS + 60))
until [ "$(grep -c 'worker far ready' "$tmp/broker.log")" -ge 2 ] || [ $SECONDS -ge $deadline ]; do sleep 0.05; done
[ "$(grep -c 'worker far ready' "$tmp/broker.log")" -ge 2 ] && ok ||
    bad "the far worker did not join again after the link healed: $(tail -5 "$tmp/far.log")"

inb "$SALMAP" wait "$id" --broker "$CLIENT" "${keys[@]}" >"$tmp/wait.log" 2>&1 && ok ||
    bad "wait: $(tail -3 "$tmp/wait.log")"
a=$(map_sums "$tmp/emb") b=$(map_sums "$tmp/net")
[ "$(wc -l <<<"$a")" = $((2 * N)) ] && [ "$a" = "$b" ] && ok ||
    bad "$(wc -l <<<"$b") maps, differing from the embedded run's"
rows=$(tail -n +2 "$tmp/net/index.csv" | wc -l)
uniq=$(tail -n +2 "$tmp/net/index.csv" | cut -d, -f1,6 | sort -u | wc -l)
[ "$rows" = $((2 * N)) ] && [ "$uniq" = "$rows" ] && ok || bad "index.csv: $rows rows, $uniq distinct"

finish netns
