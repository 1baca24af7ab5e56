#!/usr/bin/env bash
# A soak (docs/RELIABILITY.md): every one of the 10,000 MNIST digits
# explained by a broker and workers while workers come and go (one is
# killed -9 or stopped with SIGTERM and a new one started every second or
# so; a third killed, the rest stopped), with the resident memory of the
# broker and of one worker that stays sampled from /proc. Two rounds of
# the same work (round 1's jobs deleted before round 2): round 2's peak
# memory of the broker and of the kept worker is within 8 MiB of round
# 1's (a leak grows with the work done), and each round ends with every
# map once and none failed.
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
# MNIST's 10,000 digits are two folders here (8,000 train, 2,000 test): two
# jobs, running side by side, share them.
NTEST=$((N < 2000 ? N : 2000)) NTRAIN=$((N - (N < 2000 ? N : 2000)))
for part in test train; do
    n=$NTEST; [ $part = train ] && n=$NTRAIN
    cat >"$tmp/$part.yaml" <<EOT
model: models/mnist_cnn.onnx
config: models/mnist_cnn.yaml
dataset: data/mnist/$part
out: $tmp/soak/$part
methods: [sal]
limit: $n
batch: 16
metrics: false
png: false
EOT
done
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
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status" 2>/dev/null; }
kills=0
# One round: both jobs into OUT/<part>, workers churned about once a second
# meanwhile, broker and kept-worker RSS sampled into mem.R.tsv; then the
# checks, and the jobs deleted (their files and the broker's memory of them).
round() { # R
    local r=$1 ids=() id part last=$SECONDS ended v
    for part in test train; do
        [ "$(sed -n 's/^limit: //p' "$tmp/$part.yaml")" -gt 0 ] || continue
        sed "s|^out: .*|out: $tmp/soak$r/$part|" "$tmp/$part.yaml" >"$tmp/$part.$r.yaml"
        ids+=("$("$SALMAP" submit "$tmp/$part.$r.yaml" --broker "$CLIENT" 2>"$tmp/submit.log" | tail -1)")
        [ -n "${ids[-1]}" ] && ok || bad "round $r: submit $part: $(cat "$tmp/submit.log")"
    done
    : >"$tmp/mem.$r.tsv"
    local deadline=$((SECONDS + 900))
    while [ $SECONDS -lt $deadline ]; do
        printf '%s\t%s\n' "$(rss "$BPID")" "$(rss "$keep")" >>"$tmp/mem.$r.tsv"
        if [ $SECONDS -gt $last ]; then # about a second: one worker goes, one comes
            last=$SECONDS
            ended=0
            for id in "${ids[@]}"; do
                "$SALMAP" status "$id" --broker "$CLIENT" 2>/dev/null |
                    grep -qE "^$id +(done|failed|cancelled)" && ended=$((ended + 1))
            done
            [ "$ended" = "${#ids[@]}" ] && break
            v=${churn[0]}; churn=("${churn[@]:1}")
            # stopped (SIGTERM: it hands its tasks back) or killed (SIGKILL)
            if [ $((RANDOM % 3)) = 0 ]; then kill -9 "$v"; else kill -TERM "$v"; fi
            { wait "$v"; } 2>/dev/null
            worker_up; churn+=("$WPID")
            kills=$((kills + 1))
        fi
        sleep 0.2 # the sampling period
    done
    for id in "${ids[@]}"; do
        "$SALMAP" wait "$id" --broker "$CLIENT" >"$tmp/wait.log" 2>&1 && ok || bad "round $r: wait: $(tail -3 "$tmp/wait.log")"
    done
    local rows uniq
    rows=$(cat "$tmp"/soak$r/*/index.csv | grep -vc '^id,')
    uniq=$(tail -q -n +2 "$tmp"/soak$r/*/index.csv | cut -d, -f1 | sort -u | wc -l)
    [ "$rows" = "$N" ] && [ "$uniq" = "$N" ] && ok || bad "round $r: index.csv: $rows rows, $uniq distinct, want $N"
    for id in "${ids[@]}"; do
        "$SALMAP" delete "$id" --broker "$CLIENT" >"$tmp/delete.log" 2>&1 || bad "round $r: delete $id: $(cat "$tmp/delete.log")"
    done
}
# the largest of column C of a round's samples
peak() { cut -f"$2" "$tmp/mem.$1.tsv" | sort -n | tail -1; }

round 1 # the warm-up: whatever the first 10,000 maps make the processes hold
round 2
[ "$(grep -c " done: [0-9]* maps written or found, 0 failed" "$tmp/broker.log")" = 4 ] && ok ||
    bad "the jobs: $(grep " done: \| failed" "$tmp/broker.log" | tail -3)"
[ "$kills" -ge 10 ] && ok || bad "only $kills workers churned"
[ -z "$(ls "$tmp/soak1/test" "$tmp/soak1/train" 2>/dev/null)" ] && ok || bad "round 1's deleted jobs left files"
b1=$(peak 1 1) b2=$(peak 2 1) w1=$(peak 1 2) w2=$(peak 2 2)
echo "soak: 2 x $N digits, $kills workers churned; peak RSS, round 1 then 2:" \
     "broker ${b1:-?} -> ${b2:-?} kB, kept worker ${w1:-?} -> ${w2:-?} kB"
# flat: the second round of the same work holds no more than the first
# and an allocator's slack (a leak of 1 KB a map would add 10 MB here)
[ -n "$b2" ] && [ $((b2 - b1)) -le 8192 ] && ok || bad "the broker's memory grew: ${b1:-?} -> ${b2:-?} kB"
[ -n "$w2" ] && [ $((w2 - w1)) -le 8192 ] && ok || bad "the kept worker's memory grew: ${w1:-?} -> ${w2:-?} kB"
finish soak
