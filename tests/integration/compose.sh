#!/usr/bin/env bash
# The Docker deployment, checked without a Docker engine (none runs here):
# Debian's docker-compose validates docker-compose.yml offline; the worker
# service can be scaled; the published ports take CURVE peers only (the
# keys service's command, the compose configs and the client's keys run for
# real on loopback, the containers' paths mapped); the Dockerfile takes its
# Debian packages from the Makefile's DEB_PKGS list (make deps); and the
# job files that the compose client and the examples submit load and run.
source tests/integration/lib/common.sh
source tests/lib/procs.sh # (sourced here: it starts the tally of check.sh anew)
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

# --- docker-compose.yml ------------------------------------------------------
if ! command -v docker-compose >/dev/null 2>&1; then
    bad "docker-compose is not installed (make deps installs it)"
    echo "compose: $pass passed, $fail failed"
    exit 1
fi
compose() { docker-compose -f "${COMPOSE_FILE_UNDER_TEST:-docker-compose.yml}" "$@"; }

out=$(compose config -q 2>&1); rc=$?
check "docker-compose config -q accepts docker-compose.yml${out:+: $out}" \
    test "$rc" = 0 -a -z "$out"
compose config >"$tmp/config.yml" 2>"$tmp/config.err" \
    || bad "docker-compose config: $(cat "$tmp/config.err")"
services=$(compose config --services 2>/dev/null | sort | tr '\n' ' ')
for s in broker worker client gateway; do
    check "service $s exists" grep -qw "$s" <<<"$services"
done

# One service's block of the normalised config (two-space indentation:
# services at 2, their keys at 4).
service() {
    awk -v s="  $1:" '$0 == s { on = 1; next } on && /^  [^ ]/ { on = 0 }
                      /^[^ ]/ { on = 0 } on' "$2"
}
# 0 when the worker service of the config in $1 can be scaled: no fixed
# container name, no host ports.
scalable() {
    local block
    block=$(service worker "$1")
    [ -n "$block" ] && ! grep -q '^    container_name:' <<<"$block" \
        && ! grep -q '^    ports:' <<<"$block"
}
check "worker has no container_name and no host port (--scale works)" \
    scalable "$tmp/config.yml"
# The check itself catches both, on copies of the file that break the rule.
for bad_key in 'container_name: salmap-worker' 'ports: ["7000:7000"]'; do
    sed "/^  worker:/a\\    $bad_key" docker-compose.yml >"$tmp/broken.yml"
    COMPOSE_FILE_UNDER_TEST=$tmp/broken.yml compose config \
        >"$tmp/broken-config.yml" 2>/dev/null
    check "a worker with '$bad_key' is caught" \
        test "$(scalable "$tmp/broken-config.yml"; echo $?)" != 0
done

service broker "$tmp/config.yml" >"$tmp/broker"
service worker "$tmp/config.yml" >"$tmp/worker"
service client "$tmp/config.yml" >"$tmp/client"
check "broker runs salmap-broker --config /etc/salmap/compose/broker.yaml" \
    grep -qzE 'salmap-broker\s+- --config\s+- /etc/salmap/compose/broker.yaml' "$tmp/broker"
check "broker publishes ports 5555 and 5556" \
    grep -qzE 'published: 5555.*published: 5556|published: "5555".*published: "5556"' "$tmp/broker"
check "broker keeps its state and outputs in named volumes" \
    grep -qzE -- '- state:/opt/salmap/state\b.*- out:/out\b' "$tmp/broker"
check "broker mounts data read-only" \
    grep -qE -- '- \S+/data:/opt/salmap/data:ro$' "$tmp/broker"
check "worker runs salmap-worker --broker tcp://broker:5556" \
    grep -qzE 'salmap-worker.*- --broker\s+- tcp://broker:5556' "$tmp/worker"
