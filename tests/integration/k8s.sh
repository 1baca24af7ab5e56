#!/usr/bin/env bash
# The Kubernetes deployment (deploy/k8s), checked without a cluster (none
# runs here, and `kubectl apply --dry-run=client` needs one: it asks the
# API server for the kinds it knows, docs/DEPLOY.md "Kubernetes"). kubectl
# renders the kustomization and parses every object offline (`kubectl
# kustomize`, `kubectl label --local -o json`); jq then checks every cross-
# reference: names, labels, ports, volumes, ConfigMap and Secret keys, the
# image and its user, the addresses, the autoscaler, the resources. Last,
# the configs, Secret and job file of the manifests run for real: a broker,
# a worker and the Job's client on loopback with the pods' paths mapped
# into a temporary folder, CURVE on. Each check is also run on a broken
# copy of the manifests, and must fail there.
source tests/integration/lib/common.sh
BROKER=$BUILD/bin/salmap-broker
WORKER=$BUILD/bin/salmap-worker
source tests/lib/procs.sh
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"' EXIT
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

for cmd in kubectl jq; do
    if ! command -v $cmd >/dev/null 2>&1; then
        bad "$cmd is not installed (make deps installs it)"
        finish k8s; exit 1
    fi
done
# No cluster: an empty kubeconfig, so that nothing here can reach one.
export KUBECONFIG=$tmp/kubeconfig
: >"$KUBECONFIG"

# render DIR OUT: every object of DIR as one JSON array in OUT: the
# kustomization (images rewritten), hpa.yaml, job-mnist.yaml, and the
# Secret that curve-secret.sh makes (keys from $tmp/keys, made once).
render() {
    { kubectl kustomize "$1" && echo --- && cat "$1/hpa.yaml" && echo --- &&
      cat "$1/job-mnist.yaml"; } >"$2.yaml" 2>"$2.err" &&
    kubectl label --local -f "$2.yaml" salmap-test=1 -o json >"$2.json" 2>>"$2.err" &&
    SALMAP=$SALMAP sh "$1/curve-secret.sh" "$tmp/keys" --dry-run=client -o json \
        >>"$2.json" 2>>"$2.err" &&
    jq -s . "$2.json" >"$2"
}

# jq over the objects: pod(KIND; NAME) is a workload's pod template.
JQ_DEFS='
def obj(k; n): .[] | select(.kind == k and .metadata.name == n);
def pod(k; n): obj(k; n) | .spec.template;
def subset(a; b): b as $b | a | to_entries | all(. as $e | $b[$e.key] == $e.value);
def mib: if endswith("Gi") then .[:-2] | tonumber * 1024
         elif endswith("Mi") then .[:-2] | tonumber else error("quantity " + .) end;
