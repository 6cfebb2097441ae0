#!/usr/bin/env bash
# test_monitor_cli.sh - the safety policy through the CLI, on a fake sysfs/procfs root
# (FRUGAL_SYSFS_ROOT): `frugal monitor` prints what the files say and nothing more
# without NVML (one line with -v); a CPU temperature past --max-temp throttles
# decode so that the paused share of the throttled time is within 10 % of 1 - duty,
# with the same greedy tokens, and lowering the temperature mid-run lifts it; a PSI
# "some avg10" above --max-psi takes the first degrade step (the streamer's
# read-ahead) with the same tokens; the policy file and bad values.
# Env: $FRUGAL (CLI), $FRUGAL_SHARED_DIR (models).
set -u
. "$(dirname "$0")/lib.sh"
test_setup test_monitor_cli
export FRUGAL_NVML_LIB=/nonexistent/libnvidia-ml.so.1   # no GPU monitor, whatever the host has
R=$TMP/root
put() { mkdir -p "$(dirname "$R/$1")" && printf '%s\n' "$2" >"$R/$1"; }
put sys/class/hwmon/hwmon0/name coretemp
put sys/class/hwmon/hwmon0/temp1_input 55000
put sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq 1800000
put proc/pressure/memory "some avg10=0.50 avg60=0.10 avg300=0.00 total=10"
put proc/meminfo "MemAvailable:    4000000 kB"
export FRUGAL_SYSFS_ROOT=$R

# --- frugal monitor
expect_exit 0 "" monitor --count 2 --interval 20
check "monitor: temperature" grep -q "cpu_temp=55.0C" "$TMP/out"
check "monitor: frequency" grep -q "freq=1800MHz" "$TMP/out"
check "monitor: room" grep -q "room=3906MiB" "$TMP/out"
check "monitor: GPU n/a" grep -q "gpu_temp=n/a" "$TMP/out"
check "monitor: two lines" test "$(wc -l <"$TMP/out")" = 2
check "monitor: silent stderr without -v" test ! -s "$TMP/err"
expect_exit 0 "" monitor --count 1 -v
check "monitor -v: one GPU line" test "$(grep -c "GPU monitor unavailable" "$TMP/err")" = 1
check "monitor -v: nothing else" test "$(wc -l <"$TMP/err")" = 1
expect_exit 0 "" monitor --count 1 --json
check "monitor --json" grep -q '"cpu_temp_c": 55,' "$TMP/out"
put sys/class/hwmon/hwmon0/temp1_input "garbage"
expect_exit 0 "" monitor --count 3 --interval 10
check "garbage: n/a" grep -q "cpu_temp=n/a" "$TMP/out"
check "garbage: one warning" test "$(grep -c "unreadable contents" "$TMP/err")" = 1
expect_exit 2 "count" monitor --count -1

M=${SHARED:+$SHARED/models/fortune-3m-q8_0.gguf}
if [ -z "$M" ] || [ ! -f "$M" ]; then
    echo "SKIP (model parts): fortune-3m-q8_0.gguf absent"
    test_finish test_monitor_cli
    exit $?
fi
RUN=(run -m "$M" -p "The meaning of life is" --temp 0 -c 256 -t 1 --json)
tokens() { grep -o '"tokens": \[[^]]*\]' "$1"; }
field() { grep -o "\"$2\": [0-9.a-z+-]*" "$1" | head -1 | sed 's/.*: //'; }

# --- reference: no policy. The throttle runs use the F32 file: longer steps, so one
# late wake-up at the end weighs less in the paused share
M32=${M%-q8_0.gguf}-f32.gguf
[ -f "$M32" ] || M32=$M
TRUN=(run -m "$M32" -p "The meaning of life is" --temp 0 -c 256 -t 1 --json)
expect_exit 0 "" "${TRUN[@]}" -n 128
cp "$TMP/out" "$TMP/ref.json"

# --- throttled: temperature over the limit, duty 0.4 (paused share target 0.6)
put sys/class/hwmon/hwmon0/temp1_input 95000
expect_exit 0 "throttling to 40% duty: cpu temp 95.0 C > 80 C" "${TRUN[@]}" -n 128 --max-temp 80 --duty 0.4 \
    --monitor-interval 50