check "client is one-shot (restart: \"no\") and depends on broker" \
    grep -qzE "depends_on:\s+broker:.*restart: 'no'|depends_on:\s+broker:.*restart: \"no\"" "$tmp/client"
check "client submits then waits" \
    grep -qzE 'salmap submit /etc/salmap/jobs/[a-z-]+\.yaml\s+--broker tcp://broker:5555.*salmap wait' "$tmp/client"
for s in broker worker client; do
    check "$s mounts configs/ at /etc/salmap" \
        grep -qE -- '- \S+/configs:/etc/salmap(:ro)?$' "$tmp/$s"
done
# The gateway: only with --profile http, tokens from a secret (it listens
# beyond loopback), its jobs' folders and datasets where the broker mounts
# them, its port published.
service gateway "$tmp/config.yml" >"$tmp/gateway"
check "gateway runs salmap-gateway against the broker's client port on 0.0.0.0:8080" \
    grep -qzE 'salmap-gateway\s+- --broker\s+- tcp://broker:5555\s+- --listen\s+- 0.0.0.0:8080' "$tmp/gateway"
check "gateway starts only with --profile http" grep -qzE 'profiles:\s+- http\s' "$tmp/gateway"
check "gateway reads its tokens from the secret gateway_tokens, a git-ignored file" \
    sh -c "grep -qzE -- '--token-file\s+- /run/secrets/gateway_tokens\s.*secrets:\s+- source: gateway_tokens' '$tmp/gateway' &&
           grep -qE '^    file: \S+/secrets/gateway.tokens$' '$tmp/config.yml' &&
           git check-ignore -q secrets/gateway.tokens"
check "gateway's out root and dataset root are the broker's /out and data mounts" \
    grep -qzE -- '--out-root\s+- /out/gateway\s+- --dataset-root\s+- /opt/salmap/data\s' "$tmp/gateway"
check "gateway publishes port 8080" grep -qzE 'published: "?8080"?\s+target: 8080' "$tmp/gateway"
check "gateway speaks CURVE to the broker with the client's keys" \
    sh -c "grep -qzE -- '--curve-server-key\s+- /keys/broker.pub\s+- --curve-secret-key\s+- /keys/client.key' '$tmp/gateway' &&
           grep -qE -- '- keys:/keys:ro$' '$tmp/gateway'"
check "the image installs salmap-gateway" grep -qE 'build/bin/salmap-gateway' Dockerfile
check "volumes keys, out and state are declared" \
    grep -qzE '\svolumes:\s+keys: \{\}\s+out: \{\}\s+state: \{\}' "$tmp/config.yml"

# --- CURVE: the published ports take only the keys the keys service makes ---
service keys "$tmp/config.yml" >"$tmp/keys"
check "a one-shot keys service makes the pairs into the keys volume" \
    grep -qzE "salmap keygen broker.*restart: 'no'.*- keys:/keys(:rw)?\s*$|salmap keygen broker.*restart: \"no\".*- keys:/keys(:rw)?\s*$" "$tmp/keys"
check "the broker starts once the keys are made" \
    grep -qzE 'depends_on:\s+keys:\s+condition: service_completed_successfully' "$tmp/broker"
for s in broker worker client; do
    check "$s mounts the keys read-only" grep -qE -- '- keys:/keys:ro$' "$tmp/$s"
done
check "worker runs with /etc/salmap/compose/worker.yaml" \
    grep -qzE 'salmap-worker\s+- --config\s+- /etc/salmap/compose/worker.yaml' "$tmp/worker"