def cores: if endswith("m") then .[:-1] | tonumber / 1000 else tonumber end;
# What a pod sees through its ConfigMap and Secret volumes: [path, kind,
# name, key] for each file; and the folders of its claim templates.
def mounts(k; n): . as $all | obj(k; n).spec.template.spec as $s
  | $s.containers[].volumeMounts[] as $m | ($s.volumes // [])[] | select(.name == $m.name)
  | (if .configMap then ["ConfigMap", .configMap.name, .configMap.items]
     elif .secret then ["Secret", .secret.secretName, .secret.items]
     else empty end) as [$kind, $name, $items]
  | ($items // ($all | [obj($kind; $name) | .data // {} | keys[] | {key: ., path: .}]))[]
  | [$m.mountPath + "/" + .path, $kind, $name, .key];
def mounted(k; n): mounts(k; n)[0];
def claims(k; n): obj(k; n) | [.spec.volumeClaimTemplates[]?.metadata.name] as $c
  | .spec.template.spec.containers[].volumeMounts[] | select(.name as $v | $c | index($v))
  | .mountPath;
'
q() { local file=$1; shift; jq -e "$JQ_DEFS $*" "$file" >/dev/null 2>&1; }
qr() { local file=$1; shift; jq -r "$JQ_DEFS $*" "$file"; }
# A key of a salmap config held in a ConfigMap: cm_key J MAP FILE KEY.
cm_key() {
    qr "$1" "obj(\"ConfigMap\"; \"$2\") | .data[\"$3\"]" |
        sed -n "s/^$4: *//p" | sed 's/ *#.*//; s/^"//; s/"$//'
}

# --- the checks: each takes the rendered objects ------------------------------
c_objects() {
    q "$1" '[.[] | .kind + "/" + .metadata.name] as $have
        | ["ConfigMap/salmap-config", "Service/salmap-broker", "StatefulSet/salmap-broker",
           "Deployment/salmap-worker", "HorizontalPodAutoscaler/salmap-worker",
           "ConfigMap/salmap-job-mnist", "Job/salmap-submit-mnist", "Secret/salmap-curve"]
        - $have == []'
}
# One broker whose volume comes from a claim template, governed by the Service.
c_statefulset() {
    q "$1" 'obj("StatefulSet"; "salmap-broker") | .spec.replicas == 1
        and .spec.serviceName == "salmap-broker"
        and (.spec.volumeClaimTemplates | length) == 1
        and (.spec.volumeClaimTemplates[0].spec.resources.requests.storage | test("^[0-9]+[GT]i$"))'
}
# The Service selects the broker's pods and no worker's; each workload
# selects its own pods.
c_selectors() {
    q "$1" 'obj("Service"; "salmap-broker").spec.selector as $sel
        | subset($sel; pod("StatefulSet"; "salmap-broker").metadata.labels)
        and (subset($sel; pod("Deployment"; "salmap-worker").metadata.labels) | not)
        and (subset($sel; pod("Job"; "salmap-submit-mnist").metadata.labels) | not)
        and ([obj("StatefulSet"; "salmap-broker"), obj("Deployment"; "salmap-worker")]
             | all(subset(.spec.selector.matchLabels; .spec.template.metadata.labels)))'
}
# The Service's ports are named clients and workers and reach the broker
# container's ports of those names and numbers, which are the ports of
# the broker's config.
c_ports() {
    local J=$1 cport wport
    cport=$(cm_key "$J" salmap-config broker.yaml client_endpoint | sed 's/.*://')
    wport=$(cm_key "$J" salmap-config broker.yaml worker_endpoint | sed 's/.*://')
    q "$J" "obj(\"Service\"; \"salmap-broker\").spec.ports as \$sp
        | pod(\"StatefulSet\"; \"salmap-broker\").spec.containers[0].ports as \$cp
        | (\$sp | map(.name) | sort) == [\"clients\", \"workers\"]
        and (\$sp | all(. as \$p | \$cp | any(.name == \$p.targetPort and .containerPort == \$p.port)))
        and (\$cp | any(.name == \"clients\" and .containerPort == ${cport:-0}))
        and (\$cp | any(.name == \"workers\" and .containerPort == ${wport:-0}))"
}
# The broker's probes knock on its own ports; the workers, which listen on
# none, have no probes.
c_probes() {
    q "$1" 'pod("StatefulSet"; "salmap-broker").spec.containers[0] as $c
        | [$c.ports[] | .name, .containerPort] as $ports
        | ([$c.readinessProbe.tcpSocket.port, $c.livenessProbe.tcpSocket.port]
           | all(. as $p | $ports | index($p) != null))
        and (pod("Deployment"; "salmap-worker").spec.containers
             | all(.readinessProbe == null and .livenessProbe == null))'
}
# Every mount names a volume (or the broker's claim template), every
# volume is mounted, no two mounts share a path.
c_volumes() {
    q "$1" '[obj("StatefulSet"; "salmap-broker"), obj("Deployment"; "salmap-worker"),
             obj("Job"; "salmap-submit-mnist")]
        | all(([.spec.template.spec.volumes[]?.name] + [.spec.volumeClaimTemplates[]?.metadata.name]) as $vols
              | [.spec.template.spec.containers[].volumeMounts[]] as $mounts
              | ($mounts | all(.name as $n | $vols | index($n)))
              and ($vols | all(. as $v | $mounts | any(.name == $v)))
              and ($mounts | map(.mountPath) | length == (unique | length)))'
}
# Every ConfigMap volume names a ConfigMap, and its items are keys of it.
c_configmaps() {
    q "$1" '. as $all | [.[] | .spec.template.spec.volumes[]? | .configMap | select(.)]
        | length > 0 and all(. as $v | [$all | obj("ConfigMap"; $v.name)] | length == 1
              and (.[0].data as $d | $v.items // [] | all($d[.key] != null)))'
}
# Every Secret volume names the Secret curve-secret.sh makes, its items are
# keys of it, and each key is a Z85 CURVE key (40 characters).
c_secrets() {
    q "$1" '. as $all | [.[] | .spec.template.spec.volumes[]? | .secret | select(.)]
        | length > 0 and all(. as $v | [$all | obj("Secret"; $v.secretName)] | length == 1
              and (.[0].data as $d | $v.items // [] | all($d[.key] != null)))
        and ($all | obj("Secret"; "salmap-curve").data | to_entries
             | all(.value | @base64d | rtrimstr("\n") | test("^[0-9a-zA-Z.:+=^!/*?&<>()\\[\\]{}@%$#-]{40}$")))'
}
# Every file a pod's command and config name is mounted in that pod:
# configs, keys, the allow folder, the job file; the broker's state and
# the job's dataset and out on the broker's volume; the job's model in
# the image (the repository's, which .dockerignore keeps).
c_paths() {
    local J=$1 f missing="" bfiles wfiles jfiles bclaims jobfile cmd
    bfiles=$(qr "$J" 'mounted("StatefulSet"; "salmap-broker")')
    wfiles=$(qr "$J" 'mounted("Deployment"; "salmap-worker")')
    jfiles=$(qr "$J" 'mounted("Job"; "salmap-submit-mnist")')
    bclaims=$(qr "$J" 'claims("StatefulSet"; "salmap-broker")')
    has() { grep -qxF -- "$2" <<<"$1" || missing="$missing $2"; }
    under() { local d; for d in $1; do case $2 in "$d"/*) return 0 ;; esac; done; missing="$missing $2"; }
    dir() { grep -q "^$2/" <<<"$1" || missing="$missing $2/"; }
    cmd=$(qr "$J" 'pod("StatefulSet"; "salmap-broker").spec.containers[0].command | join(" ")')
    has "$bfiles" "$(sed -n 's/.*--config \([^ ]*\).*/\1/p' <<<"$cmd")"
    has "$bfiles" "$(cm_key "$J" salmap-config broker.yaml curve_secret_key)"
    dir "$bfiles" "$(cm_key "$J" salmap-config broker.yaml curve_allow_dir)"
    under "$bclaims" "$(cm_key "$J" salmap-config broker.yaml state_dir)/journal"
    cmd=$(qr "$J" 'pod("Deployment"; "salmap-worker").spec.containers[0].command | join(" ")')
    has "$wfiles" "$(sed -n 's/.*--config \([^ ]*\).*/\1/p' <<<"$cmd")"
    has "$wfiles" "$(cm_key "$J" salmap-config worker.yaml curve_server_key)"
    has "$wfiles" "$(cm_key "$J" salmap-config worker.yaml curve_secret_key)"
    cmd=$(qr "$J" 'pod("Job"; "salmap-submit-mnist").spec.containers[0]
        | (.env // [] | map(.name + "=" + .value) | join(" ")) + " " + (.command | join(" "))')
    jobfile=$(grep -oE 'salmap submit [^ ]+' <<<"$cmd" | awk '{print $3}')
    has "$jfiles" "$jobfile"
    for f in $(grep -oE -- '--(server|secret)-key [^ ]+' <<<"$cmd" | awk '{print $2}'); do
        has "$jfiles" "$f"
    done
    [ -n "$(grep -oE -- '--server-key' <<<"$cmd")" ] || missing="$missing --server-key"
    local map=${jobfile##*/}
    local job
    job=$(qr "$J" "obj(\"ConfigMap\"; \"salmap-job-mnist\").data[\"$map\"] // \"\"")
    for f in dataset out; do
        under "$bclaims" "$(sed -n "s/^$f: *//p" <<<"$job")"
    done
    for f in model config; do
        f=$(sed -n "s/^$f: *//p" <<<"$job")
        case $f in /opt/salmap/*) [ -f "${f#/opt/salmap/}" ] || missing="$missing $f" ;;
                   *) missing="$missing $f" ;; esac
    done
    [ -z "$missing" ] || { echo "k8s: not mounted or absent:$missing" >&2; return 1; }
}
# Every container runs the image docker-compose.yml names (built by the
# Dockerfile), as the Dockerfile's user.
c_image() {
    local J=$1 img uid gid
    img=$(sed -n 's/^  image: *//p' docker-compose.yml | head -1)
    uid=$(grep -oE 'useradd .*--uid [0-9]+' Dockerfile | grep -oE '[0-9]+$')
    gid=$(grep -oE 'groupadd .*--gid [0-9]+' Dockerfile | grep -oE '[0-9]+$')
    grep -qE "^USER $uid:$gid\$" Dockerfile &&
    q "$J" "[.[] | .spec.template.spec | select(.)]
        | length == 3 and all(.containers | all(.image == \"$img\"))
        and all(.securityContext | .runAsUser == ${uid:-0} and .runAsGroup == ${gid:-0}
                and .fsGroup == ${gid:-0} and .runAsNonRoot)"
}
# The workers reach the Service's worker port (command line and config);
# the Job reaches its client port.
c_addresses() {
    local J=$1 w c
    w=$(qr "$J" 'obj("Service"; "salmap-broker") | "tcp://" + .metadata.name + ":"
        + (.spec.ports[] | select(.name == "workers") | .port | tostring)')
    c=$(qr "$J" 'obj("Service"; "salmap-broker") | "tcp://" + .metadata.name + ":"
        + (.spec.ports[] | select(.name == "clients") | .port | tostring)')
    [ "$(cm_key "$J" salmap-config worker.yaml broker)" = "$w" ] &&
    q "$J" "pod(\"Deployment\"; \"salmap-worker\").spec.containers[0].command
        | (index(\"--broker\") as \$i | .[\$i + 1]) == \"$w\"" &&
    q "$J" "pod(\"Job\"; \"salmap-submit-mnist\").spec.containers[0]
        | (.env[] | select(.name == \"BROKER\") | .value) == \"$c\"
        and (.command | join(\" \") | test(\"--broker \\\"[\$]BROKER\\\"\"))"
}
# A worker computes on as many threads as its CPU limit.
c_threads() {
    q "$1" 'pod("Deployment"; "salmap-worker").spec.containers[0] as $c
        | ($c.command | index("--threads") as $i | .[$i + 1]) as $arg
        | $arg == "$(SALMAP_THREADS)"
        and ($c.env[] | select(.name == "SALMAP_THREADS") | .valueFrom.resourceFieldRef
             | .containerName == $c.name and .resource == "limits.cpu")
        and ($c.resources.limits.cpu != null)'
}
# The autoscaler scales the worker Deployment on CPU, which the workers
# request (utilisation is measured against the request).
c_hpa() {
    q "$1" 'obj("HorizontalPodAutoscaler"; "salmap-worker") as $h
        | $h.apiVersion == "autoscaling/v2"
        and $h.spec.scaleTargetRef == {apiVersion: "apps/v1", kind: "Deployment", name: "salmap-worker"}
        and ([obj("Deployment"; "salmap-worker")] | length == 1)
        and ($h.spec.metrics | any(.type == "Resource" and .resource.name == "cpu"))
        and ($h.spec.minReplicas <= $h.spec.maxReplicas)
        and (pod("Deployment"; "salmap-worker").spec.containers | all(.resources.requests.cpu != null))'
}
# A worker requests at least the peak memory measured (docs/DEPLOY.md,
# "Kubernetes": VmHWM in kB), and no request exceeds its limit.
c_resources() {
    local peak
    peak=$(grep -oE "the worker's peak RSS: VmHWM [0-9,]+ kB" docs/DEPLOY.md | tr -dc 0-9)
    [ -n "$peak" ] &&
    q "$1" "pod(\"Deployment\"; \"salmap-worker\").spec.containers[0].resources as \$r
        | (\$r.requests.memory | mib) * 1024 >= $peak
        and (\$r.requests.memory | mib) <= (\$r.limits.memory | mib)
        and (\$r.requests.cpu | cores) <= (\$r.limits.cpu | cores)
        and (\$r.requests.cpu | cores) >= 1"
}
CHECKS="objects statefulset selectors ports probes volumes configmaps secrets
        paths image addresses threads hpa resources"

render deploy/k8s "$tmp/objects" && ok || bad "rendering deploy/k8s: $(cat "$tmp/objects.err")"
for c in $CHECKS; do check "$c" "c_$c" "$tmp/objects"; done

# --- each check fails on a broken copy ---------------------------------------
# broken CHECK FILE SED: CHECK fails on a copy of deploy/k8s whose FILE is
# edited by SED (the edit must change the file).
n=0
broken() {
    local c=$1 file=$2 expr=$3 d
    n=$((n + 1)); d=$tmp/broken$n
    cp -r deploy/k8s "$d"
    sed -i "$expr" "$d/$file"
    if cmp -s "deploy/k8s/$file" "$d/$file"; then bad "broken copy $n ($c): '$expr' changes nothing"; return; fi
    if ! render "$d" "$d.objects"; then
        check "broken copy $n: $file ($expr) does not render" test "$c" = render
        return
    fi
    check "$c catches $file: $expr" test "$("c_$c" "$d.objects" 2>/dev/null; echo $?)" != 0
}
broken render       kustomization.yaml 's/- worker.yaml/- workers.yaml/'
broken objects      kustomization.yaml '/- worker.yaml/d'
broken statefulset  broker.yaml 's/replicas: 1/replicas: 2/'
broken selectors    broker.yaml '/^spec:/,/^---/{s/^    app.kubernetes.io\/component: broker$/    app.kubernetes.io\/component: worker/}'
broken selectors    worker.yaml '/matchLabels:/,/component/{s/component: worker/component: workers/}'
broken ports        broker.yaml 's/containerPort: 5556/containerPort: 5557/'
broken ports        config.yaml 's/worker_endpoint: "tcp:\/\/\*:5556"/worker_endpoint: "tcp:\/\/*:5557"/'
broken ports        broker.yaml 's/targetPort: clients/targetPort: client/'
broken probes       broker.yaml '/livenessProbe/,/port:/{s/port: workers/port: worker/}'
broken volumes      worker.yaml 's/^        - name: curve$/        - name: keys/'
broken volumes      broker.yaml 's/^        name: state$/        name: data/'
broken configmaps   worker.yaml 's/key: worker.yaml/key: workers.yaml/'
broken configmaps   job-mnist.yaml 's/^            name: salmap-job-mnist$/            name: salmap-job/'
broken secrets      worker.yaml 's/key: worker.key/key: worker.secret/'
broken secrets      curve-secret.sh 's/ --from-file="$dir\/client.pub"//'
broken secrets      job-mnist.yaml 's/secretName: salmap-curve/secretName: salmap-keys/'
broken paths        config.yaml 's/broker.key$/broker.secret/'
broken paths        config.yaml 's/^    state_dir: .*/    state_dir: \/tmp\/state/'
broken paths        job-mnist.yaml 's/salmap submit \/etc\/salmap\/jobs\/mnist.yaml/salmap submit \/etc\/salmap\/jobs\/mnst.yaml/'
broken paths        job-mnist.yaml 's/^    out: .*/    out: \/out\/mnist-all/'
broken paths        job-mnist.yaml 's/^    model: .*/    model: \/opt\/salmap\/models\/nope.onnx/'
broken paths        broker.yaml 's/mountPath: \/etc\/salmap-allow/mountPath: \/etc\/salmap-allowed/'
broken image        job-mnist.yaml 's/image: salmap:latest/image: salmap:dev/'
broken image        kustomization.yaml 's/newTag: latest/newTag: dev/'
broken image        worker.yaml 's/runAsUser: 10001/runAsUser: 10002/'
broken addresses    worker.yaml 's/"tcp:\/\/salmap-broker:5556"/"tcp:\/\/salmap-broker:5555"/'
broken addresses    config.yaml 's/broker: "tcp:\/\/salmap-broker:5556"/broker: "tcp:\/\/broker:5556"/'
broken addresses    job-mnist.yaml 's/value: tcp:\/\/salmap-broker:5555/value: tcp:\/\/salmap-broker:5556/'
broken threads      worker.yaml 's/containerName: worker/containerName: wrk/'
broken hpa          hpa.yaml 's/name: salmap-worker$/name: salmap-workers/'
broken hpa          hpa.yaml 's/name: cpu/name: memory/'
broken resources    worker.yaml '0,/memory: 512Mi/s//memory: 256Mi/'

# --- the manifests' configs, Secret and job file run --------------------------
# Each pod's files (ConfigMap and Secret items at their mount paths) are
# written under $root, the pods' absolute paths mapped there, and the
# broker, a worker and the Job's client run them on loopback.
root=$tmp/root
J=$tmp/objects
materialise() { # KIND NAME: writes the pod's ConfigMap and Secret files under $root
    local path kind name key
    while IFS=$'\t' read -r path kind name key; do
        mkdir -p "$root$(dirname "$path")"
        if [ "$kind" = Secret ]; then
            qr "$J" "obj(\"Secret\"; \"$name\").data[\"$key\"]" | base64 -d >"$root$path"
        else
            qr "$J" "obj(\"ConfigMap\"; \"$name\").data[\"$key\"]" >"$root$path"
        fi
    done < <(qr "$J" "mounts(\"$1\"; \"$2\") | @tsv")
}
# The pods' absolute paths, under $root (the data and the model: this checkout's).
maproot() { # (a path follows a key, or a list's dash)
    sed -E -e "s#((:|- ) *\"?)/var/lib/salmap/data/#\1$PWD/data/#" \
           -e "s#((:|- ) *\"?)/opt/salmap/#\1$PWD/#" \
           -e "s#((:|- ) *\"?)/(etc|var)/#\1$root/\3/#" "$1"
}
materialise StatefulSet salmap-broker
materialise Deployment salmap-worker
materialise Job salmap-submit-mnist
maproot "$root/etc/salmap/broker.yaml" >"$tmp/broker.yaml"
maproot "$root/etc/salmap/worker.yaml" >"$tmp/worker.yaml"
check "the broker's config is mapped (state, key, allow folder, output root; data: this checkout's)" \
    test "$(grep -c "$root/" "$tmp/broker.yaml")" = 4 -a "$(grep -c "^ *- $PWD/data/$" "$tmp/broker.yaml")" = 1
check "the broker admits the worker's and the client's public keys" \
    test "$(cat "$root/etc/salmap-allow/worker.pub" "$root/etc/salmap-allow/client.pub")" = \
         "$(cat "$tmp/keys/worker.pub" "$tmp/keys/client.pub")"

# The configs load: the daemons refuse a bad one at once (exit 2, naming
# the key), as a broken copy shows.
sed 's/^heartbeat_liveness:/heartbeat_livenes:/' "$tmp/broker.yaml" >"$tmp/broker-bad.yaml"
expect 2 "heartbeat_livenes" -- "$BROKER" --config "$tmp/broker-bad.yaml" --client tcp://127.0.0.1:1 --workers tcp://127.0.0.1:2
sed 's/^capacity: .*/capacity: 0/' "$tmp/worker.yaml" >"$tmp/worker-bad.yaml"
expect 2 "capacity" -- "$WORKER" --config "$tmp/worker-bad.yaml"

if start_broker "$tmp/broker.yaml.log" "" --config "$tmp/broker.yaml"; then
    ok
    # What the probes do: a bare TCP connection to each port, closed at once.
    for p in ${CLIENT##*:} ${WORKERS##*:}; do
        check "a TCP probe connects to port $p" bash -c "exec 3<>/dev/tcp/127.0.0.1/$p"
    done
    # The Deployment's command line, the broker's address mapped to loopback.
    "$WORKER" --config "$tmp/worker.yaml" --broker "$WORKERS" --threads 1 --name k8s-w \
        >"$tmp/worker.log" 2>&1 &
    pids+=("$!")
    # The Job's job file, on fewer digits and methods.
    maproot "$root/etc/salmap/jobs/mnist.yaml" |
        sed -e 's/^limit: .*/limit: 3/' -e '/^methods:/,/]/c\methods: [sal, gradcam]' -e '/^params:/,$d' >"$tmp/job.yaml"
    out=$(sed -n 's/^out: *//p' "$tmp/job.yaml")
    check "the job's output goes to the broker's volume" grep -q "^$root/var/lib/salmap/" <<<"$out"
    curve=$(qr "$J" 'pod("Job"; "salmap-submit-mnist").spec.containers[0].env[] | select(.name == "CURVE") | .value' |
            sed "s# /# $root/#g")
    # shellcheck disable=SC2086 # CURVE is words, as in the Job's shell
    id=$("$SALMAP" submit "$tmp/job.yaml" --broker "$CLIENT" $curve 2>"$tmp/submit.err" | tail -n 1)
    check "the Job's submit is accepted with CURVE${id:-: $(cat "$tmp/submit.err")}" test -n "$id"
    # shellcheck disable=SC2086
    "$SALMAP" wait "$id" --broker "$CLIENT" $curve >"$tmp/wait.log" 2>&1 && ok ||
        bad "wait: $(tail -3 "$tmp/wait.log") / worker: $(tail -3 "$tmp/worker.log")"
    # The ports are secured: the client's key is admitted, a key outside
    # the Secret is not.
    # shellcheck disable=SC2086
    expect 0 "done" -- "$SALMAP" status "$id" --broker "$CLIENT" $curve
    (s=$(realpath "$SALMAP") && cd "$tmp" && "$s" keygen stranger >/dev/null)
    expect 1 "" -- "$SALMAP" status "$id" --broker "$CLIENT" \
        --server-key "$root/etc/salmap-curve/broker.pub" --secret-key "$tmp/stranger.key"
    # The maps are those of salmap explain, embedded.
    sed "s#^out: .*#out: $tmp/embedded#" "$tmp/job.yaml" >"$tmp/embedded.yaml"
    "$SALMAP" explain --job "$tmp/embedded.yaml" >"$tmp/embedded.log" 2>&1 ||
        bad "embedded run: $(tail -3 "$tmp/embedded.log")"
    a=$(map_sums "$tmp/embedded" 2>/dev/null); b=$(map_sums "$out" 2>/dev/null)
    check "6 maps, byte-identical to salmap explain's" \
        test "$(grep -c '\.npy$' <<<"$b")" = 6 -a "$a" = "$b"
else
    bad "the broker did not start on the ConfigMap's config: $(cat "$tmp/broker.yaml.log")"
fi

finish k8s
