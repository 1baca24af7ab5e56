#!/usr/bin/env bash
# The layer map of the C code (docs/ARCHITECTURE.md, "The layer map"): every
# `#include "..."` of the product's .c and .h files (not tests/, bench/),
# resolved as the compiler does (the file's own folder, then -Icore, then
# -I.), gives a folder-to-folder dependency; a folder may include only
# folders on a lower layer. Also: every folder with C files has a layer,
# every include resolves, and no two files of one folder include each other
# in a cycle. Needs bash, grep and awk; runs in a few tens of
# milliseconds. Run from anywhere: `bash tests/integration/layers.sh`.
set -u
cd "$(dirname "$0")/../.." || exit 1

# The layers, lowest first, a line each. Folders on one line may not include
# each other (unless SAME_LAYER says so).
LAYERS='
core/util
schemas
client/lib
core/tensor
core/onnx core/io core/data core/segment core/surrogate
core/ops
core/model
core/config core/metrics core/render
core/train core/explain
core/report
worker
broker gateway
client client/mkdata
examples
'
# schemas and client/lib sit just above core/util: libsalmap-client is
# built from them and core/util's err.c, file.c and clock.c alone.
# gateway, the HTTP API, is a client of the broker over the wire
# (client/lib): beside broker, it includes neither broker/ nor worker/.
# broker sits above worker: embedded.c starts worker threads beside the
# broker thread (salmap explain); no other broker file includes worker/.

# Same-layer includes that are allowed, "FROM TO" a line (none today).
SAME_LAYER='
'
# Known violations, "FILE INCLUDE" a line, each with a comment saying why
# (none today). One that no longer occurs fails, so the list stays true.
KNOWN='
'
# Top folders not searched: tests and benchmarks (they may include
# anything), and what builds, downloads and runs make (large, no code).
SKIP='tests bench build data out state'
# Extra -I folders of a program built apart (the Makefile's rule for it).
EXTRA_INC='examples:client/lib'
# Headers generated into $(BUILD)/gen.
GENERATED='onnx.pb-c.h'

. tests/lib/procs.sh

roots=()
for d in */; do
    d=${d%/}
    case " $SKIP " in *" $d "*) continue ;; esac
    roots+=("$d")
