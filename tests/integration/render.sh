#!/usr/bin/env bash
# salmap render end to end: three MNIST digits explained by six methods,
# then their PNGs (files, sizes and bands read back by vipsheader), a
# second pass that writes nothing, job scales, and the refusals.
. "$(dirname "$0")/lib/common.sh"

# "WxH B" of a PNG, as vipsheader reads it
shape() { vipsheader -f width "$1" | tr -d '\n'; printf x
          vipsheader -f height "$1" | tr -d '\n'; printf ' '
          vipsheader -f bands "$1"; }
has_shape() {
    local got
    got=$(shape "$1" 2>&1)
    [ "$got" = "$2" ] && ok || bad "$1: $got, expected $2"
}

command -v vipsheader >/dev/null || { echo "render.sh: vipsheader (libvips-tools) missing" >&2; exit 1; }
out=$tmp/out
expect 0 "18 maps written" -- "$SALMAP" explain --model models/mnist_cnn.onnx \
    --config models/mnist_cnn.yaml --dataset data/mnist/test --limit 3 \
    --methods sal,grad,lime,anchor,lore,abele --out "$out" --no-png
[ -z "$(find "$out/maps" -name '*.png')" ] && ok || bad "explain --no-png wrote PNGs"

# --- errors -----------------------------------------------------------------
expect 2 "needs the output folder" -- "$SALMAP" render
expect 1 "no such folder" -- "$SALMAP" render "$tmp/none"
expect 1 "no job.json" -- "$SALMAP" render "$tmp"
expect 2 "--scale must be map or job" -- "$SALMAP" render "$out" --scale all
expect 0 "--scale job" -- "$SALMAP" render --help

# --- per-map scales -----------------------------------------------------------
# 3 inputs + 3 x (6 maps + 6 overlays + kept + rule + 2 strips)
expect 0 "3 images, 18 maps: 51 PNGs written, 0 up to date (zoom 8, map scales)" \
    -- "$SALMAP" render "$out"
ids=$(cd "$out/maps" && find . -name sal.row | sed 's|^\./||; s|/sal.row$||' | sort)
[ "$(wc -w <<<"$ids")" = 3 ] && ok || bad "ids: $ids"
for id in $ids; do
    d=$out/maps/$id
    has_shape "$d/input.png" "224x224 1"
    for m in sal grad lime anchor lore abele; do
        has_shape "$d/$m.png" "224x224 3"
        has_shape "$d/$m.overlay.png" "224x224 3"
    done
    has_shape "$d/anchor.kept.png" "224x224 3"
    has_shape "$d/lore.rule.png" "224x224 3"
    # a strip of n tiles of 224 with 2-pixel separators, n = min(N, 10)
    for a in exemplars counter_exemplars; do
        n=$(head -c 128 "$d/abele.$a.npy" | grep -ao "'shape': ([0-9]*" | grep -o '[0-9]*$')
        [ "$n" -gt 10 ] && n=10
        has_shape "$d/abele.$a.png" "$((n * 224 + (n - 1) * 2))x224 1"
    done
done
# no temporary file left anywhere
[ -z "$(find "$out" -name '*.tmp*')" ] && ok || bad "temporary files left"

# --- a second pass writes nothing ---------------------------------------------
expect 0 "0 PNGs written, 51 up to date" -- "$SALMAP" render "$out"

# --- job scales: rewritten, with their legend ---------------------------------
expect 0 "51 PNGs written, 0 up to date (zoom 8, job scales)" -- "$SALMAP" render "$out" --scale job
[ "$(head -1 "$out/scales.csv")" = "method,colormap,min,max" ] && ok || bad "scales.csv header"
[ "$(wc -l <"$out/scales.csv")" = 7 ] && ok || bad "scales.csv rows: $(cat "$out/scales.csv")"
grep -q '^grad,diverging,-' "$out/scales.csv" && ok || bad "grad is signed: $(cat "$out/scales.csv")"
grep -q '^sal,sequential,' "$out/scales.csv" && ok || bad "sal is not: $(cat "$out/scales.csv")"

# --- another zoom ---------------------------------------------------------------
expect 0 "51 PNGs written" -- "$SALMAP" render "$out" --zoom 2
[ ! -e "$out/scales.csv" ] && ok || bad "scales.csv kept with map scales"
has_shape "$out/maps/$(head -1 <<<"$ids")/sal.png" "56x56 3"

finish render.sh
