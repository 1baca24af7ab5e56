#!/usr/bin/env bash
# The figure and the report end to end: a real job (6 MNIST digits, one per
# class 0-5, with sal, grad, lime, anchor and lore), its PNGs when this
# build has `salmap render`, then `salmap figure` and `salmap report`; the
# pages are loaded in Debian's headless Chromium, which must log no console
# message, make no request of its own beyond OUT, show the figure, a
# metrics table per method and the image table (built by the page's
# script), and take a screenshot kept as build/artifacts/report.png.
# The checks are first run on a page that breaks each rule, so that they
# are known to catch what they look for. Every step has a time bound.
source tests/integration/lib/common.sh # BUILD, SALMAP, tmp, ok, bad, finish
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
ART=build/artifacts

for tool in "$CHROMIUM" vips vipsheader; do
    command -v "$tool" >/dev/null || { echo "report.sh: $tool missing (make deps)" >&2; exit 1; }
done

# --- the job -------------------------------------------------------------
ln -s "$PWD/data/mnist/test" "$tmp/mnist"
{ echo "path,label"
  for d in 0 1 2 3 4 5; do echo "mnist/$d/$(ls data/mnist/test/$d | head -1),$d"; done
} >"$tmp/six.csv"
OUT=$tmp/out
timeout 300 "$SALMAP" explain --model models/mnist_cnn.onnx --config models/mnist_cnn.yaml \
    --dataset "$tmp/six.csv" --methods sal,grad,lime,anchor,lore --out "$OUT" \
    >"$tmp/explain.log" 2>&1 && ok || bad "explain: $(tail -3 "$tmp/explain.log")"
rendered=0
if "$SALMAP" render --help >/dev/null 2>&1; then
    timeout 120 "$SALMAP" render "$OUT" >"$tmp/render.log" 2>&1 && ok || bad "render: $(tail -3 "$tmp/render.log")"
    rendered=1
fi
timeout 120 "$SALMAP" figure "$OUT" >"$tmp/figure.log" 2>&1 && ok || bad "figure: $(cat "$tmp/figure.log")"
timeout 120 "$SALMAP" report "$OUT" >"$tmp/report.log" 2>&1 && ok || bad "report: $(cat "$tmp/report.log")"

# one row per class (6) and a column per method and the input (6): cells
# of 4 x 28 pixels (report/figure.h's layout)
w=$(vipsheader -f width "$OUT/figure.png" 2>/dev/null)
h=$(vipsheader -f height "$OUT/figure.png" 2>/dev/null)
[ "$w" = $((16 + 6 * 112 + 5 * 6)) ] && [ "$h" = $((8 + 20 + 6 * (16 + 112 + 6) + 10 + 16 + 8)) ] \
    && ok || bad "figure.png is $w x $h"
[ "$(grep -c '<image ' "$OUT/figure.svg")" = 36 ] && ok || bad "figure.svg: $(grep -c '<image ' "$OUT/figure.svg") images, not 36"
page=$OUT/report/images/mnist/3/$(ls data/mnist/test/3 | head -1 | sed 's/\.png$//').html
[ -f "$OUT/report/index.html" ] && [ -f "$page" ] && ok || bad "report pages missing"

