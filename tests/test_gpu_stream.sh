#!/usr/bin/env bash
# test_gpu_stream.sh - --gpu-stream with --vram smaller than the model: the layers past
# the budget are copied to the device into two rotating buffers, greedy text stays the
# CPU's for each weight type of the shared fortune model, the measured device peak stays
# within --vram, and bench reports the copies (bytes per token, copy bandwidth).
# Skips (77) without ../shared, python3 or a Vulkan device.
set -u
FRUGAL=${FRUGAL:?}
SHARED=${FRUGAL_SHARED_DIR:-$(dirname "$0")/../../shared}
M="$SHARED/models/fortune-3m-q8_0.gguf"
[ -f "$M" ] || { echo "SKIP: ../shared models not found"; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 not found"; exit 77; }
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
. "$(dirname "$0")/lib.sh"
need_vulkan "$M"
fail=0
P="The meaning of life is"
# budgets: activations (~0.3 MiB, + 0.53 MiB for whole layers) + the two layer buffers
# + one resident layer with its KV cache (66 KiB), so one layer stays on the device and
# three are streamed
for mb in q8_0:3700 q4_0:2320 q4_k_m:2470 f32:10120; do
    m=${mb%%:*}
    budget=$(( ${mb#*:} * 1024 ))
    f="$SHARED/models/fortune-3m-$m.gguf"
    cpu=$("$FRUGAL" run -m "$f" -p "$P" -n 24 --temp 0 2>/dev/null)
    dev=$("$FRUGAL" run -m "$f" -p "$P" -n 24 --temp 0 --vram "$budget" --gpu-stream 2>"$TMP/err")
    if [ -n "$cpu" ] && [ "$cpu" = "$dev" ] && grep -q "past the budget are streamed" "$TMP/err"; then
        echo "ok   $m --vram $budget --gpu-stream: same text as the CPU"
    else
        echo "FAIL $m --vram $budget --gpu-stream: CPU '$cpu' vs device '$dev': $(cat "$TMP/err")"; fail=1
    fi
    "$FRUGAL" bench -m "$f" -p 0 -n 4 -r 1 --bw-mib 16 --device-bw-mib 4 --vram "$budget" --gpu-stream --json \
        >"$TMP/b.json" 2>"$TMP/err" || { echo "FAIL $m bench: $(cat "$TMP/err")"; fail=1; continue; }
    python3 - "$m" "$budget" "$TMP/b.json" <<'PY' || fail=1
import json, sys
m, budget, t = sys.argv[1], int(sys.argv[2]), json.load(open(sys.argv[3]))[0]
err = []
if t.get("device_mem_budget_bytes") != budget: err.append("budget %r" % t.get("device_mem_budget_bytes"))
if not 0 < t.get("device_mem_peak_bytes", 0) <= budget: err.append("peak %r over %d" % (t.get("device_mem_peak_bytes"), budget))
n = t.get("stream_layers", 0)
if n != 3 or t.get("device_layers") != 1: err.append("stream_layers %r, device_layers %r (want 3, 1)" % (n, t.get("device_layers")))
if not t.get("h2d_bytes_per_token", 0) > 0: err.append("h2d_bytes_per_token %r" % t.get("h2d_bytes_per_token"))
if not t.get("h2d_gbs", 0) > 0: err.append("h2d_gbs %r" % t.get("h2d_gbs"))
# three streamed layers, two slots: each token copies all three, i.e. the weights that
# are neither resident nor the output/embedding (same-type layers: 3x the resident one)
h2d, dev, allw = t["h2d_bytes_per_token"], t["device_bytes_per_token"], t["bytes_per_token"]
if not 2 * dev < h2d <= allw - dev: err.append("copied %r per token (resident layer %r, all %r)" % (h2d, dev, allw))
if m != "q4_k_m" and abs(h2d - 3 * dev) > 0.02 * h2d: err.append("copied %r per token, not 3 x %r" % (h2d, dev))
print(("ok   " if not err else "FAIL ") + m + " bench: " + "; ".join(err or ["peak %d <= %d, %d layers streamed, %.0f B/token at %.2f GB/s" % (t["device_mem_peak_bytes"], budget, n, t["h2d_bytes_per_token"], t["h2d_gbs"])]))
sys.exit(1 if err else 0)
PY
done

# without the flag the same budget leaves those layers on the CPU; a budget with no room
# for the two buffers turns streaming off with a message, and the text stays the CPU's
"$FRUGAL" run -m "$M" -p "$P" -n 4 --temp 0 --vram 2M 2>"$TMP/err" >/dev/null
if grep -q "run on the CPU" "$TMP/err" && ! grep -q streamed "$TMP/err"; then echo "ok   no --gpu-stream: CPU layers"
else echo "FAIL no --gpu-stream: $(cat "$TMP/err")"; fail=1; fi
cpu=$("$FRUGAL" run -m "$M" -p "$P" -n 8 --temp 0 2>/dev/null)
dev=$("$FRUGAL" run -m "$M" -p "$P" -n 8 --temp 0 --vram 1M --gpu-stream 2>"$TMP/err")
if [ "$cpu" = "$dev" ] && grep -q "gpu-stream off" "$TMP/err"; then echo "ok   --vram 1M --gpu-stream: off, CPU text"
else echo "FAIL --vram 1M --gpu-stream: '$dev' $(cat "$TMP/err")"; fail=1; fi
exit $fail
