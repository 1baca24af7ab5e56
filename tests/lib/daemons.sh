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