# --- Chromium --------------------------------------------------------------
# load URL [extra flags...]: the DOM after the scripts ran into $tmp/dom,
# Chromium's log into $tmp/log, its network log into $tmp/net.json
load() {
    local url=$1; shift
    rm -rf "$tmp/profile"; mkdir "$tmp/profile"
    timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic \
        --no-first-run --disable-background-networking --disable-component-update \
        --disable-sync --user-data-dir="$tmp/profile" --enable-logging=stderr --v=0 \
        --log-net-log="$tmp/net.json" "$@" "$url" >"$tmp/dom" 2>"$tmp/log"
}
# console messages of the page (errors, CSP refusals, logs): none wanted
console() { grep -h 'CONSOLE' "$tmp/log"; }
# requests a page made (the browser's own carry no file:// isolation key):
# only file:// URLs inside OUT may appear
requests_outside() {
    grep -h '"network_isolation_key":"file://' "$tmp/net.json" | grep -o '"url":"[^"]*"' |
        sed 's/^"url":"//; s/"$//' | grep -v "^file://$1/" || true
}
# every src and href of the DOM: relative (or a fragment, or data:), and
# naming a file that exists inside OUT; page is the file the DOM is of
links_outside() {
    local page=$1 v path
    grep -o -E '(src|href)="[^"]*"' "$tmp/dom" | sed -E 's/^(src|href)="//; s/"$//' |
    while IFS= read -r v; do
        case $v in
            '#'*|data:*) continue ;;
            *:*|//*) echo "absolute: $v"; continue ;;
        esac
        v=${v%%#*}
        path=$(realpath -m "$(dirname "$page")/$(printf '%b' "${v//%/\\x}")")
        case $path in
            "$OUT"/*) [ -e "$path" ] || echo "missing: $v" ;;
            *) echo "outside: $v" ;;
        esac
    done
}

# the checks catch a page that breaks them
mkdir -p "$tmp/bad"
cat >"$tmp/bad/x.html" <<'EOF'
<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png"><a href="../../etc/passwd">x</a>
<script>no_such_function();</script></body></html>
EOF
if load "file://$tmp/bad/x.html" --dump-dom; then
    [ -n "$(console)" ] && ok || bad "the console check misses a script error"
    [ -n "$(requests_outside "$tmp/bad")" ] && ok || bad "the request check misses http://127.0.0.1:9"
    saved=$OUT; OUT=$tmp/bad
    [ -n "$(links_outside "$tmp/bad/x.html")" ] && ok || bad "the link check misses ../../etc/passwd"
    OUT=$saved
else bad "chromium on the bad page: $(tail -3 "$tmp/log")"; fi

# index.html
if load "file://$OUT/report/index.html" --dump-dom; then
    dom=$(cat "$tmp/dom")
    [ -z "$(console)" ] && ok || bad "index.html console: $(console)"
    out=$(requests_outside "$OUT"); [ -z "$out" ] && ok || bad "index.html requested $out"
    out=$(links_outside "$OUT/report/index.html"); [ -z "$out" ] && ok || bad "index.html links: $out"
    grep -q '<img id="figure" src="../figure.png"' <<<"$dom" && ok || bad "no figure in the DOM"
    n=$(grep -o '<table class="metrics" data-method="[a-z]*"' <<<"$dom" | sort -u | wc -l)
    [ "$n" = 5 ] && ok || bad "$n metrics tables, not 5"
    # the image table, filled by the script: 6 rows linking the pages
    n=$(grep -o '<a href="images/mnist/[0-9]/[0-9]_[0-9]*\.html">' <<<"$dom" | wc -l)
    [ "$n" = 6 ] && ok || bad "the image table has $n rows, not 6"
    grep -q 'page 1 of 1, 6 of 6 images' <<<"$dom" && ok || bad "no pager"
else bad "chromium on index.html: $(tail -3 "$tmp/log")"; fi

# the filter, opened from a link: one image of class 3
if load "file://$OUT/report/index.html#filter=mnist/3/" --dump-dom; then
    n=$(grep -o '<a href="images/mnist/[0-9]/[0-9]_[0-9]*\.html">' "$tmp/dom" | wc -l)
    [ "$n" = 1 ] && grep -q '1 of 6 images' "$tmp/dom" && ok || bad "filtered table: $n rows"
else bad "chromium on index.html#filter: $(tail -3 "$tmp/log")"; fi

# an image page
if load "file://$page" --dump-dom; then
    [ -z "$(console)" ] && ok || bad "image page console: $(console)"
    out=$(requests_outside "$OUT"); [ -z "$out" ] && ok || bad "image page requested $out"
    out=$(links_outside "$page"); [ -z "$out" ] && ok || bad "image page links: $out"
    n=$(grep -c '<section class="method"' "$tmp/dom")
    [ "$n" = 5 ] && ok || bad "image page: $n method sections, not 5"
    grep -q '<b>Anchor</b>: superpixels' "$tmp/dom" && ok || bad "image page: no anchor"
    grep -q '<b>Rule</b>: if ' "$tmp/dom" && ok || bad "image page: no lore rule"
    if [ $rendered = 1 ]; then
        grep -q 'class="map" src="../../../../maps/mnist/3/[^"]*/grad.png"' "$tmp/dom" \
            && ok || bad "image page: no grad.png"
    fi
else bad "chromium on the image page: $(tail -3 "$tmp/log")"; fi

# the screenshot: a PNG of the window's size that is not blank
mkdir -p "$ART"
rm -f "$ART/report.png"
if load "file://$OUT/report/index.html" --screenshot="$PWD/$ART/report.png" --window-size=1280,2000 \
   && [ -s "$ART/report.png" ]; then
    [ "$(vipsheader -f width "$ART/report.png")" = 1280 ] && \
        [ "$(vipsheader -f height "$ART/report.png")" = 2000 ] && ok || bad "screenshot size"
    avg=$(vips avg "$ART/report.png"); dev=$(vips deviate "$ART/report.png")
    awk -v a="$avg" -v d="$dev" 'BEGIN { exit !(a < 250 && d > 10) }' && ok \
        || bad "the screenshot looks blank: mean $avg, deviation $dev"
else bad "no screenshot: $(tail -3 "$tmp/log")"; fi

finish report
