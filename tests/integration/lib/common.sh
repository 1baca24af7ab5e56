# Shared by the integration scripts (source it first): BUILD and SALMAP, a
# temporary folder $tmp removed at exit, and the tally of tests/lib/check.sh
# (ok, bad, expect, finish).
set -u
BUILD=${BUILD:-build}
SALMAP=$BUILD/bin/salmap
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source tests/lib/check.sh
