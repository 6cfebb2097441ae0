#!/usr/bin/env bash
# test_serve.sh - end-to-end tests of `frugal serve` on loopback:
#  - CLI: usage errors, chat template rendering (--render) for every family;
#  - (a) the official `openai` npm package (v4) against the server (tests/serve/openai_client.mjs);
#  - (b)-(d) raw HTTP (tests/serve/http_checks.py): every error path, slow-drip
#    bodies, a client vanishing mid-stream, batched == sequential output, 64 clients
#    x 8 rounds with a resident-memory check;
#  - graceful shutdown on SIGINT with a stream in flight.
# Skips (exit 77) when the server was built without libmicrohttpd/cJSON, when node,
# npm or python3 is missing, or when the shared test model is absent.
# Env: FRUGAL (the CLI), FRUGAL_SHARED_DIR, FRUGAL_TMP (scratch; the npm package is
# installed under $FRUGAL_TMP/node and reused by later runs).
set -u

FRUGAL=${FRUGAL:?FRUGAL must point at the frugal CLI}
SHARED=${FRUGAL_SHARED_DIR:-}
HERE=$(cd "$(dirname "$0")" && pwd)
MODEL=$SHARED/models/fortune-3m-q8_0.gguf
SCRATCH=${FRUGAL_TMP:-/tmp}
TMP=$SCRATCH/test_serve.$$

if "$FRUGAL" serve --help 2>&1 | grep -q "built without server support"; then
    echo "SKIP: frugal was built without server support (libmicrohttpd-dev, libcjson-dev)"; exit 77
fi
for tool in node npm python3 curl; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool not found"; exit 77; }
done
[ -f "$MODEL" ] || { echo "SKIP: $MODEL not found"; exit 77; }

mkdir -p "$TMP" || exit 1
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# expect_exit CODE STDERR_PATTERN ARGS...
expect_exit() {
    local want=$1 pat=$2; shift 2
    timeout 30 "$FRUGAL" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
    local rc=$?
    if [ "$rc" -ne "$want" ]; then bad "frugal $* -> exit $rc, want $want ($(head -c 300 "$TMP/err"))"; return; fi
    if [ -n "$pat" ] && ! grep -qE -- "$pat" "$TMP/err"; then bad "frugal $*: stderr does not match '$pat'"; return; fi
    ok
}

# start_server LOGNAME ARGS...: start an instance on a free port; sets SPID and SPORT.
start_server() {
    local log=$TMP/$1.log; shift
    "$FRUGAL" serve -m "$MODEL" --port 0 -t 1 "$@" 2>"$log" &
    SPID=$!
    PIDS+=("$SPID")
    SPORT=
    for _ in $(seq 1 100); do
        SPORT=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$log" | grep -o '[0-9]*$')
        [ -n "$SPORT" ] && curl -sf "http://127.0.0.1:$SPORT/health" >/dev/null && return 0
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    bad "server did not start: $(cat "$log")"
    return 1
}

# ---------------------------------------------------------------- CLI
expect_exit 2 "-m MODEL is required" serve
expect_exit 2 "chat-template" serve -m "$MODEL" --chat-template nope
expect_exit 2 "max-body" serve -m "$MODEL" --max-body lots
expect_exit 1 "" serve -m "$TMP/missing.gguf"

# chat templates, rendered without a model
cat >"$TMP/chat.json" <<'EOF'
{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
 {"role": "assistant", "content": "Hello."}, {"role": "user", "content": [{"type": "text", "text": "Joke?"}]}]}
EOF
render_is() { # render_is NAME EXPECTED
    local got
    got=$("$FRUGAL" serve --chat-template "$1" --render "$TMP/chat.json" 2>&1)
    if [ "$got" == "$2" ]; then ok; else bad "template $1 rendered:"$'\n'"$got"$'\n'"want:"$'\n'"$2"; fi
}
render_is chatml $'<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nJoke?<|im_end|>\n<|im_start|>assistant'
render_is llama3 $'<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nJoke?<|eot_id|><|start_header_id|>assistant<|end_header_id|>'
render_is llama2 $'[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Joke? [/INST]'
render_is mistral $'[INST] Be brief.\n\nHi [/INST]Hello.</s>[INST] Joke? [/INST]'
render_is phi3 $'<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello.<|end|>\n<|user|>\nJoke?<|end|>\n<|assistant|>'
render_is gemma $'<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n<start_of_turn>user\nJoke?<end_of_turn>\n<start_of_turn>model'
render_is zephyr $'<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello.</s>\n<|user|>\nJoke?</s>\n<|assistant|>'
# the test model has no tokenizer.chat_template: ChatML with a warning
expect_exit 0 "no chat template; using chatml" serve -m "$MODEL" --render "$TMP/chat.json"
echo '{"messages": 3}' >"$TMP/bad.json"
expect_exit 1 "must be an array" serve --chat-template chatml --render "$TMP/bad.json"

