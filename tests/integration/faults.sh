#!/usr/bin/env bash
# What a night does to a job, done to real processes on loopback
# (docs/RELIABILITY.md):
# 1. kills: a job of 500 MNIST digits (sal, lime) while the broker is
#    killed -9 five times and started again on its state folder, and
#    workers are killed -9 fifteen times, twice together with the broker:
#    no map lost, none twice, maps and records byte-identical to an
#    embedded run, and index.csv too but for its wall-clock column;
# 2. poison input: a zero-byte PNG, a PNG that declares 100,000 x 100,000
#    pixels, and a digit that crashes every worker that takes it (the test
#    hook SALMAP_TEST_CRASH_ON): the job ends, the crashing digit
#    quarantined after exactly max_task_failures worker deaths, the three
#    named in job.json, in the report (as chromium shows it) and by
#    `salmap status`, and every other digit explained;
# 3. a full disk: the job's output folder on a tmpfs of 400 KB; the job
#    waits for space (a fault names the folder), takes no partial file for
#    a map, and ends with every map once the tmpfs is made larger.
. tests/lib/daemons.sh
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    mountpoint -q "$tmp/full" 2>/dev/null && umount "$tmp/full"
    rm -rf "$tmp"
}
trap cleanup EXIT

N=500
# Under the sanitizers every process runs several times slower on 2 cores.
case $BUILD in */san) N=150 ;; esac

fast_configs
echo "max_task_failures: 3" >>"$tmp/broker.yaml"
echo "capacity: 1" >>"$tmp/worker.yaml"

broker_up() { # LOG STATE: on the ports of start_broker's first start
    "$BROKER" --config "$tmp/broker.yaml" --client "$CLIENT" --workers "$WORKERS" \
        --state "$2" >"$1" 2>&1 &
    BPID=$!
    pids+=("$BPID")
    wait_for "$1" "clients on" 20
}
nw=0
declare -A wname # a worker's name by its pid
worker_up() { # [ENV=VALUE]: a worker named wN -> WPID
    nw=$((nw + 1))
    env "$@" "$WORKER" --config "$tmp/worker.yaml" --broker "$WORKERS" --name "w$nw" \
        --threads 1 >"$tmp/w$nw.log" 2>&1 &
    WPID=$!
    wname[$WPID]=w$nw
    pids+=("$WPID")
    live+=("$WPID")
}
# Removes a pid from the live workers (whole words: 84 is not 845).
drop_live() {
    local q rest=()
    for q in "${live[@]}"; do [ "$q" != "$1" ] && rest+=("$q"); done
    live=("${rest[@]}")
}
# The maps complete under OUT (their rows are written last).
done_maps() { find "$1/maps" -name '*.row' 2>/dev/null | wc -l; }
# index.csv without its wall-clock column (7, "seconds"): the columns
# before it hold no quoted comma.
index_wo_time() { cut -d, -f1-6,8- "$1/index.csv"; }

# FAULTS_PARTS="2 3" runs some of the parts (while working on one)
want() { [[ " ${FAULTS_PARTS:-1 2 3} " == *" $1 "* ]]; }
start_broker "$tmp/b0.log" "$tmp/state" --config "$tmp/broker.yaml" || { bad "no broker"; finish faults; exit 1; }
live=() nb=0
for k in 1 2 3; do worker_up; done

# --- 1. kills ----------------------------------------------------------------------
if want 1; then
cat >"$tmp/kills.yaml" <<EOT
out: $tmp/kill
model: models/mnist_cnn.onnx
config: models/mnist_cnn.yaml
dataset: data/mnist/test
methods: [sal, lime]
limit: $N
seed: 11
batch: 16
metrics: false
png: false
params:
  lime: {samples: 300}
EOT
"$SALMAP" explain "$tmp/kills.yaml" --out "$tmp/emb" --workers 2 >"$tmp/emb.log" 2>&1 && ok ||
    bad "the embedded run: $(tail -3 "$tmp/emb.log")"

