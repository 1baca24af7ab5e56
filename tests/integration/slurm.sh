#!/usr/bin/env bash
# deploy/slurm/salmap.sbatch on a real Slurm: munged, slurmctld and slurmd
# for this one machine (configured in a temporary folder, foreground
# daemons on random ports, stopped at the end) run the batch script on 40
# MNIST digits with 2 tasks; the maps equal those of `salmap explain`
# byte for byte and the report and figure are written. A job scancel'ed
# halfway and submitted again, and one warned of its time limit (USR1)
# that requeues itself, lose nothing and redo nothing; the same with CURVE
# keys; a job whose submission fails makes the batch job fail.
set -u
BUILD=${BUILD:-build}
SALMAP=$BUILD/bin/salmap
tmp=$(mktemp -d)
. tests/lib/procs.sh

PATH=$PATH:/usr/sbin:/sbin # the daemons, for a PATH without them
[ "$(id -u)" = 0 ] || { echo "slurm: FAIL: must run as root (slurmd starts jobs as any user; CI runs as root)" >&2; exit 1; }
for c in munged munge unmunge slurmctld slurmd sbatch srun scancel scontrol sinfo; do
    command -v "$c" >/dev/null ||
        { echo "slurm: FAIL: $c not found: install the Debian packages slurm-wlm and munge (make deps)" >&2; exit 1; }
done
host=$(hostname -s)
cleanup() {
    [ -n "${SLURM_CONF:-}" ] && scancel --quiet --full "--user=root" 2>/dev/null
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    local deadline=$((SECONDS + 10))
    for p in "${pids[@]}"; do
        while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
        kill -9 "$p" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

# Polls COMMAND until it succeeds or SECONDS pass.
until_ok() { # SECONDS COMMAND...
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.1
    done
}

# --- munged, on a private socket --------------------------------------------------
chmod 0711 "$tmp" # munged runs as munge and must reach its folder
# the key private to munge; the socket's folder open to every user
mkdir -p "$tmp/munge" "$tmp/munge.sock.d"
dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 status=none
chown -R munge:munge "$tmp/munge" "$tmp/munge.sock.d"
chmod 0700 "$tmp/munge"; chmod 0400 "$tmp/munge/munge.key"; chmod 0755 "$tmp/munge.sock.d"
sock=$tmp/munge.sock.d/munge.sock
runuser -u munge -- munged --foreground --key-file="$tmp/munge/munge.key" --socket="$sock" \
    --pid-file="$tmp/munge/munged.pid" --log-file="$tmp/munge/munged.log" \
    --seed-file="$tmp/munge/munged.seed" >"$tmp/munged.out" 2>&1 &
pids+=($!)
munge_ok() { munge -n -S "$sock" | unmunge -S "$sock"; }
until_ok 10 munge_ok && ok ||
    { bad "munged did not start: $(cat "$tmp/munged.out" "$tmp/munge/munged.log" 2>/dev/null)"; finish slurm; exit 1; }

# --- slurmctld and slurmd for this machine ----------------------------------------
port=$((20000 + RANDOM % 40000))
s=$tmp/slurm
mkdir -p "$s/state" "$s/spool"
cat >"$s/slurm.conf" <<EOT
ClusterName=salmaptest
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$s/state
SlurmdSpoolDir=$s/spool
SlurmctldPidFile=$s/slurmctld.pid
SlurmdPidFile=$s/slurmd.pid
SlurmctldLogFile=$s/slurmctld.log
SlurmdLogFile=$s/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SchedulerType=sched/backfill
KillWait=10
MinJobAge=600
NodeName=$host CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOT
export SLURM_CONF=$s/slurm.conf
slurmctld -D -i -f "$SLURM_CONF" >"$s/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" >"$s/slurmd.out" 2>&1 &
pids+=($!)
idle() { sinfo -h -n "$host" -o %t | grep -qx idle; }
until_ok 30 idle && ok || {
    bad "the node did not become idle: $(sinfo 2>&1; tail -n 5 "$s/slurmctld.log" "$s/slurmd.log" "$s"/*.out 2>&1)"
    finish slurm; exit 1; }

# --- the reference: salmap explain, embedded ----------------------------------------
N=40 M=3
job() { # NAME OUT
    cat >"$tmp/$1.yaml" <<EOT
model: models/mnist_cnn.onnx
config: models/mnist_cnn.yaml
dataset: data/mnist/test
out: $2
methods: [sal, grad, lime]
limit: $N
seed: 7
metrics: false
params:
  lime: {samples: 2000}
EOT
}
job emb "$tmp/emb"
"$SALMAP" explain "$tmp/emb.yaml" --workers 2 >"$tmp/emb.log" 2>&1 && ok ||
    bad "embedded run: $(tail -n 3 "$tmp/emb.log")"

# Submits the batch script; sets JOBID.
sbatch_job() { # NAME [sbatch options...]
    local name=$1; shift
    JOBID=$(SALMAP_BIN=$PWD/$BUILD/bin SALMAP_STATE=$tmp/state-$name sbatch --parsable \
        --ntasks=2 --output="$tmp/$name.%j.out" "$@" deploy/slurm/salmap.sbatch "$tmp/$name.yaml")
    [ -n "$JOBID" ]
}
job_state() { scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
ended() { case $(job_state "$1") in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) ;; *) return 1 ;; esac; }
rows() { find "$1/maps" -name '*.row' 2>/dev/null | wc -l; }

