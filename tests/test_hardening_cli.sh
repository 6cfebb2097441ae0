#!/usr/bin/env bash
# test_hardening_cli.sh - file-handling findings of issue 23, through the CLI:
#  - outputs (quantize, mkmodel -o, perplexity --save-logits) refuse a target that is
#    a FIFO or a device and leave it as it was; a symlink planted at OUT.tmp is never
#    written through; SIGINT/SIGTERM during quantize leave no temp file behind;
#  - a FIFO given as -m is refused at once (no blocking open);
#  - -t above the CPU count is lowered with a warning;
#  - a model file truncated while `run` uses it (repack, --no-repack, --mem) gives
#    exit 1 and a message naming the file, and `serve` answers 500 JSON and keeps
#    serving (/health).
# Needs the shared models (skips with 77 otherwise). Env: FRUGAL, FRUGAL_SHARED_DIR, FRUGAL_TMP.
set -u
FRUGAL=${FRUGAL:?FRUGAL must point at the frugal CLI}
SHARED=${FRUGAL_SHARED_DIR:-}
Q8=$SHARED/models/fortune-3m-q8_0.gguf
F32=$SHARED/models/fortune-3m-f32.gguf
VOCAB=$SHARED/vocab/ggml-vocab-llama-spm.gguf
TXT=$SHARED/text/fortunes-val.txt
TMP=${FRUGAL_TMP:-/tmp}/test_hardening_cli.$$
for f in "$Q8" "$F32" "$VOCAB" "$TXT"; do [ -f "$f" ] || { echo "SKIP: $f not found"; exit 77; }; done
mkdir -p "$TMP" || exit 1
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
no_temp() { ! ls "$1".tmp* >/dev/null 2>&1; }

# expect_exit CODE STDERR_PATTERN ARGS...
expect_exit() {
    local want=$1 pat=$2; shift 2
    timeout 60 "$FRUGAL" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
    local rc=$?
    if [ "$rc" -ne "$want" ]; then bad "frugal $* -> exit $rc, want $want ($(head -c 300 "$TMP/err"))"; return 1; fi
    if [ -n "$pat" ] && ! grep -qE -- "$pat" "$TMP/err"; then bad "frugal $*: stderr '$(head -c 300 "$TMP/err")' does not match '$pat'"; return 1; fi
    ok
}

# ---------------------------------------------------------------- output targets (finding 3)
mkfifo "$TMP/fifo.gguf"
expect_exit 1 "fifo.gguf exists and is a FIFO" quantize "$F32" "$TMP/fifo.gguf" --type q8_0
[ -p "$TMP/fifo.gguf" ] && ok || bad "quantize replaced the FIFO target"
no_temp "$TMP/fifo.gguf" && ok || bad "quantize to a FIFO left a temp file"
expect_exit 1 "is a FIFO" mkmodel --arch llama --dim 64 --layers 1 --heads 4 --kv-heads 4 --ffn 128 \
    --vocab-from "$VOCAB" --type f32 -o "$TMP/fifo.gguf"
[ -p "$TMP/fifo.gguf" ] && ok || bad "mkmodel replaced the FIFO target"
mkfifo "$TMP/fifo.lp"
expect_exit 1 "is a FIFO" perplexity -m "$Q8" -f "$TXT" -c 64 --chunks 1 --save-logits "$TMP/fifo.lp"
[ -p "$TMP/fifo.lp" ] && ok || bad "perplexity --save-logits replaced the FIFO target"
if [ "$(id -u)" = 0 ] && mknod "$TMP/full" c 1 7 2>/dev/null; then  # a /dev/full of our own
    expect_exit 1 "is a device" quantize "$F32" "$TMP/full" --type q8_0
    [ -c "$TMP/full" ] && ok || bad "quantize replaced the device node"
else
    echo "note: not root (or no mknod): device-node target case skipped"
fi
mkdir "$TMP/adir"
expect_exit 1 "is a directory" quantize "$F32" "$TMP/adir" --type q8_0

# a symlink planted at the old fixed temp name is not followed
echo precious >"$TMP/victim"
ln -s "$TMP/victim" "$TMP/o.gguf.tmp"
expect_exit 0 "" quantize "$F32" "$TMP/o.gguf" --type q8_0
[ "$(cat "$TMP/victim")" = precious ] && ok || bad "quantize wrote through a symlink at OUT.tmp"
expect_exit 0 "" inspect "$TMP/o.gguf"
[ -L "$TMP/o.gguf.tmp" ] && ok || bad "the planted symlink was touched"
rm -f "$TMP/o.gguf.tmp"
no_temp "$TMP/o.gguf" && ok || bad "quantize left a temp file"

# ---------------------------------------------------------------- signals during quantize (finding 8)
"$FRUGAL" mkmodel --arch llama --dim 512 --layers 4 --heads 8 --kv-heads 8 --ffn 2048 --vocab-from "$VOCAB" \
    --type f32 -o "$TMP/big.gguf" --seed 3 >/dev/null 2>&1 || bad "mkmodel of the big model failed"
