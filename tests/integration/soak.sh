#!/usr/bin/env bash
# A soak (docs/RELIABILITY.md): every one of the 10,000 MNIST test digits
# explained by a broker and workers while workers come and go (one is
# killed -9 or stopped with SIGTERM and a new one started every second or
# so; a third killed, the rest stopped), with the resident memory of the
# broker and of one worker that stays sampled from /proc. After the
# warm-up (the first quarter of the maps) neither grows by more than
# 16 MiB, and the job ends with every map once and none failed.
# SOAK_N sets the number of digits (10,000).
. tests/lib/daemons.sh
trap kill_all EXIT
N=${SOAK_N:-10000}
case $BUILD in */san) N=${SOAK_N:-2000} ;; esac

# The soak's kills are not poison: a digit whose workers happen to be
# killed three times must not be quarantined (faults.sh tests that).
cat >"$tmp/broker.yaml" <<EOT
heartbeat_interval: 0.25
heartbeat_liveness: 4
max_task_failures: 1000
EOT
cat >"$tmp/worker.yaml" <<EOT
heartbeat_interval: 0.25
heartbeat_liveness: 4
reconnect_min: 0.1
reconnect_max: 0.5
EOT
cat >"$tmp/job.yaml" <<EOT
model: models/mnist_cnn.onnx
config: models/mnist_cnn.yaml
dataset: data/mnist/test
out: $tmp/soak
methods: [sal]
limit: $N
batch: 16
metrics: false
png: false
EOT
start_broker "$tmp/broker.log" "$tmp/state" --config "$tmp/broker.yaml" ||
    { bad "no broker"; finish soak; exit 1; }
nw=0 churn=()
worker_up() { # -> WPID
    nw=$((nw + 1))
    "$WORKER" --config "$tmp/worker.yaml" --broker "$WORKERS" --name "w$nw" --threads 1 \
        >"$tmp/w$nw.log" 2>&1 &
    WPID=$!
    pids+=("$WPID")
}
worker_up; keep=$WPID
worker_up; churn+=("$WPID")
id=$("$SALMAP" submit "$tmp/job.yaml" --broker "$CLIENT" 2>"$tmp/submit.log" | tail -1)
[ -n "$id" ] && ok || bad "submit: $(cat "$tmp/submit.log")"

rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status" 2>/dev/null; }
done_maps() { find "$tmp/soak/maps" -name '*.row' 2>/dev/null | wc -l; }
# samples: maps done, broker kB, kept worker kB
: >"$tmp/mem.tsv"
deadline=$((SECONDS + 900)) last=$SECONDS kills=0
while [ $SECONDS -lt $deadline ]; do
    d=$(done_maps)
    printf '%s\t%s\t%s\n' "$d" "$(rss "$BPID")" "$(rss "$keep")" >>"$tmp/mem.tsv"
    if [ $SECONDS -gt $last ]; then # about a second: one worker goes, one comes
        last=$SECONDS
        "$SALMAP" status "$id" --broker "$CLIENT" 2>/dev/null | grep -qE "^$id +(done|failed|cancelled)" && break
        v=${churn[0]}; churn=("${churn[@]:1}")
        # stopped (SIGTERM: it hands its tasks back) or killed (SIGKILL)
        if [ $((RANDOM % 3)) = 0 ]; then kill -9 "$v"; else kill -TERM "$v"; fi
        { wait "$v"; } 2>/dev/null
        worker_up; churn+=("$WPID")
        kills=$((kills + 1))
    fi
    sleep 0.2 # the sampling period
done
"$SALMAP" wait "$id" --broker "$CLIENT" >"$tmp/wait.log" 2>&1 && ok || bad "wait: $(tail -3 "$tmp/wait.log")"
rows=$(tail -n +2 "$tmp/soak/index.csv" | wc -l)
uniq=$(tail -n +2 "$tmp/soak/index.csv" | cut -d, -f1 | sort -u | wc -l)
[ "$rows" = "$N" ] && [ "$uniq" = "$N" ] && ok || bad "index.csv: $rows rows, $uniq distinct, want $N"
grep -q "done: $N maps written or found, 0 failed" "$tmp/broker.log" && ok ||
    bad "the job: $(grep " done: \| failed" "$tmp/broker.log" | tail -3)"
[ "$kills" -ge 5 ] && ok || bad "only $kills workers churned"
# flat after the warm-up: the largest sample after a quarter of the maps
# against the first sample there
read -r b0 w0 b1 w1 < <(awk -F'\t' -v q=$((N / 4)) '$1 >= q && $2 && $3 {
    if (!seen) { b0 = $2; w0 = $3; seen = 1 } if ($2 > b1) b1 = $2; if ($3 > w1) w1 = $3 }
    END { print b0, w0, b1, w1 }' "$tmp/mem.tsv")
echo "soak: $N digits, $kills workers churned; broker RSS ${b0:-?} -> max ${b1:-?} kB," \
     "kept worker ${w0:-?} -> max ${w1:-?} kB after the warm-up"
[ -n "${b0:-}" ] && [ $((b1 - b0)) -le 16384 ] && ok || bad "the broker's memory grew: ${b0:-?} -> ${b1:-?} kB"
[ -n "${w0:-}" ] && [ $((w1 - w0)) -le 16384 ] && ok || bad "the kept worker's memory grew: ${w0:-?} -> ${w1:-?} kB"
finish soak