# The keys service's command, the configs and the client's CURVE options
# for real: the containers' paths mapped under $tmp, a broker, a worker
# and the client on loopback.
BROKER=$BUILD/bin/salmap-broker WORKER=$BUILD/bin/salmap-worker
trap kill_all EXIT
field() { python3 -c 'import sys, yaml; c = yaml.safe_load(open(sys.argv[1]))["services"]; print(eval(sys.argv[2]))' "$tmp/config.yml" "$1"; }
mapped() { sed -e "s#/keys#$tmp/ckeys#g" -e "s#/opt/salmap/data#$PWD/data#g" -e "s#/out#$tmp/out#g" "$@"; }
mkdir -p "$tmp/ckeys"
keys_cmd=$(field 'c["keys"]["command"][2]' | mapped)
PATH=$PWD/$BUILD/bin:$PATH sh -c "$keys_cmd" >"$tmp/keys.log" 2>&1 && PATH=$PWD/$BUILD/bin:$PATH sh -c "$keys_cmd" &&
    [ -s "$tmp/ckeys/allow/client.pub" ] && [ -s "$tmp/ckeys/allow/worker.pub" ] && [ ! -e "$tmp/ckeys/allow/broker.pub" ] &&
    ok || bad "the keys service's command: $(cat "$tmp/keys.log")"
mapped configs/compose/broker.yaml | sed "s#^state_dir: .*#state_dir: $tmp/state#" >"$tmp/cbroker.yaml"
mapped configs/compose/worker.yaml >"$tmp/cworker.yaml"
if start_broker "$tmp/cbroker.log" "" --config "$tmp/cbroker.yaml"; then
    ok
    "$WORKER" --config "$tmp/cworker.yaml" --broker "$WORKERS" --name cw --threads 1 >"$tmp/cw.log" 2>&1 &
    pids+=("$!")
    mapped configs/jobs/compose-mnist.yaml | sed -e "s#/opt/salmap/models#$PWD/models#g" \
        -e 's/^limit: .*/limit: 1/' -e '/^methods:/,/]/c\methods: [sal]' -e '/^params:/,$d' >"$tmp/cjob.yaml"
    curve=$(field 'c["client"]["environment"]["CURVE"]' | mapped)
    # shellcheck disable=SC2086 # CURVE is words, as in the client's shell
    id=$("$SALMAP" submit "$tmp/cjob.yaml" --broker "$CLIENT" $curve 2>"$tmp/csubmit.err" | tail -n 1)
    # shellcheck disable=SC2086
    [ -n "$id" ] && "$SALMAP" wait "$id" --broker "$CLIENT" $curve >"$tmp/cwait.log" 2>&1 && ok ||
        bad "the compose client's job with CURVE: $(cat "$tmp/csubmit.err" "$tmp/cwait.log" 2>/dev/null)"
    grep -q "CURVE is off" "$tmp/cbroker.log" && bad "the compose broker ran without CURVE" || ok
else
    bad "the broker did not start on configs/compose/broker.yaml: $(cat "$tmp/cbroker.log")"
fi

