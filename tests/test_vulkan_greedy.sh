#!/usr/bin/env bash
# test_vulkan_greedy.sh - greedy text is the same on the CPU and with layers on the
# Vulkan device (all of them with the output matrix, and half), for every weight type
# of the shared fortune model and the other shared real models, with whole layers on the
# device (a long prompt too) and with a --vram below the model; plus the bad-input
# paths of -ngl / --vram.
# Skips (77) without ../shared or without a Vulkan device.
set -u
FRUGAL=${FRUGAL:?}
SHARED=${FRUGAL_SHARED_DIR:-$(dirname "$0")/../../shared}
[ -f "$SHARED/models/fortune-3m-q8_0.gguf" ] || { echo "SKIP: ../shared models not found"; exit 77; }
M="$SHARED/models/fortune-3m-q8_0.gguf"
. "$(dirname "$0")/lib.sh"
need_vulkan "$M"
fail=0
P="The meaning of life is"
# (a sanitizer build: lavapipe's shaders cost the same there, the host code is what is
# checked, so one weight type, the mixed q4_k_m)
TYPES="f32 q8_0 q4_0 q4_k_m"
sanitized && TYPES=q4_k_m
for m in $TYPES; do
    f="$SHARED/models/fortune-3m-$m.gguf"
    cpu=$("$FRUGAL" run -m "$f" -p "$P" -n 32 --temp 0 2>/dev/null)
    for ngl in 99 2; do
        dev=$("$FRUGAL" run -m "$f" -p "$P" -n 32 --temp 0 -ngl $ngl 2>/dev/null)
        if [ -n "$cpu" ] && [ "$cpu" = "$dev" ]; then echo "ok   $m -ngl $ngl: same text"
        else echo "FAIL $m -ngl $ngl: CPU '$cpu' vs device '$dev'"; fail=1; fi
    done
done

# whole layers on the device (norms, attention over the device KV cache, FFN): a prompt
# of several 32-token chunks (prefill in pieces, each attending to the ones before), on
# every layer and on the last half; the load line says the layers run whole
LONG="The meaning of life is a question that has puzzled philosophers, poets and ordinary people for thousands of years. Some say it is to be happy, others that it is to help one another, and still others that there is no meaning at all, only what we make of it ourselves. What do you think"
f="$SHARED/models/fortune-3m-q4_0.gguf"
cpu=$("$FRUGAL" run -m "$f" -p "$LONG" -n 16 --temp 0 2>/dev/null)
for ngl in 99 2; do
    dev=$("$FRUGAL" run -m "$f" -p "$LONG" -n 16 --temp 0 -ngl $ngl 2>"${TMPDIR:-/tmp}/vkerr.$$")
    if [ -n "$cpu" ] && [ "$cpu" = "$dev" ] && grep -q "whole layers" "${TMPDIR:-/tmp}/vkerr.$$"; then
        echo "ok   long prompt -ngl $ngl: whole layers, same text"
    else echo "FAIL long prompt -ngl $ngl: CPU '$cpu' vs device '$dev': $(cat "${TMPDIR:-/tmp}/vkerr.$$")"; fail=1; fi
done
# the other shared real models (Llama-shaped TinyStories, stories260K, a Chinese-poem model)
for m in tinystories-xs-q8_0 stories260K zh-poem-f32; do
    f="$SHARED/models/$m.gguf"
    [ -f "$f" ] || continue
    cpu=$("$FRUGAL" run -m "$f" -p "Once upon a time" -n 24 --temp 0 2>/dev/null)
    dev=$("$FRUGAL" run -m "$f" -p "Once upon a time" -n 24 --temp 0 -ngl 99 2>"${TMPDIR:-/tmp}/vkerr.$$")
    if [ -n "$cpu" ] && [ "$cpu" = "$dev" ] && grep -q "whole layers" "${TMPDIR:-/tmp}/vkerr.$$"; then
        echo "ok   $m -ngl 99: whole layers, same text"
    else echo "FAIL $m -ngl 99: CPU '$cpu' vs device '$dev'"; fail=1; fi
done
# a KV type the device cache does not hold: one note, the matrix products only, the
# CPU's text for that KV type
cpu=$("$FRUGAL" run -m "$M" -p "$P" -n 16 --temp 0 --kv-type q8_0 2>/dev/null)
dev=$("$FRUGAL" run -m "$M" -p "$P" -n 16 --temp 0 --kv-type q8_0 -ngl 99 2>"${TMPDIR:-/tmp}/vkerr.$$")
n_note=$(grep -c "only the matrix products" "${TMPDIR:-/tmp}/vkerr.$$")
if [ "$cpu" = "$dev" ] && [ "$n_note" = 1 ]; then echo "ok   --kv-type q8_0: one note, products only, same text"
else echo "FAIL --kv-type q8_0: '$dev' vs '$cpu', $n_note notes"; fail=1; fi
# --vram below the model: the layers that fit with their KV caches, peak device memory
# (measured by the runtime's accounting) within the budget, the CPU's text
f="$SHARED/models/fortune-3m-f32.gguf"
cpu=$("$FRUGAL" run -m "$f" -p "$LONG" -n 16 --temp 0 2>/dev/null)
dev=$("$FRUGAL" run -m "$f" -p "$LONG" -n 16 --temp 0 --vram 8M 2>"${TMPDIR:-/tmp}/vkerr.$$")
if [ "$cpu" = "$dev" ] && grep -qE "[123] of 4 layers.*whole layers" "${TMPDIR:-/tmp}/vkerr.$$"; then
    echo "ok   --vram 8M: $(grep -oE '[0-9] of 4 layers' "${TMPDIR:-/tmp}/vkerr.$$") whole, same text"
