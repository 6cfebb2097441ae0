#!/usr/bin/env bash
# test_serve_hostile.sh - 1000 hostile connections (idle, slow, oversized,
# malformed, disconnecting; tests/serve/hostile.py) at a running `frugal serve`
# while normal requests keep being answered; afterwards the server's open file
# descriptors equal the baseline, RSS is within 10 % of it, and its log shows no
# crash. HOSTILE_N overrides the count. Skips (77) without server support,
# python3, the shared model or enough file descriptors.
set -u
FRUGAL=${FRUGAL:?FRUGAL must point at the frugal CLI}
SHARED=${FRUGAL_SHARED_DIR:-}
HERE=$(cd "$(dirname "$0")" && pwd)
MODEL=$SHARED/models/fortune-3m-q8_0.gguf
TMP=${FRUGAL_TMP:-/tmp}/test_serve_hostile.$$
N=${HOSTILE_N:-1000}

if "$FRUGAL" serve --help 2>&1 | grep -q "built without server support"; then
    echo "SKIP: frugal was built without server support (libmicrohttpd-dev, libcjson-dev)"; exit 77
fi
command -v python3 >/dev/null || { echo "SKIP: python3 not found"; exit 77; }
[ -f "$MODEL" ] || { echo "SKIP: $MODEL not found"; exit 77; }
ulimit -n 4096 2>/dev/null
[ "$(ulimit -n)" -ge $((N + 200)) ] || { echo "SKIP: ulimit -n $(ulimit -n) is below $((N + 200))"; exit 77; }
mkdir -p "$TMP" || exit 1
SPID=
cleanup() {
    [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

"$FRUGAL" serve -m "$MODEL" --port 0 -t 1 -c 512 --header-timeout 3 --idle-timeout 3 --max-conns-per-ip 64 --queue 256 \
    2>"$TMP/log" &
SPID=$!
PORT=
for _ in $(seq 1 100); do
    PORT=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$TMP/log" | grep -o '[0-9]*$')
    [ -n "$PORT" ] && break
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$PORT" ]; then echo "FAIL: server did not start: $(cat "$TMP/log")"; exit 1; fi
SANITIZED=
grep -q "__asan_init\|__tsan_init" "$FRUGAL" && SANITIZED=sanitized
timeout 300 python3 "$HERE/serve/hostile.py" "$PORT" "$SPID" "$N" $SANITIZED | tee "$TMP/py.out"
grep -q "^python: 0 failed" "$TMP/py.out" || { echo "FAIL: hostile checks failed"; exit 1; }
kill -0 "$SPID" 2>/dev/null || { echo "FAIL: server died: $(tail -5 "$TMP/log")"; exit 1; }
if grep -qiE "sanitizer|segfault|abort|panic" "$TMP/log"; then echo "FAIL: server log: $(grep -iE 'sanitizer|abort|panic' "$TMP/log" | head -3)"; exit 1; fi
echo "test_serve_hostile: ok ($N connections)"
