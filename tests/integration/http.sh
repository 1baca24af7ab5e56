#!/usr/bin/env bash
# salmap-gateway, the HTTP/JSON API (docs/API.md), against a real broker
# and two workers on loopback (random ports), called with curl: a model
# uploaded by hash, a 6-digit MNIST job polled to done, its maps listed
# and downloaded byte-identical to the broker's files, one image
# explained inline (its map equal to the job's map of the same digit),
# cancel; every bad input a 4xx JSON error while the broker and another
# job go on; bearer tokens and the loopback-only rule; the Python client
# (clients/python) installed with pip; the status page at / in headless
# chromium; an explain without workers timing out; every answer checked
# against schemas/openapi.yaml.
set -u
BUILD=${BUILD:-build}
BROKER=$BUILD/bin/salmap-broker
WORKER=$BUILD/bin/salmap-worker
GATEWAY=$BUILD/bin/salmap-gateway
tmp=$(mktemp -d)
. tests/lib/procs.sh
trap kill_all EXIT

# Starts a gateway on a free loopback port; sets URL. Extra options follow.
start_gateway() { # LOG [OPTIONS...]
    local log=$1; shift
    "$GATEWAY" --broker "$CLIENT" --listen 127.0.0.1:0 "$@" >"$log" 2>&1 &
    GPID=$!
    pids+=("$GPID")
    wait_for "$log" "listening on" 10 || return 1
    URL=$(sed -n 's|.*listening on \(http://[^,]*\),.*|\1|p' "$log")
}

# call METHOD PATH [CURL OPTIONS...]: the status into $code, the body
# into $tmp/body.
# Each answer is also kept for the check against schemas/openapi.yaml.
mkdir -p "$tmp/answers"
call() {
    local m=$1 p=$2 out; shift 2
    out=$(curl -s --path-as-is -o "$tmp/body" -w '%{http_code}\t%{content_type}' -X "$m" "$@" "$URL$p")
    code=${out%%$'\t'*}
    n_answers=$((${n_answers:-0} + 1))
    cp "$tmp/body" "$tmp/answers/$n_answers"
    printf '%s\t%s\t%s\t%s\t%s\n' "$m" "${p%%\?*}" "$code" "${out#*$'\t'}" \
        "$tmp/answers/$n_answers" >>"$tmp/answers.tsv"
}
js() { jq -r "$1" "$tmp/body"; }
# The last answer is the JSON error STATUS CODE with a message.
is_error() { # STATUS CODE WHAT
    [ "$code" = "$1" ] && [ "$(js .error.code)" = "$2" ] && [ -n "$(js .error.message)" ] &&
        ok || bad "$3: expected $1 $2, got $code $(head -c 400 "$tmp/body")"
}
# Polls a job until it ended or the deadline passed; its state in $state.
poll_ended() { # ID SECONDS
    local deadline=$((SECONDS + $2))
    while :; do
        call GET "/v1/jobs/$1"
        state=$(js .state)
        case $state in done|failed|cancelled) return 0 ;; esac
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.1
    done
}
post_json() { call POST "$1" -H 'Content-Type: application/json' --data-binary "$2"; }

start_broker "$tmp/broker.log" "$tmp/state" || { bad "the broker did not start"; finish http; exit 1; }
start_worker w1
start_worker w2
start_gateway "$tmp/gw.log" --out-root "$tmp/out" --dataset-root data/mnist --max-body 4000000 ||
    { bad "the gateway did not start: $(cat "$tmp/gw.log")"; finish http; exit 1; }
GW1=$GPID

# --- a model by hash ---------------------------------------------------------
call POST /v1/models --data-binary @models/mnist_cnn.onnx
H=$(js .hash)
# the hash is BLAKE2b-256 of the bytes (PROTOCOL.md 3.1), computed apart
[ "$code" = 201 ] && [ "$H" = "$(b2sum -l 256 models/mnist_cnn.onnx | cut -d' ' -f1)" ] &&
    [ "$(js .bytes)" = "$(stat -c %s models/mnist_cnn.onnx)" ] && ok || bad "POST /v1/models: $code $(cat "$tmp/body")"

