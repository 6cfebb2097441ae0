#!/usr/bin/env bash
# test_bench.sh - `frugal bench`: the JSON it prints (fields, one object per test),
# bytes_per_token recomputed independently from `frugal inspect`'s tensor table,
# -p 0 / -n 0 skipping a test, the human table, and usage errors (exit 2).
# No timing assertions: speed is a benchmark, not a test.
# Env: $FRUGAL (CLI), $FRUGAL_SHARED_DIR (models; parts needing it skip without it),
# $FRUGAL_TMP (scratch).
set -u

FRUGAL=${FRUGAL:?set FRUGAL to the frugal CLI}
SHARED=${FRUGAL_SHARED_DIR:-$(dirname "$0")/../../shared}
TMP=${FRUGAL_TMP:-/tmp}/test_bench.$$
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT

pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# expect_exit CODE DESC -- ARGS...: run frugal bench ARGS, check the exit status
expect_exit() {
    local want=$1 desc=$2
    shift 3
    "$FRUGAL" bench "$@" >"$TMP/out" 2>"$TMP/err"
    local got=$?
    if [ "$got" -eq "$want" ]; then ok; else bad "$desc: exit $got, want $want ($(head -c 300 "$TMP/err"))"; fi
}

# ---------------------------------------------------------------- usage errors (no shared needed)
expect_exit 2 "no -m" -- -p 8
expect_exit 2 "unknown flag" -- -m x.gguf --bogus
expect_exit 2 "-r 0" -- -m x.gguf -r 0
expect_exit 2 "-p negative" -- -m x.gguf -p -1
expect_exit 2 "-n not a number" -- -m x.gguf -n 4x
expect_exit 2 "-t missing value" -- -m x.gguf -t
expect_exit 2 "-p 0 -n 0" -- -m x.gguf -p 0 -n 0
expect_exit 2 "stray positional" -- -m x.gguf extra
expect_exit 1 "missing model file" -- -m "$TMP/does-not-exist.gguf" -p 4 -n 2 -r 1
expect_exit 0 "--help" -- --help
if grep -q -- "--json" "$TMP/out"; then ok; else bad "--help does not document --json"; fi

# bench_stream_ab (bench/stream_ab.c): usage and load errors, and that it runs all
# three measurements and prints their lines (no figures checked: a benchmark)
AB=${FRUGAL_STREAM_AB:-}
if [ -n "$AB" ] && [ -x "$AB" ]; then
    "$AB" >/dev/null 2>&1; rc=$?
    if [ "$rc" -eq 2 ]; then ok; else bad "bench_stream_ab without a model: exit $rc, want 2"; fi
    "$AB" "$TMP/does-not-exist.gguf" >/dev/null 2>"$TMP/err"; rc=$?
    if [ "$rc" -eq 1 ] && grep -q "does-not-exist" "$TMP/err"; then ok
    else bad "bench_stream_ab on a missing file: exit $rc ($(head -c 200 "$TMP/err"))"; fi
    AB_M=$SHARED/models/stories260K.gguf
    if [ -f "$AB_M" ]; then
        if "$AB" "$AB_M" -t 2 -r 2 >"$TMP/ab.txt" 2>"$TMP/err" &&
            grep -q "^plain sum over the weights: [0-9.]* GB/s" "$TMP/ab.txt" &&
            grep -q "^decode matmuls: .* % of the sum's rate" "$TMP/ab.txt" &&
            grep -q "^whole decode step: .* tok/s .* % of the sum's rate" "$TMP/ab.txt"; then ok
        else bad "bench_stream_ab: $(head -c 400 "$TMP/ab.txt") $(head -c 300 "$TMP/err")"; fi
    else
        echo "SKIP: $AB_M not found; bench_stream_ab model run skipped"
    fi
else
    echo "SKIP: bench_stream_ab not built (FRUGAL_STREAM_AB unset)"
fi

if ! command -v python3 >/dev/null 2>&1; then
    echo "SKIP: python3 not found; JSON checks skipped"
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ] && exit 0 || exit 1
fi

if [ ! -d "$SHARED/models" ]; then
    echo "SKIP: shared models not found at $SHARED/models; model runs skipped"
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ] && exit 0 || exit 1
fi

