#!/usr/bin/env bash
# convert_rss.sh [FRUGAL] [SHARED] [TYPE] - the peak memory of `frugal convert` on a
# TinyLlama-1.1B-shape F16 folder (hidden 2048, 22 layers, 32 heads, 4 KV heads, FFN
# 5632, vocabulary 32000: 2.2 GB of weights, random values) converted with --type TYPE
# (default q4_k). Peak RSS is the child's ru_maxrss (= its VmHWM). The folder, the float
# temp file and the output (~5 GB together) go to a temp dir under ${TMPDIR:-/tmp},
# removed at the end. Fails when the peak is 300 MB or more.
set -eu
FRUGAL=${1:-build/frugal}
SHARED=${2:-../shared}
TYPE=${3:-q4_k}
HERE=$(cd "$(dirname "$0")" && pwd)
D=$(mktemp -d "${TMPDIR:-/tmp}/convert_rss.XXXXXX")
trap 'rm -rf "$D"' EXIT
python3 "$HERE/../tests/convert/hf_random.py" "$D/tinyllama" --tokenizer-model "$SHARED/hf/llama/tokenizer.model"
python3 - "$FRUGAL" "$D/tinyllama" "$D/out.gguf" "$TYPE" <<'PY'
import os, resource, subprocess, sys, time
frugal, src, out, ty = sys.argv[1:]
t = time.time()
r = subprocess.run([frugal, "convert", src, out, "--type", ty, "--progress"])
dt = time.time() - t
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"convert_rss: 1.1B F16 -> {ty}: exit {r.returncode}, {dt:.1f} s, peak RSS {peak:.1f} MiB, "
      f"output {os.path.getsize(out) / 2**20:.1f} MiB" if r.returncode == 0 else f"convert failed: {r.returncode}")
sys.exit(0 if r.returncode == 0 and peak * 1.048576 < 300 else 1)
PY
