#!/usr/bin/env bash
# test_convert_rss.sh - `frugal convert --type q4_k` streams: on a 105 MiB F16 Llama
# folder (hidden 512, 8 layers, FFN 1536, vocabulary 32000: the two 31 MiB embedding
# matrices are the largest tensors) its peak RSS (ru_maxrss = VmHWM of the process)
# stays under twice the largest tensor plus 40 MiB, and under 3/4 of the weights: it
# never holds the model. (The TinyLlama-1.1B shape, 2.2 GB: bench/convert_rss.sh.)
# The folder is random F16 written by tests/convert/hf_random.py with the shared
# Llama-2 tokenizer.model. Skips without ../shared/hf or python3.
source "$(dirname "$0")/lib.sh"
test_setup test_convert_rss
HERE=$(cd "$(dirname "$0")" && pwd)
[ -n "$SHARED" ] && [ -f "$SHARED/hf/llama/tokenizer.model" ] || { echo "SKIP: ../shared/hf absent"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 not found"; exit 77; }
"$FRUGAL" convert --help >/dev/null 2>&1 || { echo "SKIP: frugal built without convert (cJSON)"; exit 77; }
grep -qE "__asan_init|__tsan_init" "$FRUGAL" && { echo "SKIP: sanitizer build: its shadow memory makes RSS figures meaningless"; exit 77; }
python3 "$HERE/convert/hf_random.py" "$TMP/hf" --tokenizer-model "$SHARED/hf/llama/tokenizer.model" \
    --hidden 512 --layers 8 --heads 8 --kv-heads 2 --ffn 1536 --vocab 32000 >/dev/null || { bad "hf_random"; exit 1; }
if python3 - "$FRUGAL" "$TMP/hf" "$TMP/out.gguf" <<'PY'
import os, resource, subprocess, sys
frugal, src, out = sys.argv[1:]
r = subprocess.run([frugal, "convert", src, out, "--type", "q4_k"], stderr=subprocess.DEVNULL)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
weights = os.path.getsize(os.path.join(src, "model.safetensors"))
largest = 32000 * 512 * 2
bound = min(2 * largest + (40 << 20), weights * 3 // 4)
print(f"convert q4_k: exit {r.returncode}, peak RSS {peak / 2**20:.1f} MiB (bound {bound / 2**20:.1f} MiB; "
      f"weights {weights / 2**20:.1f} MiB, largest tensor {largest / 2**20:.1f} MiB)")
sys.exit(0 if r.returncode == 0 and peak < bound and os.path.getsize(out) < weights / 2 else 1)
PY
then ok; else bad "peak RSS or output of convert --type q4_k"; fi
check "no temp file left" test -z "$(ls "$TMP" | grep 'out.gguf.')"
test_finish test_convert_rss