check "throttled: same tokens" test "$(tokens "$TMP/out")" = "$(tokens "$TMP/ref.json")"
paused=$(field "$TMP/out" throttled_s)
step=$(field "$TMP/out" throttled_step_s)
echo "throttled: paused ${paused}s, computing ${step}s"
check "duty within 10 % of target (paused $paused, step $step)" \
    awk -v p="$paused" -v s="$step" 'BEGIN { r = p / (p + s); d = r - 0.6; if (d < 0) d = -d; exit !(s > 0 && d <= 0.06) }'
check "peak temperature reported" test "$(field "$TMP/out" peak_cpu_temp_c)" = 95

# --- falling back lifts it: lower the temperature while a slow (duty 0.05) run goes on
"$FRUGAL" "${TRUN[@]}" -n 200 --max-temp 80 --duty 0.05 --monitor-interval 20 >"$TMP/lift.json" 2>"$TMP/lift.err" &
pid=$!
for _ in $(seq 500); do grep -q throttling "$TMP/lift.err" && break; sleep 0.01; done
put sys/class/hwmon/hwmon0/temp1_input 60000
wait $pid
check "lift: run ok" test $? = 0
check "lift: logged" grep -q "throttle lifted" "$TMP/lift.err"
check "lift: no longer throttling" grep -q '"throttling": 0' "$TMP/lift.json"
check "lift: tokens" test "$(tokens "$TMP/lift.json" | cut -c1-60)" = "$(tokens "$TMP/ref.json" | cut -c1-60)"

# --- policy file: the same keys
put sys/class/hwmon/hwmon0/temp1_input 95000
printf '{"max_temp": 80, "duty": 0.5, "interval_ms": 50}\n' >"$TMP/p.json"
expect_exit 0 "throttling to 50% duty" "${RUN[@]}" -n 8 --policy-file "$TMP/p.json"
printf '{"max_temperature": 80}\n' >"$TMP/bad.json"
expect_exit 1 'unknown key "max_temperature"' "${RUN[@]}" -n 8 --policy-file "$TMP/bad.json"
printf '{"max_temp": "hot"}\n' >"$TMP/bad.json"
expect_exit 1 '"max_temp" must be a number' "${RUN[@]}" -n 8 --policy-file "$TMP/bad.json"
printf '[1, 2' >"$TMP/bad.json"
expect_exit 1 "not a JSON object" "${RUN[@]}" -n 8 --policy-file "$TMP/bad.json"
expect_exit 1 "No such file" "${RUN[@]}" -n 8 --policy-file "$TMP/none.json"
expect_exit 2 "min-free" "${RUN[@]}" -n 8 --min-free lots
expect_exit 2 "duty" "${RUN[@]}" -n 8 --duty 0

# --- memory pressure: PSI over the limit takes the first degrade step (streamed run)
put sys/class/hwmon/hwmon0/temp1_input 50000
expect_exit 0 "" "${RUN[@]}" -n 48 --mem 14M
cp "$TMP/out" "$TMP/ref_mem.json"
put proc/pressure/memory "some avg10=42.00 avg60=10.00 avg300=1.00 total=10"
expect_exit 0 "degrade step 1 \(drop the prefetch window\): read-ahead 2 -> 1 buffer.*PSI some avg10 42.00 > 10" \
    "${RUN[@]}" -n 48 --mem 14M --max-psi 10 --monitor-interval 20
check "pressure: same tokens" test "$(tokens "$TMP/out")" = "$(tokens "$TMP/ref_mem.json")"
check "pressure: logged once" test "$(grep -c "degrade step 1 " "$TMP/err")" = 1
check "pressure: counted" test "$(field "$TMP/out" degrade_steps)" -ge 1

