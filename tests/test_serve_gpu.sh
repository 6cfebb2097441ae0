#!/usr/bin/env bash
# test_serve_gpu.sh - serve with layers on the Vulkan device: /metrics reports the
# device's memory now / peak / budget (--vram) and the layers placed, with the peak
# within the budget after a completion; without -ngl no device lines. Skips (77)
# without ../shared, curl, server support or a Vulkan device.
set -u
FRUGAL=${FRUGAL:?}
SHARED=${FRUGAL_SHARED_DIR:-$(dirname "$0")/../../shared}
M="$SHARED/models/fortune-3m-q8_0.gguf"
[ -f "$M" ] || { echo "SKIP: ../shared models not found"; exit 77; }
command -v curl >/dev/null 2>&1 || { echo "SKIP: curl not found"; exit 77; }
"$FRUGAL" serve --help 2>&1 | grep -q "built without server" && { echo "SKIP: built without server"; exit 77; }
TMP=$(mktemp -d)
spid=""
trap '[ -n "$spid" ] && kill "$spid" 2>/dev/null; rm -rf "$TMP"' EXIT
. "$(dirname "$0")/lib.sh"
need_vulkan "$M"
fail=0

# serve with the given flags, one completion, then /metrics into $TMP/metrics
metrics() {
    "$FRUGAL" serve -m "$M" --port 0 -t 1 "$@" 2>"$TMP/srv.err" &
    spid=$!
    port=""
    for _ in $(seq 1000); do
        port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$TMP/srv.err" | grep -o '[0-9]*$')
        [ -n "$port" ] && break
        sleep 0.02
    done
    [ -n "$port" ] || { echo "FAIL serve $*: no port: $(cat "$TMP/srv.err")"; fail=1; return 1; }
    curl -s "http://127.0.0.1:$port/v1/completions" -d '{"prompt": "Hello", "max_tokens": 8, "temperature": 0}' \
        >"$TMP/c.json"
    curl -s "http://127.0.0.1:$port/metrics" >"$TMP/metrics"
    kill "$spid"; wait "$spid" 2>/dev/null; spid=""
}
val() { awk -v k="$1" '$1 == k { print $2 }' "$TMP/metrics"; }

BUDGET=3145728 # 3 MiB: some layers of the 3.3 MiB model, not all
if metrics --vram 3M; then
    used=$(val frugal_device_memory_bytes); peak=$(val frugal_device_memory_peak_bytes)
    budget=$(val frugal_device_memory_budget_bytes); layers=$(val frugal_device_layers)
    if grep -q '"text_completion"' "$TMP/c.json" && grep -q '^frugal_device_info{device=".\+"} 1$' "$TMP/metrics" &&
       [ -n "$used" ] && [ "$used" -gt 0 ] && [ "$peak" -ge "$used" ] && [ "$budget" = "$BUDGET" ] &&
       [ "$peak" -le "$budget" ] && [ -n "$layers" ] && [ "$layers" -ge 1 ] && [ "$layers" -lt 4 ]; then
        echo "ok   --vram 3M: used $used, peak $peak, budget $budget, $layers layers"
    else
        echo "FAIL --vram 3M: used '$used' peak '$peak' budget '$budget' layers '$layers'"; grep device "$TMP/metrics"
        fail=1
    fi
fi
if metrics; then
    if grep -q "^frugal_device" "$TMP/metrics"; then echo "FAIL CPU serve reports a device"; fail=1
    else echo "ok   CPU serve: no device lines"; fi
fi
exit $fail