# --- a job: submit, poll, list, maps ------------------------------------------
post_json /v1/jobs "{\"name\": \"digits\", \"model\": \"$H\", \"dataset\": \"data/mnist/test\",
                     \"limit\": 6, \"methods\": [\"sal\", \"grad\"], \"seed\": 1}"
A=$(js .id)
[ "$code" = 201 ] && [ "$(js .maps.total)" = 12 ] && [ "$(js .name)" = digits ] &&
    ok || bad "POST /v1/jobs: $code $(cat "$tmp/body")"
# a second job that the bad requests below must leave alone
post_json /v1/jobs "{\"model\": \"$H\", \"dataset\": \"data/mnist/test/3\", \"limit\": 4,
                     \"methods\": [\"sal\"], \"metrics\": false}"
B=$(js .id)
[ "$code" = 201 ] && ok || bad "POST /v1/jobs (second): $code $(cat "$tmp/body")"

poll_ended "$A" 300 && [ "$state" = done ] && ok || bad "job $A: $state after the deadline"
[ "$(js .maps.done)" = 12 ] && [ "$(js .maps.failed)" = 0 ] && [ "$(js .eta_seconds)" = 0 ] &&
    [ "$(js '.rate > 0')" = true ] && ok || bad "GET /v1/jobs/$A: $(cat "$tmp/body")"
