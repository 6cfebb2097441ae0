# lib.sh - shared helpers of the bash tests (sourced, not run).
#   test_setup NAME   : FRUGAL (the CLI), SHARED (test data or empty), TMP (a scratch
#                       dir removed on exit), pass/fail counters
#   ok / bad MSG      : count a pass / a failure (printed)
#   check DESC CMD... : passes when the command succeeds
#   expect_exit CODE STDERR_PATTERN ARGS... : run the CLI; check the exit code and that
#                       stderr matches the pattern (empty pattern: not checked); the
#                       output is left in $TMP/out and $TMP/err
#   test_finish NAME  : print "NAME: N passed, N failed" and return non-zero on failures
#   need_vulkan MODEL : exit 77 (skip) with the reason unless `frugal run -ngl 1` works
#                       on MODEL, i.e. a Vulkan device is there
#   sanitized         : succeeds when $FRUGAL is an ASan or TSan build (3-10x slower, RSS
#                       meaningless: some tests run fewer cases there)
test_setup() {
    FRUGAL=${FRUGAL:?FRUGAL must point at the frugal CLI}
    SHARED=${FRUGAL_SHARED_DIR:-}
    TMP=${FRUGAL_TMP:-/tmp}/$1.$$
    mkdir -p "$TMP" || exit 1
    trap 'rm -rf "$TMP"' EXIT
    pass=0
    fail=0
}

sanitized() { grep -qE "__asan_init|__tsan_init" "$FRUGAL"; }

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() {
    local d=$1; shift
    if "$@"; then ok; else bad "$d"; fi
}

expect_exit() {
    local want=$1 pat=$2; shift 2
    "$FRUGAL" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
    local rc=$?
    if [ "$rc" -ne "$want" ]; then
        bad "frugal $* -> exit $rc, want $want ($(head -c 300 "$TMP/err"))"
        return
    fi
    if [ -n "$pat" ] && ! grep -qE -- "$pat" "$TMP/err"; then
        bad "frugal $* -> stderr '$(head -c 300 "$TMP/err")' does not match '$pat'"
        return
    fi
    ok
}

test_finish() {
    echo "$1: $pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}

need_vulkan() {
    local probe
    if ! probe=$("$FRUGAL" run -m "$1" -p x -n 1 -ngl 1 2>&1 >/dev/null); then
        echo "SKIP: no Vulkan device: $probe"
        exit 77
    fi
}