id=$("$SALMAP" submit "$tmp/kills.yaml" --broker "$CLIENT" 2>"$tmp/submit.log" | tail -1)
[ -n "$id" ] && ok || bad "submit: $(cat "$tmp/submit.log")"
total=$((2 * N))
# 20 kill points at random shares of the job's maps, in order: 15 worker
# kills, 5 broker kills, two of them at the same point as a worker kill.
mapfile -t points < <(shuf -i 3-85 -n 18 | sort -n)
plan=$(printf 'w\n%.0s' $(seq 13); printf 'b\n%.0s' $(seq 3); printf 'wb\n%.0s' 1 2)
mapfile -t what < <(shuf <<<"$plan")
bkills=0 wkills=0
for i in "${!points[@]}"; do
    want=$((total * points[i] / 100))
    deadline=$((SECONDS + 180))
    while [ "$(done_maps "$tmp/kill")" -lt "$want" ] && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
    [ $SECONDS -lt $deadline ] || { bad "no progress to $want maps (kill $i)"; break; }
    if [[ ${what[i]} == *w* ]]; then
        victim=${live[RANDOM % ${#live[@]}]}
        kill -9 "$victim" 2>/dev/null; wait "$victim" 2>/dev/null
        drop_live "$victim"
        worker_up
        wkills=$((wkills + 1))
    fi
    if [[ ${what[i]} == *b* ]]; then
        kill -9 "$BPID"; wait "$BPID" 2>/dev/null
        nb=$((nb + 1))
        broker_up "$tmp/b$nb.log" "$tmp/state" || bad "the broker did not start again ($nb)"
        bkills=$((bkills + 1))
    fi
done
[ "$wkills" = 15 ] && [ "$bkills" = 5 ] && ok || bad "kills: $wkills workers, $bkills brokers"
"$SALMAP" wait "$id" --broker "$CLIENT" >"$tmp/wait.log" 2>&1 && ok ||
    bad "wait after the kills: $(tail -3 "$tmp/wait.log")"
a=$(map_sums "$tmp/emb") b=$(map_sums "$tmp/kill")
[ "$(wc -l <<<"$a")" = "$total" ] && [ "$a" = "$b" ] && ok ||
    bad "after the kills: $(wc -l <<<"$b") maps, differing from the embedded run's $(wc -l <<<"$a")"
a=$(cd "$tmp/emb/maps" && find . -name '*.json' | sort | xargs md5sum)
b=$(cd "$tmp/kill/maps" && find . -name '*.json' | sort | xargs md5sum)
[ "$a" = "$b" ] && ok || bad "after the kills: records differ"
rows=$(tail -n +2 "$tmp/kill/index.csv" | wc -l)
uniq=$(tail -n +2 "$tmp/kill/index.csv" | cut -d, -f1,6 | sort -u | wc -l)
[ "$rows" = "$total" ] && [ "$uniq" = "$total" ] && ok || bad "index.csv: $rows rows, $uniq distinct, want $total"
cmp -s <(index_wo_time "$tmp/emb") <(index_wo_time "$tmp/kill") && ok ||
    bad "index.csv differs from the embedded run's: $(diff <(index_wo_time "$tmp/emb") <(index_wo_time "$tmp/kill") | head -5)"
fi

# --- 2. poison input ----------------------------------------------------------------
if want 2; then
mkdir -p "$tmp/poison/3"
cp $(ls data/mnist/test/3/*.png | head -10) "$tmp/poison/3/"
: >"$tmp/poison/3/empty.png"
cp tests/fixtures/poison/huge.png "$tmp/poison/3/huge.png"
crash=$(ls "$tmp/poison/3" | grep -v -e empty -e huge | sed -n 4p)
crash=3/${crash%.png}
for p in "${live[@]}"; do kill -9 "$p" 2>/dev/null; done; wait "${live[@]}" 2>/dev/null
# the broker must have seen the killed workers go before the job comes:
# it could lease the poison to one of them, and charge the task a death
# that no crash caused
for p in "${live[@]}"; do
    grep -q "worker ${wname[$p]} ready" "$tmp/b$nb.log" || continue
    wait_for "$tmp/b$nb.log" "worker ${wname[$p]} silent" 20 ||
        bad "the broker did not see ${wname[$p]} go"
done
live=()
for k in 1 2; do worker_up SALMAP_TEST_CRASH_ON="$crash"; done
cat >"$tmp/poison.yaml" <<EOT
model: models/mnist_cnn.onnx
config: models/mnist_cnn.yaml
dataset: $tmp/poison
out: $tmp/poisoned
methods: [sal]
metrics: false
EOT
pid=$("$SALMAP" submit "$tmp/poison.yaml" --broker "$CLIENT" 2>"$tmp/submit2.log" | tail -1)
# a supervisor's part: a worker that died is started again (as systemd or
# Kubernetes would), at most 10 times
deaths=0 deadline=$((SECONDS + 120))
while [ $SECONDS -lt $deadline ]; do
    "$SALMAP" status "$pid" --broker "$CLIENT" >"$tmp/status" 2>&1
    grep -qE "^$pid +(done|failed|cancelled)" "$tmp/status" && break
    for p in "${live[@]}"; do
        if ! kill -0 "$p" 2>/dev/null; then
            { wait "$p"; } 2>/dev/null
            drop_live "$p"
            deaths=$((deaths + 1))
            [ $deaths -le 10 ] && worker_up SALMAP_TEST_CRASH_ON="$crash"
        fi
    done
    sleep 0.05
done
grep -qE "^$pid +done +9/12 maps, 3 failed" "$tmp/status" && ok ||
    bad "the poisoned job: $(cat "$tmp/status")"
# the deaths, counted by the workers' own last words (the supervisor above
# may see the last one only after the job has ended)
died=$(grep -l "SALMAP_TEST_CRASH_ON: aborting" "$tmp"/w*.log | wc -l)
[ "$died" = 3 ] && ok || bad "$died worker deaths, want exactly max_task_failures (3)"
grep -q "fault: .*'$crash'.*quarantined: 3 workers died" "$tmp/status" && ok ||
    bad "salmap status does not name the quarantined $crash: $(cat "$tmp/status")"
for f in "$crash" 3/empty 3/huge; do
    grep -q "\"id\": \"$f\"" "$tmp/poisoned/job.json" && ok || bad "job.json does not name $f: $(cat "$tmp/poisoned/job.json")"
done
[ "$(tail -n +2 "$tmp/poisoned/index.csv" | wc -l)" = 9 ] && ok || bad "index.csv of the poisoned job: $(cat "$tmp/poisoned/index.csv")"
if command -v chromium >/dev/null; then
    page=$(timeout 60 chromium --headless=new --no-sandbox --disable-gpu --user-data-dir="$tmp/chrome" \
        --dump-dom "file://$tmp/poisoned/report/index.html" 2>/dev/null)
    for f in "$crash" 3/empty 3/huge; do
        grep -q "<tr><td>$f</td><td>sal</td><td>" <<<"$page" && ok || bad "the report does not show $f failed"
    done
else
    bad "no chromium: apt-get install chromium"
fi
fi

# --- 3. a full disk -------------------------------------------------------------------
mkdir -p "$tmp/full"
if ! want 3; then
    :
elif mount -t tmpfs -o size=400k tmpfs "$tmp/full" 2>"$tmp/mount.err"; then
    cat >"$tmp/disk.yaml" <<EOT
model: models/mnist_cnn.onnx
config: models/mnist_cnn.yaml
dataset: data/mnist/test
out: $tmp/full/out
methods: [sal, grad]
limit: 100
metrics: false
png: false
EOT
    "$SALMAP" explain "$tmp/disk.yaml" --out "$tmp/disk-emb" --workers 2 >"$tmp/demb.log" 2>&1 ||
        bad "the embedded run of the disk job: $(tail -3 "$tmp/demb.log")"
    did=$("$SALMAP" submit "$tmp/disk.yaml" --broker "$CLIENT" 2>"$tmp/submit3.log" | tail -1)
    deadline=$((SECONDS + 60))
    until grep -q "the disk is full; the job waits for space" "$tmp/b$nb.log" 2>/dev/null ||
          [ $SECONDS -ge $deadline ]; do sleep 0.05; done
    grep -q "$tmp/full/out: the disk is full" "$tmp/b$nb.log" && ok || bad "no disk-full fault: $(tail -5 "$tmp/b$nb.log")"
    "$SALMAP" status "$did" --broker "$CLIENT" >"$tmp/dstatus" 2>&1
    grep -qE "^$did +running" "$tmp/dstatus" && grep -q "fault: .*disk is full" "$tmp/dstatus" && ok ||
        bad "the job should wait, running: $(cat "$tmp/dstatus")"
    # every map taken (its row written) is whole: the .npy of a 28 x 28 map
    bad_maps=0
    for r in $(find "$tmp/full/out/maps" -name '*.row'); do
        [ "$(stat -c %s "${r%.row}.npy" 2>/dev/null)" = 3264 ] || bad_maps=$((bad_maps + 1))
    done
    [ "$bad_maps" = 0 ] && ok || bad "$bad_maps maps taken without a whole .npy"
    mount -o remount,size=64m "$tmp/full"
    "$SALMAP" wait "$did" --broker "$CLIENT" >"$tmp/dwait.log" 2>&1 && ok || bad "after space came back: $(tail -3 "$tmp/dwait.log")"
    [ "$(map_sums "$tmp/disk-emb")" = "$(map_sums "$tmp/full/out")" ] && ok || bad "the disk job's maps differ from the embedded run's"
    cmp -s <(index_wo_time "$tmp/disk-emb") <(index_wo_time "$tmp/full/out") && ok || bad "the disk job's index.csv differs"
    find "$tmp/full/out" -name '*.tmp*' | grep -q . && bad "temporary files left: $(find "$tmp/full/out" -name '*.tmp*' | head -3)" || ok
else
    bad "cannot mount a tmpfs (root is needed): $(cat "$tmp/mount.err")"
fi

finish faults