else echo "FAIL --vram 8M: '$dev' vs '$cpu': $(cat "${TMPDIR:-/tmp}/vkerr.$$")"; fail=1; fi
json=$("$FRUGAL" bench -m "$f" -p 40 -n 8 -r 1 --vram 8M --json 2>/dev/null)
peak=$(echo "$json" | sed -nE 's/.*"device_mem_peak_bytes": ([0-9]+).*/\1/p' | head -1)
if [ -n "$peak" ] && [ "$peak" -gt 0 ] && [ "$peak" -le $((8 << 20)) ]; then echo "ok   --vram 8M: peak $peak bytes"
else echo "FAIL --vram 8M: peak '$peak' over the budget"; fail=1; fi
rm -f "${TMPDIR:-/tmp}/vkerr.$$"

# a budget too small for any layer: a message, the CPU path, the same text
out=$("$FRUGAL" run -m "$M" -p "$P" -n 32 --temp 0 --vram 64K 2>"${TMPDIR:-/tmp}/vkerr.$$")
err=$(cat "${TMPDIR:-/tmp}/vkerr.$$"); rm -f "${TMPDIR:-/tmp}/vkerr.$$"
cpu=$("$FRUGAL" run -m "$M" -p "$P" -n 32 --temp 0 2>/dev/null)
if [ "$out" = "$cpu" ] && echo "$err" | grep -q "on the CPU"; then echo "ok   --vram 64K: CPU path with a message"
else echo "FAIL --vram 64K: '$err'"; fail=1; fi

# the safety readings include the device's memory while layers run there (issue 20's
# Vulkan monitor): frugal's device bytes within the budget; none on the CPU
err=$("$FRUGAL" run -m "$M" -p "$P" -n 4 -ngl 99 --vram 64M --stats --max-temp 150 2>&1 >/dev/null)
used=$(echo "$err" | sed -nE 's/^safety: Vulkan device memory ([0-9.]+) of ([0-9.]+) MiB budget.*/\1 \2/p')
if [ -n "$used" ] && awk -v u="${used% *}" -v b="${used#* }" 'BEGIN { exit !(u > 0 && u <= b && b == 64) }'
then echo "ok   readings: Vulkan device memory $used MiB"
else echo "FAIL readings: no Vulkan device memory line: $(echo "$err" | grep safety)"; fail=1; fi
json=$("$FRUGAL" bench -m "$M" -p 0 -n 2 -r 1 -ngl 99 --json --max-temp 150 2>/dev/null)
if echo "$json" | grep -qE '"vk_mem_used_bytes": [1-9][0-9]*' && echo "$json" | grep -q '"vk_heap_budget_bytes": '
then echo "ok   bench --json: vk_mem_used_bytes"
else echo "FAIL bench --json lacks the device memory readings"; fail=1; fi
err=$("$FRUGAL" run -m "$M" -p "$P" -n 2 --stats --max-temp 150 2>&1 >/dev/null)
if echo "$err" | grep -q "^safety: peak" && ! echo "$err" | grep -q "Vulkan device memory"
then echo "ok   readings on the CPU: no device line"
else echo "FAIL readings on the CPU: $(echo "$err" | grep safety)"; fail=1; fi

# bad values: usage errors naming the flag
"$FRUGAL" run -m "$M" -p x -ngl -5 >/dev/null 2>&1; rc=$?
[ $rc = 2 ] && echo "ok   -ngl -5: usage error" || { echo "FAIL -ngl -5: rc $rc"; fail=1; }
"$FRUGAL" run -m "$M" -p x --vram lots >/dev/null 2>&1; rc=$?
[ $rc = 2 ] && echo "ok   --vram lots: usage error" || { echo "FAIL --vram lots: rc $rc"; fail=1; }

# no device (no Vulkan driver found): an explicit -ngl is an error, -ngl -1 the CPU
msg=$(VK_ICD_FILENAMES=/nonexistent.json "$FRUGAL" run -m "$M" -p x -n 2 -ngl 2 2>&1 >/dev/null); rc=$?
if [ $rc = 1 ] && echo "$msg" | grep -q "gpu-layers 2"; then echo "ok   no device, -ngl 2: error"
else echo "FAIL no device, -ngl 2: rc $rc '$msg'"; fail=1; fi
msg=$(VK_ICD_FILENAMES=/nonexistent.json "$FRUGAL" run -m "$M" -p x -n 2 -ngl -1 2>&1 >/dev/null); rc=$?
if [ $rc = 0 ] && echo "$msg" | grep -q "running on the CPU"; then echo "ok   no device, -ngl -1: CPU"
else echo "FAIL no device, -ngl -1: rc $rc '$msg'"; fail=1; fi
exit $fail