call GET /v1/jobs
[ "$code" = 200 ] && [ "$(js "[.jobs[] | select(.id == \"$A\" or .id == \"$B\")] | length")" = 2 ] &&
    ok || bad "GET /v1/jobs does not list both jobs: $(cat "$tmp/body")"

out=$(ls -d "$tmp"/out/*/ | while read -r d; do grep -q "\"$A\"" "$d/job.json" 2>/dev/null && echo "$d"; done)
[ -d "$out/maps" ] && ok || bad "no output folder of job $A under $tmp/out"
call GET "/v1/jobs/$A/maps"
# maps, records, their PNGs and each input's PNG: 6 images x (2 methods x
# (.npy, .json, .png, .overlay.png)) + 6 inputs (the .row files are the
# broker's own: index.csv is made of them)
(cd "$out/maps" && find . -type f ! -name '*.row' | sed 's|^\./||' | sort) >"$tmp/disk.txt"
js '.files[].path' | sort >"$tmp/listed.txt"
[ "$code" = 200 ] && [ "$(wc -l <"$tmp/listed.txt")" = 54 ] && cmp -s "$tmp/disk.txt" "$tmp/listed.txt" &&
    ok || bad "GET /v1/jobs/$A/maps lists other files than the broker's: $(diff "$tmp/disk.txt" "$tmp/listed.txt")"
# every file over HTTP is the broker's file, byte for byte, each fetched alone
n=0
while read -r f; do
    call GET "/v1/jobs/$A/maps/$f"
    [ "$code" = 200 ] && cmp -s "$tmp/body" "$out/maps/$f" && n=$((n + 1)) || bad "GET .../maps/$f: $code, differs from the broker's"
done <"$tmp/disk.txt"
[ "$n" = 54 ] && ok || bad "$n of 54 files identical"
# a PNG as a browser gets it: its type, and an image libvips decodes
curl -s -o "$tmp/map.png" -w '%{content_type}' "$URL/v1/jobs/$A/maps/$(grep -m1 'sal.png$' "$tmp/disk.txt")" >"$tmp/type"
[ "$(cat "$tmp/type")" = image/png ] && [ "$(vipsheader -f width "$tmp/map.png")" = 224 ] &&
    ok || bad "a map's PNG over HTTP: type '$(cat "$tmp/type")'"
call GET "/v1/jobs/$A/index.csv"
[ "$code" = 200 ] && cmp -s "$tmp/body" "$out/index.csv" && ok || bad "index.csv differs: $code"
# the whole output as one tar stream: the same files, byte for byte
call GET "/v1/jobs/$A/output.tar"
mkdir -p "$tmp/untar"
[ "$code" = 200 ] && tar -xf "$tmp/body" -C "$tmp/untar" && ok || bad "output.tar: $code, does not unpack"
(cd "$tmp/untar" && find . -type f | sort) >"$tmp/tar.txt"
(cd "$out" && { echo ./index.csv; find ./maps -type f ! -name '*.row'; } | sort) >"$tmp/want.txt"
cmp -s "$tmp/tar.txt" "$tmp/want.txt" && ok || bad "output.tar holds other files: $(diff "$tmp/want.txt" "$tmp/tar.txt")"
n=0
while read -r f; do cmp -s "$tmp/untar/$f" "$out/$f" && n=$((n + 1)); done <"$tmp/want.txt"
[ "$n" = 55 ] && ok || bad "output.tar: $n of 55 files identical"
call GET /v1/jobs/jnosuchjob/output.tar
is_error 404 unknown_job "output.tar of an unknown job"
# a path over ustar's 100-byte name: split into prefix and name
long=long/$(printf 'd%.0s' $(seq 120))/7
post_json /v1/jobs "{\"model\": \"$H\", \"images\": [{\"id\": \"$long\", \"data\": \"$(base64 -w0 data/mnist/test/7/$(ls data/mnist/test/7 | head -1))\"}],
                     \"methods\": [\"sal\"], \"metrics\": false}"
L=$(js .id)
poll_ended "$L" 120 && [ "$state" = done ] && ok || bad "job $L (a long image id): $state"
call GET "/v1/jobs/$L/maps/$long/sal.npy"
cp "$tmp/body" "$tmp/long.npy"
call GET "/v1/jobs/$L/output.tar"
mkdir -p "$tmp/untar2"
tar -xf "$tmp/body" -C "$tmp/untar2" && cmp -s "$tmp/untar2/maps/$long/sal.npy" "$tmp/long.npy" &&
    ok || bad "output.tar with a ${#long}-byte image id: $(tar -tf "$tmp/body" 2>&1 | head -3)"

# --- explain one image inline ---------------------------------------------------
folders=$(ls "$tmp/out" | wc -l)
img=data/mnist/test/0/0_0004.png
call POST "/v1/explain?model=$H&methods=sal,grad" -H 'Content-Type: image/png' --data-binary @$img
[ "$code" = 200 ] && [ "$(js .state)" = done ] && ok || bad "POST /v1/explain (PNG): $code $(head -c 400 "$tmp/body")"
# the same digit's map as in the job, and its predicted class
js .maps.sal | base64 -d >"$tmp/sal.npy"
js .maps.grad | base64 -d >"$tmp/grad.npy"
cmp -s "$tmp/sal.npy" "$out/maps/0/0_0004/sal.npy" && cmp -s "$tmp/grad.npy" "$out/maps/0/0_0004/grad.npy" &&
    ok || bad "the inline explanation's maps differ from the job's of $img"
[ "$(js .index_csv | awk -F, 'NR == 2 { print $3 }')" = "$(awk -F, '$1 == "0/0_0004" && $6 == "sal" { print $3 }' "$out/index.csv")" ] &&
    ok || bad "inline explain: another predicted class than the job's"
post_json /v1/explain "{\"model\": \"$H\", \"methods\": [\"sal\"], \"image\": \"$(base64 -w0 $img)\"}"
[ "$code" = 200 ] && [ "$(js .maps.sal)" = "$(base64 -w0 "$tmp/sal.npy")" ] && ok ||
    bad "POST /v1/explain (JSON): $code $(head -c 400 "$tmp/body")"
# answered, an inline explanation's job and folder are gone
J=$(js .job)
call GET "/v1/jobs/$J"
is_error 404 unknown_job "the inline explanation's job after its answer"
[ "$(ls "$tmp/out" | wc -l)" = "$folders" ] && ok || bad "inline explanations left folders: $(ls "$tmp/out")"

# --- an image no worker can read: 422, and the broker's faults name its job ----
printf 'not an image' >"$tmp/bad.png"
call POST "/v1/explain?model=$H&methods=sal" -H 'Content-Type: image/png' --data-binary @"$tmp/bad.png"
is_error 422 explain_failed "an inline image that does not decode"
X=$(js .error.message | sed -n 's/^job \([^:]*\):.*/\1/p')
call GET /v1/workers
[ "$code" = 200 ] && [ "$(js '[.workers[].name] | sort | join(",")')" = w1,w2 ] &&
    [ "$(js '[.workers[] | select(.heard_seconds < 10 and .capacity >= 1)] | length')" = 2 ] &&
    [ -n "$X" ] && [ "$(js "[.faults[] | select(.job == \"$X\")] | length")" -ge 1 ] &&
    ok || bad "GET /v1/workers: $code, no w1 and w2 or no fault of job '$X': $(head -c 600 "$tmp/body")"

# --- cancel -------------------------------------------------------------------------
post_json /v1/jobs "{\"model\": \"$H\", \"dataset\": \"data/mnist/test\", \"limit\": 5000, \"methods\": [\"sal\"]}"
C=$(js .id)
call DELETE "/v1/jobs/$C"
is_error 409 job_running "delete of a running job"
call POST "/v1/jobs/$C/cancel"
[ "$code" = 200 ] && [ "$(js .state)" = cancelled ] && ok || bad "cancel: $code $(cat "$tmp/body")"

# --- delete: an ended job forgotten and its files removed, a user's kept ------
deadline=$((SECONDS + 60))
while call DELETE "/v1/jobs/$C" && [ "$code" = 503 ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
[ "$code" = 200 ] && [ "$(js .deleted)" = true ] && ok || bad "delete of a cancelled job: $code $(cat "$tmp/body")"
call GET "/v1/jobs/$C"
is_error 404 unknown_job "a deleted job"
post_json /v1/jobs "{\"model\": \"$H\", \"dataset\": \"data/mnist/test/7\", \"limit\": 3, \"methods\": [\"sal\", \"grad\"]}"
E=$(js .id)
poll_ended "$E" 120 && [ "$state" = done ] && ok || bad "job $E: $state"
eout=$(grep -l "\"$E\"" "$tmp"/out/*/job.json | xargs dirname)
echo mine >"$eout/notes.txt"
[ "$(find "$eout/maps" -name '*.png' | wc -l)" -gt 0 ] && ok || bad "job $E drew no PNGs: $(ls -R "$eout")"
call DELETE "/v1/jobs/$E"
[ "$code" = 200 ] && [ "$(cd "$eout" && find . | sort | tr '\n' ' ')" = ". ./notes.txt " ] &&
    ok || bad "delete of job $E: $code, left $(cd "$eout" && find . | tr '\n' ' ')"
call GET /v1/jobs
[ "$(js "[.jobs[] | select(.id == \"$E\" or .id == \"$C\")] | length")" = 0 ] && ok || bad "deleted jobs still listed"

# --- bad input: each a 4xx JSON error ----------------------------------------------
post_json /v1/jobs '{"model": "'"$H"'", "methods": ["sal"'
is_error 400 malformed_json "malformed JSON"
post_json /v1/jobs '{"model": "'"$H"'", "model": "'"$H"'"}'
is_error 400 malformed_json "a key twice"
post_json /v1/jobs "{\"model\": \"$H\", \"dataset\": \"data/mnist/test\", \"methods\": [\"salt\"]}"
is_error 400 rejected "unknown method"
grep -q "unknown method 'salt'" "$tmp/body" && ok || bad "unknown method: $(cat "$tmp/body")"
post_json /v1/explain "{\"model\": \"$H\", \"methods\": [\"salt\"], \"image\": \"$(base64 -w0 $img)\"}"
is_error 400 rejected "explain: unknown method"
head -c 4096 /dev/urandom >"$tmp/random.onnx"
call POST /v1/models --data-binary @"$tmp/random.onnx"
R=$(js .hash)
[ "$code" = 201 ] && ok || bad "POST /v1/models (random bytes): $code"
post_json /v1/jobs "{\"model\": \"$R\", \"dataset\": \"data/mnist/test\", \"methods\": [\"sal\"]}"
is_error 400 rejected "a model that does not load"
grep -q "not an ONNX model" "$tmp/body" && ok || bad "random model: $(cat "$tmp/body")"
post_json /v1/jobs "{\"model\": \"$(printf '%064d' 0)\", \"dataset\": \"data/mnist/test\", \"methods\": [\"sal\"]}"
is_error 400 unknown_model "a model never uploaded"
post_json /v1/jobs "{\"model\": \"$H\", \"dataset\": \"data/mnist/test\", \"methods\": [\"sal\"], \"out\": \"/tmp/x\"}"
is_error 400 invalid_job "out given"
post_json /v1/jobs "{\"model\": \"$H\", \"dataset\": \"/etc\", \"methods\": [\"sal\"]}"
is_error 400 invalid_job "a dataset outside the served folders"
post_json /v1/jobs "{\"model\": \"$H\", \"dataset\": \"data/mnist/../../..\", \"methods\": [\"sal\"]}"
is_error 400 invalid_job "a dataset with .."
post_json /v1/jobs "{\"model\": \"$H\", \"images\": [{\"id\": \"../x\", \"data\": \"$(base64 -w0 $img)\"}], \"methods\": [\"sal\"]}"
is_error 400 invalid_job "an image id with .."
head -c 5000000 /dev/zero >"$tmp/big"
call POST /v1/models --data-binary @"$tmp/big"
is_error 413 body_too_large "a body over --max-body"
call POST /v1/models -H 'Transfer-Encoding: chunked' --data-binary @"$tmp/big"
is_error 413 body_too_large "a chunked body over --max-body"
call GET "/v1/jobs/$A/maps/../../index.csv"
is_error 400 bad_path "../ in the image id"
call GET "/v1/jobs/$A/maps/0/0_0004/..%2F..%2F..%2Fjob.json"
is_error 400 bad_path "../ in the method, percent-encoded"
call GET "/v1/jobs/$A/maps/0/0_0004/lime.npy"
is_error 404 no_such_file "a map the job lacks"
call GET /v1/jobs/jnosuchjob
is_error 404 unknown_job "an unknown job"
call GET "/v1/jobs/a%2Fb"
is_error 404 not_found "a job id that is not one"
call DELETE /v1/jobs
is_error 405 method_not_allowed "DELETE"
call GET /v2/jobs
is_error 404 not_found "an unknown route"

# the broker is up, and the second job finished untouched
kill -0 "$BPID" 2>/dev/null && ok || bad "the broker died"
poll_ended "$B" 120 && [ "$state" = done ] && [ "$(js .maps.done)" = 4 ] && [ "$(js .maps.failed)" = 0 ] &&
    ok || bad "job $B after the bad requests: $(cat "$tmp/body")"

# --- bearer tokens and the loopback-only rule ----------------------------------------
printf '# the gateway tokens\n\nalpha-0123456789abcdef\nbravo-0123456789abcdef\n' >"$tmp/tokens"
open_url=$URL
start_gateway "$tmp/gw2.log" --out-root "$tmp/out" --token-file "$tmp/tokens" ||
    bad "the gateway with tokens did not start: $(cat "$tmp/gw2.log")"
call GET /v1/jobs
is_error 401 unauthorized "no token"
call GET /v1/jobs -H 'Authorization: Bearer alpha-0123456789abcdeX'
is_error 401 unauthorized "a wrong token"
call GET /v1/jobs -H 'Authorization: Basic YWxwaGE6YWxwaGE='
is_error 401 unauthorized "not a bearer token"
call POST /v1/models --data-binary @"$tmp/big"
is_error 401 unauthorized "a large body without a token"
curl -s -D "$tmp/headers" -o /dev/null "$URL/v1/jobs"
grep -qi '^WWW-Authenticate: Bearer' "$tmp/headers" && ok || bad "401 without WWW-Authenticate: $(cat "$tmp/headers")"
tok_url=$URL
call GET /v1/jobs -H 'Authorization: Bearer bravo-0123456789abcdef'
[ "$code" = 200 ] && [ "$(js "[.jobs[] | select(.id == \"$A\")] | length")" = 1 ] &&
    ok || bad "the second token: $code $(cat "$tmp/body")"
URL=$open_url
expect 1 "not a loopback address, and no --token-file" -- "$GATEWAY" --broker "$CLIENT" --listen 0.0.0.0:0
printf 'short\n' >"$tmp/short"
expect 2 "line 1: a token is 16 or more characters" -- "$GATEWAY" --token-file "$tmp/short"
printf '# none\n\n' >"$tmp/none"
expect 2 "no token in the file" -- "$GATEWAY" --token-file "$tmp/none"
expect 2 "--max-body '12x'" -- "$GATEWAY" --max-body 12x
expect 2 "--listen 'nowhere'" -- "$GATEWAY" --listen nowhere

# --- the Python client (clients/python), pip-installed in a venv over
# Debian's python3 and numpy, no network ---------------------------------------
PY=/usr/bin/python3
if $PY -c 'import numpy, venv' 2>/dev/null; then
    # built from a copy: setuptools writes build/ and egg-info beside the sources
    cp -r clients/python "$tmp/pysrc" && $PY -m venv --system-site-packages "$tmp/venv" &&
        "$tmp/venv/bin/pip" install -q --no-index --no-build-isolation "$tmp/pysrc" >"$tmp/pip.log" 2>&1 &&
        ok || bad "pip install clients/python: $(cat "$tmp/pip.log")"
    "$tmp/venv/bin/python" - "$URL" "$tok_url" "$tmp/out" "$out" >"$tmp/py.log" 2>&1 <<'PYEOF'
import glob, io, json, sys
import numpy as np
import salmap
from salmap import Client, SalmapError
assert "/venv/" in salmap.__file__, salmap.__file__  # the installed package
url, tok_url, out_root, out_a = sys.argv[1:5]
c = Client(url)
# a job by the model's file (uploaded once, by hash), followed to the end
job = c.submit({"model": "models/mnist_cnn.onnx", "config": "models/mnist_cnn.yaml",
                "dataset": "data/mnist/test/1", "limit": 3, "methods": ["sal", "grad"],
                "metrics": False})
st = job.wait(progress=True, poll=0.1, timeout=120)
assert st["state"] == "done" and st["maps"]["done"] == 6, st
assert any(j["id"] == job.id for j in c.jobs())
assert sorted(w["name"] for w in c.workers()["workers"]) == ["w1", "w2"]
# its maps as arrays, equal to the broker's files read by numpy
folder = [f[:-8] for f in glob.glob(out_root + "/*/job.json") if job.id in open(f).read()]
assert len(folder) == 1, folder
maps = job.maps()
assert len(maps) == 6, sorted(maps)
for (image, method), a in maps.items():
    want = np.load("%smaps/%s/%s.npy" % (folder[0], image, method))
    assert a.dtype == np.float32 and a.shape == want.shape and np.array_equal(a, want), (image, method)
assert job.index().startswith("id,label,predicted")
# one image inline: the same map as job A's of that digit
got = c.explain("data/mnist/test/0/0_0004.png", methods=["sal"], model="models/mnist_cnn.onnx")
assert np.array_equal(got["sal"], np.load(out_a + "/maps/0/0_0004/sal.npy"))
# refusals raise SalmapError with the gateway's status and code
for doc, status, code in [({"model": "models/mnist_cnn.onnx", "dataset": "data/mnist/test",
                            "methods": ["salt"]}, 400, "rejected"),
                          ({"model": "models/mnist_cnn.onnx", "dataset": "/etc",
                            "methods": ["sal"]}, 400, "invalid_job")]:
    try:
        c.submit(doc)
        raise AssertionError("accepted: %r" % doc)
    except SalmapError as e:
        assert (e.status, e.code) == (status, code) and e.message, e
try:
    Client(tok_url).jobs()
    raise AssertionError("no token accepted")
except SalmapError as e:
    assert (e.status, e.code) == (401, "unauthorized"), e
assert any(j["id"] == job.id for j in Client(tok_url, token="alpha-0123456789abcdef").jobs())
# cancel
big = c.submit({"model": "models/mnist_cnn.onnx", "dataset": "data/mnist/test", "limit": 5000,
                "methods": ["sal"]})
assert big.cancel()["state"] == "cancelled"
assert job.delete()["deleted"] is True
try:
    job.status()
    raise AssertionError("a deleted job still answers")
except SalmapError as e:
    assert e.status == 404 and e.code == "unknown_job", e
print("python client: ok")
PYEOF
    grep -q "python client: ok" "$tmp/py.log" && ok || bad "the Python client: $(cat "$tmp/py.log")"
else
    bad "no Debian python3 with numpy ($PY): apt-get install python3-numpy python3-venv"
fi

# --- the status page at /, in headless chromium: a running job's row and
# its progress moving; with tokens, the page reads with the #token= given ---
dom() { # URL: the page's DOM once its script has run
    timeout 60 chromium --headless=new --no-sandbox --disable-gpu --user-data-dir="$tmp/chrome" \
        --virtual-time-budget=2000 --dump-dom "$1" 2>/dev/null
}
done_in() { # DOM ID: the row's maps done
    sed -n "s/.*<tr id=\"job-$2\"[^>]*data-done=\"\([0-9]*\)\".*/\1/p" <<<"$1"
}
if command -v chromium >/dev/null; then
    call GET /
    [ "$code" = 200 ] && grep -q '<title>salmap</title>' "$tmp/body" && ! grep -qE '(src|href)="(https?:)?//' "$tmp/body" &&
        ok || bad "GET /: $code, or an external asset"
    post_json /v1/jobs "{\"model\": \"$H\", \"dataset\": \"data/mnist/test\", \"limit\": 400, \"batch\": 4, \"methods\": [\"sal\"]}"
    P=$(js .id)
    first= moved= busy=
    # tasks of 4 images: maps come a few at a time, also under the sanitizers
    deadline=$((SECONDS + 300))
    while [ $SECONDS -lt $deadline ]; do
        page=$(dom "$URL/")
        d=$(done_in "$page" "$P")
        # the workers' table: one of them at work on job P
        grep -qE "<tr class=\"worker\" data-inflight=\"[1-9][0-9]*\"><td>w[12]</td>.*$P sal" <<<"$page" && busy=1
        [ -z "$first" ] && [ -n "$d" ] && { first=$d; continue; }
        [ -n "$first" ] && [ -n "$d" ] && [ "$d" -gt "$first" ] && { moved=$d; break; }
    done
    [ -n "$first" ] && [ -n "$moved" ] && ok || bad "the page did not show job $P moving (first '$first', then '$moved')"
    [ -n "$busy" ] && ok || bad "the page's workers never showed a task of job $P"
    grep -q "<li class=\"fault\">.*$X: " <<<"$page" && ok || bad "the page's recent errors lack job $X's: $page"
    call POST "/v1/jobs/$P/cancel"
    page=$(dom "$tok_url/")
    grep -q 'cannot read the jobs: unauthorized' <<<"$page" && ok || bad "the page without a token: $page"
    page=$(dom "$tok_url/#token=alpha-0123456789abcdef")
    grep -q "id=\"job-$A\" class=\"done\"" <<<"$page" && ok || bad "the page with a token: $page"
else
    bad "no chromium: apt-get install chromium"
fi

# --- an explain no worker takes: 504 after --explain-timeout, its job cancelled ---
start_broker "$tmp/broker2.log" "$tmp/state2" || bad "the second broker did not start"
start_gateway "$tmp/gw3.log" --out-root "$tmp/out" --explain-timeout 1 ||
    bad "the gateway with --explain-timeout did not start: $(cat "$tmp/gw3.log")"
call POST /v1/models --data-binary @models/mnist_cnn.onnx
call POST "/v1/explain?model=$H&methods=sal" -H 'Content-Type: image/png' --data-binary @$img
is_error 504 explain_timeout "an explain without workers"
T=$(js .error.message | sed -n 's/^job \([^:]*\):.*/\1/p')
# its job was cancelled, then forgotten with its files
call GET /v1/jobs
[ -n "$T" ] && [ "$(js '.jobs | length')" = 0 ] && ! grep -qs "\"$T\"" "$tmp"/out/*/job.json &&
    ok || bad "the timed-out explain's job '$T' stays: $(cat "$tmp/body")"
expect 2 "--explain-timeout 'x'" -- "$GATEWAY" --explain-timeout x

# --- every answer above as schemas/openapi.yaml describes it ---------------------
/usr/bin/python3 tests/integration/openapi_check.py schemas/openapi.yaml "$tmp/answers.tsv" >"$tmp/openapi.log" 2>&1 &&
    ok || bad "answers not as schemas/openapi.yaml says: $(cat "$tmp/openapi.log")"

# SIGTERM stops a gateway cleanly (under SAN=...: no sanitizer report,
# leaks included, after all of the above)
kill -TERM "$GW1"
wait "$GW1"
rc=$?
[ "$rc" = 0 ] && ! grep -qE 'Sanitizer|runtime error' "$tmp/gw.log" && ok ||
    bad "the gateway's exit: $rc, $(cat "$tmp/gw.log")"

finish http
