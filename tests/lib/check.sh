# The pass/fail tally of the test scripts (sourced, not run): ok, bad,
# expect CODE NEEDLE -- COMMAND... (the command exits CODE and its
# stdout+stderr holds NEEDLE; empty: anything) and `finish NAME`, which
# prints the tally and succeeds when nothing failed.
pass=0 fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
expect() {
    local code=$1 needle=$2; shift 3
    local out rc
    out=$("$@" 2>&1); rc=$?
    if [ "$rc" != "$code" ]; then bad "$* exited $rc, expected $code: $out"; return; fi
    if [ -n "$needle" ] && ! grep -qF -- "$needle" <<<"$out"; then
        bad "$*: output lacks '$needle': $out"; return; fi
    ok
}
finish() { echo "$1: $pass passed, $fail failed"; [ "$fail" = 0 ]; }