# ---------------------------------------------------------------- independent bytes/token
# From the inspect table: every tensor's bytes, less the embedding table, plus one of
# its rows (bytes / rows); with tied embeddings (no output.weight) the table is the
# output matrix and counts whole. Norms/biases count at their file size (all F32 here).
# Expert stacks (*_exps) count expert_used_count / expert_count of their bytes.
expected_bpt() {
    "$FRUGAL" inspect "$1" | python3 -c '
import re, sys
rows = {}
total = 0
lines = sys.stdin.read().splitlines()
meta = {}
for line in lines:
    m = re.match(r"\s*\S+\.(expert_count|expert_used_count)\s+\S+\s+=\s+(\d+)", line)
    if m:
        meta[m.group(1)] = int(m.group(2))
for line in lines:
    m = re.match(r"\s*\d+\s+(\S+)\s+(\S+)\s+\[([0-9, ]+)\]\s+(\d+)\s+\d+\s*$", line)
    if not m:
        continue
    name, shape, nbytes = m.group(1), [int(x) for x in m.group(3).split(",")], int(m.group(4))
    rows[name] = (shape, nbytes)
    if name.endswith("_exps.weight"):
        nbytes = nbytes // meta["expert_count"] * meta["expert_used_count"]
    total += nbytes
shape, emb = rows["token_embd.weight"]
if "output.weight" in rows:
    total += emb // shape[1] - emb
print(total)'
}

# check_json FILE WANT_TESTS BPT: parse and check every documented field
check_json() {
    python3 - "$1" "$2" "$3" <<'EOF'
import json, sys
path, want, bpt = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3])
data = json.load(open(path))
errs = []
if not isinstance(data, list) or [o.get("test") for o in data] != want:
    errs.append("tests %r, want %r" % ([o.get("test") for o in data] if isinstance(data, list) else data, want))
else:
    for o in data:
        for k in ("test", "n_prompt", "n_gen", "n_depth", "kv_read_bytes_per_token", "kv_bytes_per_token", "tokens_per_s", "stddev", "samples_ts", "bytes_per_token",
                  "bandwidth_gbs", "roofline_tokens_per_s", "roofline_pct", "model", "model_desc",
                  "type", "size_bytes", "n_params", "threads", "repetitions"):
            if k not in o:
                errs.append("%s: no field %s" % (o["test"], k))
        if errs:
            break
        if not o["tokens_per_s"] > 0: errs.append("%s: tokens_per_s %r" % (o["test"], o["tokens_per_s"]))
        if not o["stddev"] >= 0: errs.append("%s: stddev %r" % (o["test"], o["stddev"]))
        if len(o["samples_ts"]) != o["repetitions"]: errs.append("%s: samples/repetitions" % o["test"])
        if o["bytes_per_token"] != bpt:
            errs.append("%s: bytes_per_token %d, independently %d" % (o["test"], o["bytes_per_token"], bpt))
        # generation reads the cached K/V rows too: d + (n + 1) / 2 of them per step on average
        name, _, depth = o["test"].partition(" @ d")
        depth = int(depth) if depth else 0
        n = int(name[2:])
        if o["n_depth"] != depth: errs.append("%s: n_depth %r" % (o["test"], o["n_depth"]))
        kvr = o["kv_bytes_per_token"] * (depth + (n + 1) / 2) if name.startswith("tg") else 0
        if abs(o["kv_read_bytes_per_token"] - kvr) > 1e-4 * kvr + 1e-9:
            errs.append("%s: kv_read_bytes_per_token %r, want %r" % (o["test"], o["kv_read_bytes_per_token"], kvr))
        gen_bytes = o["bytes_per_token"] + kvr
        med = lambda v: sorted(v)[len(v) // 2] if len(v) % 2 else 0.5 * (sorted(v)[len(v) // 2 - 1] + sorted(v)[len(v) // 2])
        if not (o["bandwidth_gbs"] and o["bandwidth_gbs"] > 0): errs.append("bandwidth_gbs %r" % o["bandwidth_gbs"])
        else:
            roof = o["bandwidth_gbs"] * 1e9 / gen_bytes
            if abs(o["roofline_tokens_per_s"] - roof) > 1e-4 * roof: errs.append("roofline_tokens_per_s")
            if o["test"].startswith("tg"):
                # paired: a probe before every repetition, medians of the probes and of the ratios
                bws = o["samples_bandwidth_gbs"]
                if len(bws) != o["repetitions"]: errs.append("samples_bandwidth_gbs length")
                if abs(o["bandwidth_gbs"] - med(bws)) > 1e-4 * med(bws): errs.append("bandwidth_gbs not the median probe")
                pct = med([100 * t / (b * 1e9 / gen_bytes) for t, b in zip(o["samples_ts"], bws)])
            else:
                pct = 100 * o["tokens_per_s"] / roof
            if abs(o["roofline_pct"] - pct) > 1e-3 * pct + 1e-9: errs.append("roofline_pct %r vs %r" % (o["roofline_pct"], pct))
            if abs(o["median_tokens_per_s"] - med(o["samples_ts"])) > 1e-4 * o["median_tokens_per_s"]: errs.append("median_tokens_per_s")
        if not (o["threads"] >= 1 and o["n_params"] > 0 and o["size_bytes"] > 0 and o["type"]):
            errs.append("%s: model fields" % o["test"])
        if o["test"].startswith("pp") and (o["n_prompt"], o["n_gen"]) != (n, 0): errs.append("pp counts")
        if o["test"].startswith("tg") and (o["n_prompt"], o["n_gen"]) != (0, n): errs.append("tg counts")
for e in errs:
    print(e)
sys.exit(1 if errs else 0)
EOF
}

