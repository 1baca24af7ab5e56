#!/bin/sh
# Makes the Secret salmap-curve (CURVE keys of the broker, the workers and
# the clients, one file a key) from `salmap keygen` pairs kept in DIR:
#   deploy/k8s/curve-secret.sh DIR [kubectl create options...]
#   deploy/k8s/curve-secret.sh ~/salmap-keys -n salmap
#   deploy/k8s/curve-secret.sh keys --dry-run=client -o yaml   (prints it)
# Pairs already in DIR are kept, missing ones made: broker.key/.pub,
# worker.key/.pub (shared by every worker replica), client.key/.pub (for
# the Job and for `salmap submit --server-key broker.pub --secret-key
# client.key` from outside). The manifests mount these six keys by name.
# SALMAP: the salmap program (default: salmap on PATH, else build/bin/salmap).
set -eu
[ $# -ge 1 ] || { echo "usage: $0 DIR [kubectl create options...]" >&2; exit 2; }
dir=$1; shift
salmap=${SALMAP:-$(command -v salmap || echo "$PWD/build/bin/salmap")}
case $salmap in /*) ;; *) salmap=$PWD/$salmap ;; esac
mkdir -p "$dir"
for name in broker worker client; do
    [ -f "$dir/$name.key" ] && [ -f "$dir/$name.pub" ] && continue
    (cd "$dir" && "$salmap" keygen "$name" >/dev/null)
done
exec kubectl create secret generic salmap-curve \
    --from-file="$dir/broker.key" --from-file="$dir/broker.pub" \
    --from-file="$dir/worker.key" --from-file="$dir/worker.pub" \
    --from-file="$dir/client.key" --from-file="$dir/client.pub" "$@"
