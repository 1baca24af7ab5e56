# The start of a script that runs salmap's daemons (sourced, not run):
# strict variables, the programs of $BUILD, a temporary folder $tmp, and
# tests/lib/procs.sh (the tally, polling, starting a broker and workers).
# The caller sets its trap (kill_all, or its own cleanup).
set -u
BUILD=${BUILD:-build}
SALMAP=$BUILD/bin/salmap
BROKER=$BUILD/bin/salmap-broker
WORKER=$BUILD/bin/salmap-worker
tmp=$(mktemp -d)
. tests/lib/procs.sh

# Daemon configs whose heartbeats go four times the defaults' pace (a
# death is seen in a second, not three): $tmp/broker.yaml and
# $tmp/worker.yaml, to which a script appends keys of its own.
fast_configs() {
    printf 'heartbeat_interval: 0.25\nheartbeat_liveness: 4\n' >"$tmp/broker.yaml"
    printf 'heartbeat_interval: 0.25\nheartbeat_liveness: 4\nreconnect_min: 0.1\nreconnect_max: 0.5\n' \
        >"$tmp/worker.yaml"
}