same_maps() { # DIR WHAT
    local a b
    a=$(map_sums "$tmp/emb") b=$(map_sums "$1")
    [ "$(grep -cE '/(sal|grad|lime)\.npy$' <<<"$b")" = $((M * N)) ] && [ "$a" = "$b" ] && ok ||
        bad "$2: maps differ from the embedded run ($(wc -l <<<"$b") maps)"
    # index.csv: the same rows but for the seconds column
    local col
    col=$(head -n 1 "$tmp/emb/index.csv" | tr , '\n' | grep -nx seconds | cut -d: -f1)
    a=$(cut -d, -f"$col" --complement "$tmp/emb/index.csv" | sort)
    b=$(cut -d, -f"$col" --complement "$1/index.csv" 2>/dev/null | sort)
    [ -n "$col" ] && [ "$(wc -l <<<"$b")" = $((M * N + 1)) ] && [ "$a" = "$b" ] && ok ||
        bad "$2: index.csv differs from the embedded run's"
    [ -s "$1/figure.png" ] && [ -s "$1/report/index.html" ] &&
        [ "$(find "$1/maps" -name lime.overlay.png | wc -l)" = $N ] && ok ||
        bad "$2: no figure, report or PNGs"
}

# --- (a) one batch job, 2 tasks: 2 workers ---------------------------------------------
job a "$tmp/a"
sbatch_job a && ok || bad "sbatch refused the script"
until_ok 120 ended "$JOBID" || bad "batch job $JOBID did not end within 120 s: $(job_state "$JOBID")"
log=$(cat "$tmp"/a.*.out 2>/dev/null)
[ "$(job_state "$JOBID")" = COMPLETED ] && ok || bad "batch job $JOBID: $(job_state "$JOBID"): $log"
same_maps "$tmp/a" "2 tasks"
grep -qE '^[01]: ' <<<"$log" && [ "$(grep -c 'workers started' <<<"$log")" = 1 ] && ok ||
    bad "no srun-labelled workers in the job log: $log"
grep -qE "2 workers started" <<<"$log" && grep -qE "salmap: job j[0-9a-f]+ (running|done): [0-9]+/$((M * N)) maps" <<<"$log" &&
    ok || bad "no progress in the job log: $log"
[ "$(grep -cE '^[01]: salmap-worker slurm[0-9.]+: stopped' <<<"$log")" = 2 ] && ! grep -q Killed <<<"$log" && ok ||
    bad "the workers were not stopped cleanly: $log"
grep -qE '"slurm'"$JOBID"'\.0"' "$tmp/a/job.json" && grep -qE '"slurm'"$JOBID"'\.1"' "$tmp/a/job.json" &&
    ok || bad "job.json does not name both srun tasks' workers: $(cat "$tmp/a/job.json")"
# The broker binds every interface: with keys the script made, never in the clear.
[ "$(stat -c %a "$tmp/state-a/curve/broker.key" 2>/dev/null)" = 600 ] &&
    ! grep -q "CURVE is off" "$tmp"/state-a/broker."$JOBID".*.log && ok ||
    bad "(a) ran without the CURVE keys of $tmp/state-a/curve: $(cat "$tmp"/state-a/broker."$JOBID".*.log)"