# a background job of a non-interactive shell starts with SIGINT ignored: give
# quantize the default action back, as it has when run from a terminal
dfl() { # (always run in the background: exec keeps the PID)
    if env --default-signal=INT true 2>/dev/null; then exec env --default-signal=INT,TERM "$@"
    else exec python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])' "$@"; fi
}
for sig in INT TERM; do
    caught=0
    rm -f "$TMP/bigq.gguf"
    for attempt in 1 2 3; do
        dfl "$FRUGAL" quantize "$TMP/big.gguf" "$TMP/bigq.gguf" --type q4_k -t 1 >/dev/null 2>&1 &
        QP=$!
        for _ in $(seq 1 400); do ls "$TMP"/bigq.gguf.tmp* >/dev/null 2>&1 && break; sleep 0.01; done
        if ls "$TMP"/bigq.gguf.tmp* >/dev/null 2>&1; then
            kill -$sig "$QP"; wait "$QP"; rc=$?
            caught=1
            break
        fi
        wait "$QP"
        rm -f "$TMP/bigq.gguf"
    done
    if [ "$caught" = 1 ]; then
        want=$((128 + $(kill -l $sig)))
        [ "$rc" -eq "$want" ] && ok || bad "SIG$sig during quantize: exit $rc, want $want"
        no_temp "$TMP/bigq.gguf" && ok || bad "SIG$sig during quantize left $(ls "$TMP"/bigq.gguf.tmp*)"
        [ ! -e "$TMP/bigq.gguf" ] && ok || bad "SIG$sig during quantize left a target"
    else
        bad "never saw quantize's temp file (it finished in under 4 s three times)"
    fi
done

# ---------------------------------------------------------------- FIFO as the model (finding 9)
mkfifo "$TMP/model.fifo"
expect_exit 1 "model.fifo.*not a regular file \(a FIFO\)" run -m "$TMP/model.fifo" -p hi -n 1

# ---------------------------------------------------------------- -t above the CPU count
expect_exit 0 "-t 4096: only [0-9]+ CPUs? (is|are) available to this process; using [0-9]+ threads" \
    run -m "$Q8" -p "The moon" -n 4 -t 4096 -s 1

# ---------------------------------------------------------------- --mem keeps peak RSS under it (finding 10)
# an untied model's embedding rows are read from the mapping a token at a time;
# each read used to leave 64 KiB of mapped pages behind (46.9 MiB under --mem 40M)
SPM=$SHARED/models/synth-spm-f16.gguf
if grep -q "__asan_init" "$FRUGAL"; then
    echo "note: sanitizer build: RSS figures are meaningless, --mem RSS case skipped"
elif [ -f "$SPM" ]; then
    "$FRUGAL" run -m "$SPM" -p "Hello world" -n 400 -s 1 --mem 40M --json >"$TMP/mem.json" 2>"$TMP/mem.err"
    peak=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["timings"]["peak_rss_bytes"])' "$TMP/mem.json" 2>/dev/null)
    if [ -n "$peak" ] && [ "$peak" -le $((40 * 1048576)) ]; then ok
    else bad "--mem 40M: peak RSS ${peak:-?} bytes is over the budget ($(tail -c 200 "$TMP/mem.err"))"; fi
    echo "mem_40M_peak_rss_mib $(( ${peak:-0} / 1048576 ))"
fi

# ---------------------------------------------------------------- truncated while mapped (finding 4)
# run_truncate MODE...: generate "forever", truncate the file once text flows; exit 1 naming it
run_truncate() {
    cp "$Q8" "$TMP/t.gguf" && chmod u+w "$TMP/t.gguf"
    : >"$TMP/t.out"
    timeout 120 "$FRUGAL" run -m "$TMP/t.gguf" -p "Once" -n 1000000 -c 2048 --kv-policy window:256 -s 1 "$@" \
        >"$TMP/t.out" 2>"$TMP/t.err" &
    local p=$!
    for _ in $(seq 1 600); do [ -s "$TMP/t.out" ] && break; sleep 0.05; done
    truncate -s 1000000 "$TMP/t.gguf"
    wait "$p"
    local rc=$?
    if [ "$rc" -eq 1 ] && grep -q "t.gguf: the model file was truncated while in use" "$TMP/t.err"; then ok
    else bad "truncated under run $*: exit $rc (want 1), stderr: $(tail -c 300 "$TMP/t.err")"; fi
}
run_truncate
run_truncate --no-repack
run_truncate --mem 14M

if "$FRUGAL" serve --help 2>&1 | grep -q "built without server support" || ! command -v curl >/dev/null; then
    echo "note: no server support or no curl: the serve truncation case skipped"
else
    cp "$Q8" "$TMP/s.gguf" && chmod u+w "$TMP/s.gguf"
    "$FRUGAL" serve -m "$TMP/s.gguf" --port 0 -t 1 -c 256 --no-repack 2>"$TMP/s.log" &
    SP=$!
    PIDS+=("$SP")
    port=
    for _ in $(seq 1 100); do
        port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$TMP/s.log" | grep -o '[0-9]*$')
        [ -n "$port" ] && break
        sleep 0.1
    done
    U=http://127.0.0.1:$port
    REQ='{"prompt":"The moon","max_tokens":8,"temperature":0}'
    code=$(curl -s -o "$TMP/r1" -w '%{http_code}' "$U/v1/completions" -d "$REQ")
    [ "$code" = 200 ] && ok || bad "serve before truncation: $code $(cat "$TMP/r1")"
    truncate -s 1000000 "$TMP/s.gguf"
    code=$(curl -s -o "$TMP/r2" -w '%{http_code}' "$U/v1/completions" -d "$REQ")
    if [ "$code" = 500 ] && grep -q '"error"' "$TMP/r2" && grep -q 's.gguf: the model file was truncated' "$TMP/r2"; then ok
    else bad "serve after truncation: $code $(cat "$TMP/r2")"; fi
    code=$(curl -s -o /dev/null -w '%{http_code}' "$U/health")
    [ "$code" = 200 ] && kill -0 "$SP" 2>/dev/null && ok || bad "server not alive after the truncation ($code)"
fi

echo "test_hardening_cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
