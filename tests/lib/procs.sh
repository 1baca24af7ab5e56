# Shell helpers of the scripts that run salmap's processes (sourced, not
# run): counting checks, a command's exit status and output, polling with
# a deadline, and starting a broker and workers on random loopback ports.
# The caller sets BROKER, WORKER and tmp, and kills what "pids" lists on
# exit (`trap kill_all EXIT` does, and removes $tmp).
source tests/lib/check.sh
pids=()

kill_all() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}

# Waits until the file holds the text or the deadline passes.
wait_for() { # FILE TEXT SECONDS
    local deadline=$((SECONDS + $3))
    until grep -qF -- "$2" "$1" 2>/dev/null; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.05
    done
}

# Waits until DIR/maps holds at least N maps or the deadline passes.
wait_maps() { # DIR N SECONDS
    local deadline=$((SECONDS + $3))
    until [ "$(find "$1/maps" -name '*.npy' 2>/dev/null | wc -l)" -ge "$2" ]; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.05
    done
}

# Starts a broker on two random free ports (retrying when one is taken);
# sets CLIENT, WORKERS, BPID. STATE empty: the config's state_dir; further
# arguments go to the broker (--config FILE).
start_broker() { # LOG STATE [OPTIONS...]
    local log=$1 state=$2 try port
    shift 2
    for try in 1 2 3 4 5 6 7 8; do
        port=$((20000 + RANDOM % 40000))
        CLIENT=tcp://127.0.0.1:$port WORKERS=tcp://127.0.0.1:$((port + 1))
        "$BROKER" --client "$CLIENT" --workers "$WORKERS" ${state:+--state "$state"} "$@" \
            >"$log" 2>&1 &
        BPID=$!
        pids+=("$BPID")
        wait_for "$log" "clients on" 10 && return 0
        kill -9 "$BPID" 2>/dev/null; wait "$BPID" 2>/dev/null
    done
    return 1
}

# Starts the broker again on the ports and state it had; sets BPID.
restart_broker() { # LOG STATE
    "$BROKER" --client "$CLIENT" --workers "$WORKERS" --state "$2" >"$1" 2>&1 &
    BPID=$!
    pids+=("$BPID")
}

start_worker() { # NAME -> WPID
    "$WORKER" --broker "$WORKERS" --name "$1" --threads 1 >"$tmp/$1.log" 2>&1 &
    WPID=$!
    pids+=("$WPID")
}

# The md5 of every map under DIR/maps, one line each, sorted by path.
map_sums() { # DIR
    (cd "$1/maps" && find . -name '*.npy' | sort | xargs md5sum)
}

# The same of every record (.json) under DIR/maps: one an (image, method).
record_sums() { # DIR
    (cd "$1/maps" && find . -name '*.json' | sort | xargs md5sum)
}

# DIR's maps and records (with their arrays) are REF's, byte for byte, and
# it holds N records: every (image, method) of the job.
same_outputs() { # REF DIR N WHAT
    local a b n
    b=$(record_sums "$2")
    n=$(grep -c . <<<"$b")
    [ "$n" = "$3" ] || { bad "$4: $n records, not $3"; return 1; }
    a=$(record_sums "$1")
    [ "$a" = "$b" ] || { bad "$4: records differ from the reference run"; return 1; }
    a=$(map_sums "$1")
    b=$(map_sums "$2")
    [ "$a" = "$b" ] && ok || { bad "$4: maps differ from the reference run"; return 1; }
}

# DIR/index.csv holds N rows, every (id, method) once.
rows_once() { # DIR N WHAT
    local rows uniq
    rows=$(tail -n +2 "$1/index.csv" | wc -l)
    uniq=$(tail -n +2 "$1/index.csv" | cut -d, -f1,6 | sort -u | wc -l)
    [ "$rows" = "$2" ] && [ "$uniq" = "$rows" ] && ok ||
        bad "$3: $rows rows, $uniq distinct, want $2"
}