run_model() { # MODEL [extra flags...]
    local model=$SHARED/models/$1
    shift
    if [ ! -f "$model" ]; then echo "SKIP: $model not found"; return; fi
    local bpt
    bpt=$(expected_bpt "$model")
    if [ -z "$bpt" ]; then bad "$model: could not parse inspect output"; return; fi
    if "$FRUGAL" bench -m "$model" -p 8 -n 4 -r 2 -t 2 --json "$@" >"$TMP/b.json" 2>"$TMP/err"; then
        if check_json "$TMP/b.json" "pp8,tg4" "$bpt" >"$TMP/chk"; then ok
        else bad "$(basename "$model"): $(cat "$TMP/chk")"; fi
    else
        bad "$(basename "$model"): bench failed: $(head -c 300 "$TMP/err")"
    fi
}

run_model stories260K.gguf                  # F32, ffn 172; the full-size bandwidth probe
run_model synth-spm-q4_0.gguf --bw-mib 64   # Q4_0 layers, Q6_K output
run_model synth-gpt2-tied-q8_0.gguf --bw-mib 64 # tied embeddings: the table counts once
run_model synth-qwen2-q8_0.gguf --bw-mib 64 # Q/K/V biases
run_model ../arch/models/synth-qwen3moe-q8_0.gguf --bw-mib 64 # experts: 2 of 8 per token

M=$SHARED/models/stories260K.gguf
if [ -f "$M" ]; then
    bpt=$(expected_bpt "$M")
    # -p 0 / -n 0 skip their test
    if "$FRUGAL" bench -m "$M" -p 0 -n 3 -r 1 --bw-mib 16 --json >"$TMP/tg.json" 2>"$TMP/err" &&
        check_json "$TMP/tg.json" "tg3" "$bpt" >"$TMP/chk"; then ok
    else bad "-p 0: $(cat "$TMP/chk" "$TMP/err" 2>/dev/null | head -c 300)"; fi
    if "$FRUGAL" bench -m "$M" -p 5 -n 0 -r 1 --bw-mib 16 --json >"$TMP/pp.json" 2>"$TMP/err" &&
        check_json "$TMP/pp.json" "pp5" "$bpt" >"$TMP/chk"; then ok
    else bad "-n 0: $(cat "$TMP/chk" "$TMP/err" 2>/dev/null | head -c 300)"; fi
    # -d: both tests start on a cache of that many tokens, named "@ dN", KV reads counted
    if "$FRUGAL" bench -m "$M" -p 4 -n 3 -d 20 -r 2 --bw-mib 16 --json >"$TMP/d.json" 2>"$TMP/err" &&
        check_json "$TMP/d.json" "pp4 @ d20,tg3 @ d20" "$bpt" >"$TMP/chk"; then ok
    else bad "-d 20: $(cat "$TMP/chk" "$TMP/err" 2>/dev/null | head -c 300)"; fi
    # the human table: header, one row per test, the roofline lines
    if "$FRUGAL" bench -m "$M" -p 4 -n 2 -r 1 --bw-mib 16 >"$TMP/h.txt" 2>"$TMP/err" &&
        grep -q "| model" "$TMP/h.txt" && grep -q "| *pp4 |" "$TMP/h.txt" && grep -q "| *tg2 |" "$TMP/h.txt" &&
        grep -q "read bandwidth: .* GB/s" "$TMP/h.txt" && grep -q "tg2: .* of the roofline" "$TMP/h.txt"; then ok
    else bad "human output: $(head -c 600 "$TMP/h.txt") $(head -c 300 "$TMP/err")"; fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