# --- (b) scancel halfway, then sbatch again: nothing lost, nothing redone --------------
# Waits for the first lime map of NAME's job (sal and grad come first),
# then runs STOP; the maps written so far are kept with inode and time in
# $tmp/NAME.first: written again, they would change. lime's 2,000 samples
# keep the other 39 maps busy for seconds after it (at 200, a fast machine
# finished them all between USR1 and the workers' stop: seen in CI).
halfway() { # NAME STOP...
    local name=$1; shift
    some_lime() { [ "$(find "$tmp/$name/maps" -name lime.row 2>/dev/null | wc -l)" -ge 1 ]; }
    until_ok 120 some_lime || bad "$name: no lime maps within 120 s: $(cat "$tmp/$name".*.out)"
    "$@"
    until_ok 60 stopped "$name" ||
        bad "$name: the batch script did not stop: $(cat "$tmp/$name".*.out);" \
            "still running: $(pgrep -af -- "--state $tmp/state-$name");" \
            "slurmd's last lines: $(tail -n 25 "$s/slurmd.log")"
    done1=$(rows "$tmp/$name")
    [ "$done1" -lt $((M * N)) ] && ok || bad "$name: the job was complete before it was stopped ($done1 maps)"
    (cd "$tmp/$name/maps" && find . -type f -name '*.npy' -printf '%p %i %T@\n' | sort) >"$tmp/$name.first"
}
stopped() { grep -q "stopping; the job resumes" "$tmp/$1".*.out && ! pgrep -f -- "--state $tmp/state-$1" >/dev/null; }
# The job ran to the end in a second allocation, resuming the first one's.
resumed() { # NAME LOG BROKER_LOG ID HOW (the script's line)
    grep -qF "job $4 $5" "$2" && ! grep -q "job .* submitted" "$2" && ok ||
        bad "$1: the second allocation did not resume job $4: $(cat "$2")"
    grep -q "job $4 resumed: $N images" "$3" && ok || bad "$1: the broker did not resume $4: $(cat "$3")"
    same_maps "$tmp/$1" "$1, resumed"
    (cd "$tmp/$1/maps" && find . -type f -name '*.npy' -printf '%p %i %T@\n' | sort) >"$tmp/$1.second"
    local first kept new total
    first=$(wc -l <"$tmp/$1.first")
    kept=$(comm -12 "$tmp/$1.first" "$tmp/$1.second" | wc -l)
    [ "$kept" = "$first" ] && ok || bad "$1: $((first - kept)) maps of the first allocation were written again"
    new=$(comm -13 "$tmp/$1.first" "$tmp/$1.second" | grep -c .)
    total=$(wc -l <"$tmp/$1.second")
    [ $((total - new)) = "$first" ] && [ "$new" -gt 0 ] && ok ||
        bad "$1: the second allocation wrote $new of $total maps, the first $first"
}
job b "$tmp/b"
sbatch_job b && ok || bad "sbatch refused the script"
first=$JOBID
halfway b scancel "$first"
until_ok 60 ended "$first" || bad "the cancelled job $first did not end"
[ "$(job_state "$first")" = CANCELLED ] && ok || bad "job $first: $(job_state "$first")"
id1=$(cut -d' ' -f1 "$tmp/state-b/slurm-job")
# as if the first allocation had ended between submit and noting the id:
# the broker's refusal of a second job into the out folder names it
rm "$tmp/state-b/slurm-job"
sbatch_job b && ok || bad "sbatch refused the script again"
until_ok 120 ended "$JOBID" || bad "batch job $JOBID did not end within 120 s"
log=$(cat "$tmp"/b."$JOBID".out)
[ "$(job_state "$JOBID")" = COMPLETED ] && ok || bad "resubmitted job $JOBID: $(job_state "$JOBID"): $log"
resumed b "$tmp/b.$JOBID.out" "$(ls "$tmp"/state-b/broker."$JOBID".*.log)" "$id1" \
    "from the journal writes the same out folder: waiting for it"

# --- (c) the time limit near (--signal=B:USR1): the job requeues itself and resumes -----
job r "$tmp/r"
sbatch_job r && ok || bad "sbatch refused the script"
halfway r scancel --batch --signal=USR1 "$JOBID"
id1=$(cut -d' ' -f1 "$tmp/state-r/slurm-job")
# Slurm holds a requeued job back for two minutes (its begin time); let it
# go sooner, but not within the second of the requeue, whose revoked
# credential would refuse the new launch ("Job credential revoked").
pending() { [ "$(job_state "$JOBID")" = PENDING ]; }
until_ok 60 pending && scontrol update JobId="$JOBID" StartTime=now+3 && ok ||
    bad "job $JOBID was not requeued: $(job_state "$JOBID")"