# --- every step, then recovery: a random model with resident and streamed layers
# (--mem 46M: 3 resident of 8), PSI high until step 3, then calm: the steps are
# undone in reverse and the tokens stay the same (slowed by a throttle meanwhile)
VOCAB=$SHARED/vocab/ggml-vocab-llama-spm.gguf
if [ -f "$VOCAB" ]; then
    "$FRUGAL" mkmodel --dim 512 --layers 8 --heads 8 --kv-heads 2 --ffn 1408 --type q8_0 --vocab-from "$VOCAB" \
        -o "$TMP/s.gguf" >/dev/null
    SRUN=(run -m "$TMP/s.gguf" -p "Hello" --temp 0 -c 128 -t 1 --json -n 100 --mem 46M)
    expect_exit 0 "" "${SRUN[@]}"
    cp "$TMP/out" "$TMP/ref_s.json"
    put proc/pressure/memory "some avg10=42.00 avg60=10.00 avg300=1.00 total=10"
    put sys/class/hwmon/hwmon0/temp1_input 95000
    "$FRUGAL" "${SRUN[@]}" --max-psi 10 --max-temp 80 --duty 0.2 --monitor-interval 20 >"$TMP/rec.json" 2>"$TMP/rec.err" &
    pid=$!
    for _ in $(seq 1000); do grep -q "degrade step 3" "$TMP/rec.err" && break; sleep 0.01; done
    put proc/pressure/memory "some avg10=0.00 avg60=10.00 avg300=1.00 total=10"
    wait $pid
    check "recovery: run ok" test $? = 0
    check "recovery: step 3 evicted a layer" grep -q "degrade step 3 (stream more layers): resident layers 3 -> 1" "$TMP/rec.err"
    # -c 128 holds 8 blocks of 16 tokens; the prompt and the tokens so far use some
    check "recovery: step 2 gave free KV blocks' pages back" \
        grep -qE "degrade step 2 \(shrink idle KV cache\): KV pages of [1-9][0-9]* free blocks given back to the kernel, freed [0-9.]+ MiB" "$TMP/rec.err"
    check "recovery: step 1 undone" grep -q "undo step 1 (drop the prefetch window): read-ahead back to 2" "$TMP/rec.err"
    check "recovery: step 3 undone" grep -q "undo step 3 (stream more layers): resident layers back to 3" "$TMP/rec.err"
    check "recovery: level 0 at the end" grep -q '"degrade_level": 0' "$TMP/rec.json"
    check "recovery: same tokens" test "$(tokens "$TMP/rec.json")" = "$(tokens "$TMP/ref_s.json")"
    put sys/class/hwmon/hwmon0/temp1_input 50000
else
    echo "SKIP (recovery part): $VOCAB absent"
fi

# --- bench: readings in --json, and the monitors off/on pairs (the overhead is
# printed, not asserted: it is a timing)
expect_exit 0 "" bench -m "$M" -p 0 -n 8 -r 2 -t 1 --json --max-temp 80 --monitor-ab --bw-mib 16
check "bench --json: safety readings" grep -q '"safety": {"cpu_temp_c": 50' "$TMP/out"
check "bench --json: monitor_ab entry" grep -q '"test": "monitor_ab tg8".*"overhead_pct": ' "$TMP/out"
if command -v python3 >/dev/null; then
    check "bench --json: valid JSON" python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$TMP/out"
fi

# --- serve: the readings and actions in /metrics
put sys/class/hwmon/hwmon0/temp1_input 93000
if command -v curl >/dev/null && ! "$FRUGAL" serve --help 2>&1 | grep -q "built without server"; then
    "$FRUGAL" serve -m "$M" --port 0 -t 1 --max-temp 80 --monitor-interval 20 2>"$TMP/srv.err" &
    spid=$!
    sport=""
    for _ in $(seq 500); do
        sport=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$TMP/srv.err" | grep -o '[0-9]*$')
        [ -n "$sport" ] && break
        sleep 0.02
    done
    curl -s "http://127.0.0.1:$sport/v1/completions" -d '{"prompt": "Hello", "max_tokens": 8, "temperature": 0}' \
        >"$TMP/c.json"
    curl -s "http://127.0.0.1:$sport/metrics" >"$TMP/metrics"
    kill "$spid"
    wait "$spid" 2>/dev/null
    check "metrics: temperature" grep -q "^frugal_cpu_temperature_celsius 93.000" "$TMP/metrics"
    check "metrics: throttling" grep -q "^frugal_throttling 1" "$TMP/metrics"
    check "metrics: throttle events" grep -q "^frugal_throttle_events_total 1" "$TMP/metrics"
    check "metrics: paused time" grep -qE "^frugal_throttled_seconds_total [0-9.]*[1-9]" "$TMP/metrics"
    check "serve: completion under throttle" grep -q '"text_completion"' "$TMP/c.json"
else
    echo "SKIP (serve part): no curl or no server support"
fi

# --- no policy, no NVML: nothing printed beyond the usual line
expect_exit 0 "" "${RUN[@]}" -n 4
check "no policy: no safety output" test "$(grep -c -i "safety\|GPU" "$TMP/err")" = 0
test_finish test_monitor_cli
