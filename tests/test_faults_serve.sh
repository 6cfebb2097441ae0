#!/usr/bin/env bash
# test_faults_serve.sh - fault injection over the serve path (core/fault.h through
# FRUGAL_FAULT): a clean run counts the hooked allocation and I/O calls of
# "start, answer one completion, stop"; then for every N up to that count the
# N-th call of each kind fails. Each run must either refuse to start with exit 1
# and a message, or answer the request with 200 or a 5xx JSON error and keep
# answering /health; never crash. Skips (77) without server support, curl or the
# shared model. Env: FRUGAL, FRUGAL_SHARED_DIR, FRUGAL_TMP.
set -u
FRUGAL=${FRUGAL:?FRUGAL must point at the frugal CLI}
MODEL=${FRUGAL_SHARED_DIR:-}/models/fortune-3m-q8_0.gguf
TMP=${FRUGAL_TMP:-/tmp}/test_faults_serve.$$
if "$FRUGAL" serve --help 2>&1 | grep -q "built without server support"; then echo "SKIP: no server support"; exit 77; fi
command -v curl >/dev/null || { echo "SKIP: curl not found"; exit 77; }
[ -f "$MODEL" ] || { echo "SKIP: $MODEL not found"; exit 77; }
mkdir -p "$TMP" || exit 1
trap 'rm -rf "$TMP"' EXIT
REQ='{"prompt":"The moon","max_tokens":4,"temperature":0}'
fail=0
bad() { fail=1; echo "FAIL: $*"; }

# one_run ENV...: start, one request, /health, SIGTERM. Sets R_START (port or
# "exit:RC"), R_CODE (request status), R_HEALTH, R_RC (exit status after SIGTERM).
one_run() {
    rm -f "$TMP/log" # else the port loop may read the last run's log before the redirect truncates it
    env "$@" "$FRUGAL" serve -m "$MODEL" --port 0 -t 1 -c 128 --slots 2 2>"$TMP/log" &
    local p=$! port=
    for _ in $(seq 1 400); do  # 20 s: sanitizer builds on a busy machine start slowly
        port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$TMP/log" | grep -o '[0-9]*$')
        [ -n "$port" ] && break
        kill -0 "$p" 2>/dev/null || break
        sleep 0.05
    done
    if [ -z "$port" ]; then
        kill -0 "$p" 2>/dev/null && { kill -KILL "$p"; echo "note: no port after 20 s ($*)"; }
        wait "$p"; R_RC=$?; R_START="exit:$R_RC"; R_CODE=; R_HEALTH=; return
    fi
    R_START=$port
    R_CODE=$(curl -s -m 30 -o "$TMP/body" -w '%{http_code}' "http://127.0.0.1:$port/v1/completions" -d "$REQ")
    # one injected failure may land in one of the two /health requests (a 5xx JSON
    # error then), never in both: the other shows the server still serves
    R_HEALTH1=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")
    R_HEALTH=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")
    kill -TERM "$p"; wait "$p"; R_RC=$?
}

one_run FRUGAL_FAULT_COUNT=1
[ "$R_CODE" = 200 ] && [ "$R_RC" = 0 ] || bad "clean run: start $R_START, request $R_CODE, exit $R_RC: $(tail -3 "$TMP/log")"
counts=$(grep -o 'fault calls: alloc [0-9]* io [0-9]*' "$TMP/log")
A=$(echo "$counts" | awk '{print $4}') I=$(echo "$counts" | awk '{print $6}')
[ -n "$A" ] && [ -n "$I" ] || { echo "FAIL: no call counts in the log: $(tail -3 "$TMP/log")"; exit 1; }
for kind in alloc io; do
    n_max=$A; [ $kind = io ] && n_max=$I
    refused=0 errors=0 served=0
    for n in $(seq 1 "$n_max"); do
        one_run FRUGAL_FAULT=$kind:$n
        case $R_START in
        exit:1) if grep -q "frugal: error" "$TMP/log"; then refused=$((refused + 1))
                else bad "$kind:$n: exit 1 without a message"; fi ;;
        exit:*) bad "$kind:$n: start-up ended with ${R_START#exit:}: $(tail -c 300 "$TMP/log")" ;;
        *)
            if [ "$R_CODE" = 200 ]; then served=$((served + 1))
            elif [ "${R_CODE:0:1}" = 5 ] && grep -q '"error"' "$TMP/body"; then errors=$((errors + 1))
            else bad "$kind:$n: request answered '$R_CODE': $(head -c 200 "$TMP/body")"; fi
            if [ "$R_HEALTH1" != 200 ] || [ "$R_HEALTH" != 200 ]; then
                h5=$R_HEALTH1; [ "$R_HEALTH1" = 200 ] && h5=$R_HEALTH
                [ "$R_HEALTH1$R_HEALTH" = "200$h5" ] || [ "$R_HEALTH1$R_HEALTH" = "${h5}200" ] &&
                    [ "${h5:0:1}" = 5 ] || bad "$kind:$n: /health answered '$R_HEALTH1' then '$R_HEALTH' after the request"
            fi
            [ "$R_RC" = 0 ] || bad "$kind:$n: exit $R_RC after SIGTERM: $(tail -c 300 "$TMP/log")" ;;
        esac
    done
    echo "serve $kind: $n_max calls; failing each: $refused refused to start (exit 1), $errors requests got a 5xx JSON error, $served served"
done
echo "test_faults_serve: $([ $fail = 0 ] && echo ok || echo FAILED)"
exit $fail