# The job the client submits is one of configs/ and writes under /out.
job=$(grep -oE '/etc/salmap/jobs/[a-z-]+\.yaml' "$tmp/client" | head -1)
jobfile=configs/${job#/etc/salmap/}
check "the client's job $job is $jobfile" test -n "$job" -a -f "$jobfile"
check "$jobfile writes under /out" grep -qE '^out: /out/' "$jobfile"

# --- Dockerfile: its packages come from the Makefile -------------------------
deb_pkgs=$(sed -n '/^DEB_PKGS *:=/,/[^\\]$/p' Makefile | tr -d '\\' |
           sed 's/^DEB_PKGS *:=//' | tr -s ' \t\n' ' ')
# 0 when $1 is a package of the list.
listed() { tr ' ' '\n' <<<"$deb_pkgs" | grep -qxF -- "$1"; }
grep -qE '^TEST_DEB_PKGS *:=.* docker-compose( |$)|^TEST_DEB_PKGS *:= *docker-compose( |$)' Makefile &&
    ok || bad "TEST_DEB_PKGS lists docker-compose (this test needs it)"
# The Dockerfile's instructions, continuation lines joined.
sed -e ':a' -e '/\\$/N; s/\\\n//; ta' Dockerfile | grep -v '^\s*#' >"$tmp/docker"
check "Dockerfile leaves the tests' packages out (TEST_DEB_PKGS=)" \
    grep -qE '^RUN make deps .*TEST_DEB_PKGS= ' "$tmp/docker"
check "Dockerfile is FROM debian:bookworm-slim" \
    grep -qE '^FROM debian:bookworm-slim\s*$' "$tmp/docker"
# In this order: the Makefile alone, make deps, the sources, make.
order=$(grep -nE '^(COPY Makefile |RUN make deps|COPY \. |RUN make( |$))' "$tmp/docker" |
        sed -E 's/^[0-9]+:(COPY Makefile|RUN make deps|COPY \.|RUN make).*/\1/' | tr '\n' '/')
check "Dockerfile copies the Makefile, runs make deps, copies the rest, runs make" \
    test "$order" = "COPY Makefile/RUN make deps/COPY ./RUN make/"
# Every apt-get install names make (which runs make deps) or a package of
# the list.
extra=""
while read -r pkg; do
    [ "$pkg" = make ] || listed "$pkg" || extra="$extra $pkg"
done < <(grep -oE 'apt-get install[^&;|]*' "$tmp/docker" |
         sed 's/apt-get install//' | tr ' ' '\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$')
check "Dockerfile installs no Debian package outside DEB_PKGS${extra:+ (it adds:$extra)}" \
    test -z "$extra"
for d in build/ data/ out/ state/; do
    check ".dockerignore leaves out $d" grep -qx "$d" .dockerignore
done
check ".dockerignore keeps models/ (the example job's model)" \
    sh -c '! grep -qE "^/?models" .dockerignore'

# --- the job files load and run ----------------------------------------------
# Each is loaded in full (every method made, every parameter checked, before
# the command line's --methods replaces the list) and run on one image.
# run LOG command...: 0 or its status, its output in LOG (shown on failure).
run() {
    local log=$1; shift
    "$@" >"$log" 2>&1 && return 0
    local rc=$?; cat "$log" >&2; return $rc
}
for f in configs/jobs/mnist-all.yaml configs/jobs/fashion.yaml; do
    check "$f loads and runs sal on one image" \
        run "$tmp/log" "$SALMAP" explain --job "$f" --methods sal --limit 1 \
        --out "$tmp/$(basename "$f" .yaml)"
done
# The compose job's paths are the image's: the same files from here.
check "configs/jobs/compose-mnist.yaml loads (paths from this checkout)" \
    run "$tmp/log" "$SALMAP" explain --job configs/jobs/compose-mnist.yaml \
    --methods sal --limit 1 --model models/mnist_cnn.onnx \
    --config models/mnist_cnn.yaml --dataset data/mnist/test \
    --out "$tmp/compose"
# Every method of mnist-all.yaml on one digit: a map each.
run "$tmp/log" "$SALMAP" explain --job configs/jobs/mnist-all.yaml --limit 1 \
    --out "$tmp/all"
methods=$("$SALMAP" explain --help 2>&1 |
          awk '/^methods:/ { m = 1; next } m && /^  [a-z]/ { print $1 }')
missing=""
for m in $methods; do
    [ -n "$(find "$tmp/all/maps" -name "$m.npy" 2>/dev/null)" ] || missing="$missing $m"
done
check "mnist-all.yaml runs every method of salmap explain --help${missing:+ (no map:$missing)}" \
    test -n "$methods" -a -z "$missing"
# The compose job runs the same methods as mnist-all.yaml.
methods_of() { sed -n '/^methods:/,/]/p' "$1" | tr -d '\n' | sed 's/.*\[//; s/\].*//; s/ //g'; }
check "compose-mnist.yaml runs the methods of mnist-all.yaml" \
    test "$(methods_of configs/jobs/compose-mnist.yaml)" = "$(methods_of configs/jobs/mnist-all.yaml)"

echo "compose: $pass passed, $fail failed"
[ "$fail" = 0 ]
