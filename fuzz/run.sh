#!/usr/bin/env bash
# run.sh BUILD_FUZZ FRUGAL SHARED SECONDS [TARGET...] - run each fuzz target for
# SECONDS on fresh seeds (fuzz/seeds.sh) under BUILD_FUZZ/fuzz-run/, print its
# final libFuzzer line (execs, coverage) and fail on any finding (crash, leak,
# sanitizer report, timeout). Used by .ci/run with 60 s per target; the targets run
# side by side, one per CPU (FUZZ_JOBS overrides).
set -u
BUILD=$1 FRUGAL=$2 SHARED=$3 SECS=$4
shift 4
HERE=$(cd "$(dirname "$0")" && pwd)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(fuzz_gguf fuzz_tokenizer fuzz_http fuzz_template fuzz_kv_spill fuzz_safetensors)
RUN=${FUZZ_RUN_DIR:-$BUILD/fuzz-run}
rm -rf "$RUN" && mkdir -p "$RUN"
bash "$HERE/seeds.sh" "$FRUGAL" "$SHARED" "$RUN/seeds" || { echo "fuzz: seed generation failed"; exit 1; }
# one target: its libFuzzer run, then its summary line; returns non-zero on a finding
fuzz_one() {
    local t=$1 bin=$BUILD/fuzz/$1 maxlen=65536 rc execs last
    [ -x "$bin" ] || { echo "fuzz: $t not built"; return 1; }
    mkdir -p "$RUN/corpus/$t" "$RUN/artifacts/$t"
    [ "$t" = fuzz_gguf ] && maxlen=262144 # the seed models are 40-140 KiB
    local dict=()
    [ -f "$HERE/$t.dict" ] && dict=(-dict="$HERE/$t.dict")
    FRUGAL_SHARED_DIR=$SHARED ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$bin" "$RUN/corpus/$t" "$RUN/seeds/$t" "${dict[@]}" -max_total_time="$SECS" -max_len=$maxlen \
        -timeout=20 -rss_limit_mb=3072 -print_final_stats=1 -artifact_prefix="$RUN/artifacts/$t/" \
        >"$RUN/$t.log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$RUN/$t.log" | grep -o '[0-9]*$')
    last=$(grep -E '^#[0-9]+' "$RUN/$t.log" | tail -1)
    echo "fuzz: $t: exit $rc, ${execs:-?} execs in ${SECS} s: $last"
    if [ "$rc" -ne 0 ] || ls "$RUN/artifacts/$t"/* >/dev/null 2>&1; then
        echo "fuzz: $t FOUND SOMETHING:"; grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$RUN/$t.log" | head -8
        return 1
    fi
}

# one target per CPU at a time (each libFuzzer run is single-threaded)
JOBS=${FUZZ_JOBS:-$(nproc)}
fail=0 running=0
for t in "${TARGETS[@]}"; do
    if [ "$running" -ge "$JOBS" ]; then
        wait -n || fail=1
        running=$((running - 1))
    fi
    fuzz_one "$t" &
    running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
    wait -n || fail=1
    running=$((running - 1))
done
exit $fail
