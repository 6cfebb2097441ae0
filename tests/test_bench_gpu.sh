#!/usr/bin/env bash
# test_bench_gpu.sh - bench with layers on the Vulkan device: the device's name, its
# measured read bandwidth and the split roofline (device bytes / device bandwidth + CPU
# bytes / CPU bandwidth) in text and JSON, consistent with each other and with -ngl and
# --vram. Skips (77) without ../shared, python3 or a Vulkan device.
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
B=(-m "$M" -p 0 -n 4 -r 1 --bw-mib 16 --device-bw-mib 4)

# JSON: all layers, half of them, a budget; check each object's device fields
check() { # label expected_layers vram_bytes(0: none) file
    python3 - "$@" <<'PY'
import json, sys
label, want_layers, vram, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
t = json.load(open(path))[0]
err = []
if not t.get("device"): err.append("no device name")
if t.get("device_layers") != want_layers: err.append("device_layers %r != %d" % (t.get("device_layers"), want_layers))
bw, roof = t.get("device_bw_gbs"), t.get("device_roofline_tokens_per_s")
if not (isinstance(bw, (int, float)) and bw > 0): err.append("device_bw_gbs %r" % bw)
dev, cpu, cbw = t["device_bytes_per_token"], t["cpu_bytes_per_token"], t["cpu_bw_gbs"]
if not 0 < dev <= t["bytes_per_token"]: err.append("device bytes %r vs %r" % (dev, t["bytes_per_token"]))
if isinstance(bw, (int, float)) and bw > 0 and roof:
    want = 1.0 / (dev / (bw * 1e9) + (cpu / (cbw * 1e9) if cpu > 0 else 0))
    if abs(roof - want) > 1e-6 * want: err.append("roofline %r, expected %r" % (roof, want))
    if abs(t["device_roofline_pct"] - 100 * t["tokens_per_s"] / roof) > 1e-4 * t["device_roofline_pct"]:
        err.append("roofline pct")
else:
    err.append("no roofline")
if vram and t["device_mem_budget_bytes"] != vram: err.append("budget %r != %d" % (t["device_mem_budget_bytes"], vram))
if t["device_mem_peak_bytes"] > t["device_mem_budget_bytes"]: err.append("peak over the budget")
print(("ok   " if not err else "FAIL ") + label + ": " + "; ".join(err or ["dev %d B/token, cpu %d B/token, %.2f GB/s" % (dev, cpu, bw)]))
sys.exit(1 if err else 0)
PY
}
"$FRUGAL" bench "${B[@]}" -ngl -1 --json >"$TMP/all.json" 2>"$TMP/err" && check "-ngl -1" 4 0 "$TMP/all.json" || fail=1
"$FRUGAL" bench "${B[@]}" -ngl 2 --json >"$TMP/half.json" 2>"$TMP/err" && check "-ngl 2" 2 0 "$TMP/half.json" || fail=1
# 3M: the activation buffers (with the whole-layer ones) and two layers with their KV caches
"$FRUGAL" bench "${B[@]}" --vram 3M --json >"$TMP/vram.json" 2>"$TMP/err" && check "--vram 3M" 2 3145728 "$TMP/vram.json" || fail=1
# the CPU's share grows as layers leave the device
python3 -c '
import json, sys
a, h = json.load(open(sys.argv[1]))[0], json.load(open(sys.argv[2]))[0]
ok = h["cpu_bytes_per_token"] > a["cpu_bytes_per_token"] and h["device_bytes_per_token"] < a["device_bytes_per_token"]
print(("ok   " if ok else "FAIL ") + "-ngl 2 moves bytes from the device to the CPU")
sys.exit(0 if ok else 1)' "$TMP/all.json" "$TMP/half.json" || fail=1

# without -ngl: no device fields
"$FRUGAL" bench "${B[@]}" --json >"$TMP/cpu.json" 2>/dev/null
if grep -q '"device"' "$TMP/cpu.json"; then echo "FAIL CPU run reports a device"; fail=1; else echo "ok   CPU run: no device fields"; fi

# text: the device's lines
"$FRUGAL" bench "${B[@]}" -ngl -1 >"$TMP/t.txt" 2>/dev/null
if grep -q "^device: .*4 layers" "$TMP/t.txt" && grep -q "^device read bandwidth: [0-9.]* GB/s" "$TMP/t.txt" &&
   grep -q "^device roofline: [0-9.]* tok/s.*tg4: .* %" "$TMP/t.txt"; then echo "ok   text: device lines"
else echo "FAIL text:"; cat "$TMP/t.txt"; fail=1; fi
exit $fail