# ---------------------------------------------------------------- servers
# (64 clients at once, and the previous round's connections may still be closing: no per-address cap)
start_server a --max-body 64K --max-prompt-tokens 200 --idle-timeout 2 -c 2048 --max-conns-per-ip 0 || exit 1
PA=$SPORT PIDA=$SPID
start_server b --api-key sekrit --slots 1 --queue 1 || exit 1
PB=$SPORT
if grep -q "no chat template; using chatml" "$TMP/a.log"; then ok; else bad "no ChatML fallback warning at start-up"; fi
curl -s "http://127.0.0.1:$PB/health" | grep -q '"ok"' && ok || bad "/health"

# (a) the official openai package
NODE_DIR=$SCRATCH/node
if [ ! -f "$NODE_DIR/node_modules/openai/package.json" ]; then
    mkdir -p "$NODE_DIR"
    (cd "$NODE_DIR" && timeout 240 npm install --no-audit --no-fund --silent openai@4 >"$TMP/npm.log" 2>&1)
fi
if [ -f "$NODE_DIR/node_modules/openai/package.json" ]; then
    timeout 120 node "$HERE/serve/openai_client.mjs" "http://127.0.0.1:$PA/v1" "$NODE_DIR" >"$TMP/node.out" 2>&1
    grep -E "^(FAIL|node:)" "$TMP/node.out"
    pass=$((pass + $(grep -c '^PASS' "$TMP/node.out")))
    fail=$((fail + $(grep -c '^FAIL' "$TMP/node.out")))
    grep -q "^node: 0 failed" "$TMP/node.out" || bad "openai client did not finish: $(tail -5 "$TMP/node.out")"
else
    bad "npm install openai@4 failed: $(tail -3 "$TMP/npm.log" 2>/dev/null)"
fi

# (b) error paths, (c) batching, (d) load
SANITIZED=
grep -q "__asan_init\|__tsan_init" "$FRUGAL" && SANITIZED=sanitized  # an ASan or TSan build
timeout 240 python3 "$HERE/serve/http_checks.py" "$PA" "$PIDA" "$PB" sekrit $SANITIZED >"$TMP/py.out" 2>&1
grep -E "^(FAIL|SKIP|rss_kib|python:)" "$TMP/py.out"
pass=$((pass + $(grep -c '^PASS' "$TMP/py.out")))
fail=$((fail + $(grep -c '^FAIL' "$TMP/py.out")))
grep -q "^python: 0 failed" "$TMP/py.out" || bad "http checks did not finish: $(tail -5 "$TMP/py.out")"

# graceful shutdown: SIGINT with a stream in flight -> the stream ends, exit 0
curl -sN "http://127.0.0.1:$PA/v1/completions" -d '{"prompt":"Once","max_tokens":2000,"stream":true,"logit_bias":{"2":-100}}' \
    >"$TMP/inflight.out" 2>/dev/null &
CURL=$!
for _ in $(seq 1 50); do grep -q "^data: " "$TMP/inflight.out" && break; sleep 0.1; done
kill -INT "$PIDA"
rc=124
for _ in $(seq 1 150); do
    if ! kill -0 "$PIDA" 2>/dev/null; then wait "$PIDA"; rc=$?; break; fi
    sleep 0.1
done
[ "$rc" -eq 0 ] && ok || bad "SIGINT: exit $rc"
grep -q "SIGINT, shutting down" "$TMP/a.log" && ok || bad "no shutdown message: $(tail -2 "$TMP/a.log")"
wait "$CURL" 2>/dev/null
grep -q "shutting down" "$TMP/inflight.out" && ok || bad "in-flight stream not ended with an error event"

echo "test_serve: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