until_ok 120 ended "$JOBID" || bad "the requeued job $JOBID did not end within 120 s: $(job_state "$JOBID")"
[ "$(job_state "$JOBID")" = COMPLETED ] && ok || bad "requeued job $JOBID: $(job_state "$JOBID"): $(cat "$tmp"/r.*.out)"
grep -q "requeueing job $JOBID" "$tmp/r.$JOBID.out" && ok || bad "the job did not requeue itself: $(cat "$tmp"/r.*.out)"
scontrol show job "$JOBID" | grep -q "Restarts=1" && ok || bad "job $JOBID did not run twice"
sed -n '/requeueing job/,$p' "$tmp/r.$JOBID.out" >"$tmp/r.again.out" # the same log, appended
resumed r "$tmp/r.again.out" "$tmp/state-r/broker.$JOBID.1.log" "$id1" "resumed from the journal"

# --- CURVE: the broker, the workers and the client with keys, as DEPLOY.md says ------
# Completing proves every key reached its program: a broker with keys
# refuses plain workers and clients, a broker without them every CURVE peer.
k=$tmp/keys
mkdir -p "$k/allow"
for n in broker worker me; do (cd "$k" && "$OLDPWD/$SALMAP" keygen $n >/dev/null) || bad "keygen $n"; done
cp "$k/worker.pub" "$k/me.pub" "$k/allow/"
printf 'curve_secret_key: %s\ncurve_allow_dir: %s\n' "$k/broker.key" "$k/allow" >"$k/broker.yaml"
printf 'curve_server_key: %s\ncurve_secret_key: %s\n' "$k/broker.pub" "$k/worker.key" >"$k/worker.yaml"
job k "$tmp/k"
SALMAP_BROKER_CONFIG=$k/broker.yaml SALMAP_WORKER_CONFIG=$k/worker.yaml \
    SALMAP_SERVER_KEY=$k/broker.pub SALMAP_SECRET_KEY=$k/me.key sbatch_job k && ok || bad "sbatch refused the script"
until_ok 120 ended "$JOBID" || bad "batch job $JOBID did not end within 120 s"
[ "$(job_state "$JOBID")" = COMPLETED ] && ok || bad "CURVE: batch job $JOBID: $(job_state "$JOBID"): $(cat "$tmp"/k.*.out)"
same_maps "$tmp/k" "with CURVE"

# A broker.yaml without CURVE nor insecure_allow_plaintext: the broker
# refuses every interface, and the batch job fails saying so.
printf 'heartbeat_interval: 1.0\n' >"$k/plain.yaml"
job p "$tmp/p"
SALMAP_BROKER_CONFIG=$k/plain.yaml sbatch_job p && ok || bad "sbatch refused the script"
until_ok 60 ended "$JOBID" || bad "batch job $JOBID did not end"
[ "$(job_state "$JOBID")" = FAILED ] && grep -q "is not loopback and CURVE is off" "$tmp"/p.*.out &&
    ok || bad "a plaintext broker.yaml: $(job_state "$JOBID"): $(cat "$tmp"/p.*.out)"

# --- a job the broker refuses: the batch job fails, saying why --------------------------
job c "$tmp/c"
sed -i 's|^dataset: .*|dataset: data/no-such-set|' "$tmp/c.yaml"
sbatch_job c && ok || bad "sbatch refused the script"
until_ok 60 ended "$JOBID" || bad "batch job $JOBID did not end"
[ "$(job_state "$JOBID")" = FAILED ] && ok || bad "a refused job left the batch job $(job_state "$JOBID")"
grep -q "no-such-set" "$tmp"/c.*.out && ok || bad "the job log does not name the bad dataset: $(cat "$tmp"/c.*.out)"
# and without a job file
JOBID=$(SALMAP_BIN=$PWD/$BUILD/bin sbatch --parsable --ntasks=1 --output="$tmp/d.%j.out" deploy/slurm/salmap.sbatch)
until_ok 60 ended "$JOBID" || bad "batch job $JOBID did not end"
[ "$(job_state "$JOBID")" = FAILED ] && grep -q "no job file" "$tmp/d.$JOBID.out" && ok ||
    bad "no job file: $(job_state "$JOBID"): $(cat "$tmp/d.$JOBID.out")"

finish slurm