done
shopt -s globstar nullglob
files=()
for d in "${roots[@]}"; do files+=("$d"/**/*.[ch]); done
[ ${#files[@]} -gt 0 ] || { echo "layers: no C files found under ${roots[*]}" >&2; exit 1; }

# awk prints "ok WHAT" or "bad MESSAGE" a line.
report=$(
    { printf '%s\n' "${files[@]}"; echo '--'
      grep -Hn -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "${files[@]}"; } |
    awk -v layers="$LAYERS" -v same="$SAME_LAYER" -v known="$KNOWN" \
        -v extra="$EXTRA_INC" -v generated="$GENERATED" '
    function dir(p) { return p ~ /\// ? substr(p, 1, match(p, /\/[^\/]*$/) - 1) : "." }
    function norm(p,   n, i, k, part, out) {   # folds "./" and "x/.."
        n = split(p, part, "/"); k = 0
        for (i = 1; i <= n; i++) {
            if (part[i] == "." || part[i] == "") continue
            if (part[i] == ".." && k > 0 && out[k] != "..") { k--; continue }
            out[++k] = part[i]
        }
        p = ""
        for (i = 1; i <= k; i++) p = p (i > 1 ? "/" : "") out[i]
        return p
    }
    function resolve(f, inc,   d, c, n, i, x) {
        d = dir(f)
        if ((c = norm(d "/" inc)) in isfile) return c
        if ((c = norm("core/" inc)) in isfile) return c
        if ((c = norm(inc)) in isfile) return c
        n = split(extra, x, " ")
        for (i = 1; i <= n; i++)
            if (substr(x[i], 1, index(x[i], ":") - 1) == d &&
                (c = norm(substr(x[i], index(x[i], ":") + 1) "/" inc)) in isfile) return c
        return ""
    }
    # Depth-first search over the includes between files of a folder; a
    # file met again while still on the stack closes a cycle.
    function visit(f,   k, t) {
        color[f] = 1; stack[++depth] = f
        for (k = 1; k <= nsucc[f]; k++) {
            t = succ[f, k]
            if (color[t] == 1) { cycle(t); continue }
            if (color[t] == 0) visit(t)
        }
        color[f] = 2; depth--
    }
    function cycle(t,   i, s, m) {
        for (i = depth; i > 0 && stack[i] != t; i--) ;
        s = stack[i]
        for (i++; i <= depth; i++) s = s " -> " stack[i]
        m = s " -> " t
        if (!(m in seen)) { seen[m] = 1; print "bad include cycle in " dir(t) "/: " m; cyc[dir(t)] = 1 }
    }
    BEGIN {
        n = split(layers, line, "\n"); L = 0
        for (i = 1; i <= n; i++) {
            if (split(line[i], w, " ") == 0) continue
            L++
            for (j in w) {
                if (w[j] in layer) print "bad LAYERS names " w[j] " twice"
                layer[w[j]] = L; declared[w[j]] = 1
            }
        }
        n = split(same, line, "\n")
        for (i = 1; i <= n; i++) if (split(line[i], w, " ") == 2) allow[w[1] " " w[2]] = 1
        n = split(known, line, "\n")
        for (i = 1; i <= n; i++) if (split(line[i], w, " ") == 2) { exc[w[1] " " w[2]] = 1 }
        n = split(generated, w, " ")
        for (i = 1; i <= n; i++) gen[w[i]] = 1
        phase = 1
    }
    phase == 1 && $0 == "--" { phase = 2; next }
    phase == 1 { isfile[$0] = 1; folder[dir($0)] = 1; next }
    {
        f = $0; sub(/:.*/, "", f)
        rest = substr($0, length(f) + 2); ln = rest; sub(/:.*/, "", ln)
        inc = rest; sub(/^[^"]*"/, "", inc); sub(/".*/, "", inc)
        from = dir(f)
        t = resolve(f, inc)
        if (t == "") {
            if (!(inc in gen)) { print "bad " f ":" ln ": #include \"" inc "\" names no file of the tree"; badf[from] = 1 }
            next
        }
        to = dir(t)
        if (to == from) { if (!((f, t) in edge)) { edge[f, t] = 1; succ[f, ++nsucc[f]] = t }; next }
        key = f " " inc
        if (!(from in layer) || !(to in layer)) next   # reported below
        fine = layer[to] < layer[from]
        if (layer[to] == layer[from] && (from " " to) in allow) { fine = 1; allowed[from " " to] = 1 }
        if (key in exc) {
            used[key] = 1
            if (fine) print "bad " f ":" ln ": #include \"" inc "\" is allowed now: drop it from KNOWN"
            next
        }
        if (fine) next
        print "bad " f ":" ln ": #include \"" inc "\": " from " (layer " layer[from] ") includes " to \
              " (layer " layer[to] (layer[to] == layer[from] ? ", its own" : ", above it") ")"
        badf[from] = 1
    }
    END {
        for (d in folder) if (!(d in layer)) { print "bad folder " d "/ holds C files but has no layer in LAYERS"; badf[d] = 1 }
        for (d in declared) if (!(d in folder)) print "bad LAYERS names " d ", which holds no C file"
        for (k in allow) if (!(k in allowed)) print "bad SAME_LAYER names \"" k "\", which no longer occurs"
        for (k in exc) if (!(k in used)) print "bad KNOWN names \"" k "\", which no longer occurs"
        for (f in isfile) if (!color[f]) visit(f)
        for (d in folder) if (d in layer) {
            if (!(d in badf)) print "ok layers of " d
            if (!(d in cyc)) print "ok no include cycle in " d
        }
    }'
)
while IFS= read -r l; do
    case $l in
        '') ;;
        ok\ *) ok ;;
        bad\ *) bad "${l#bad }" ;;
        *) bad "unexpected line: $l" ;;
    esac
done <<<"$report"

echo "layers: $pass passed, $fail failed"
[ "$fail" = 0 ]
