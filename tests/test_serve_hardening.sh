#!/usr/bin/env bash
# test_serve_hardening.sh - the server findings of issue 23 (tests/serve/hardening_checks.py):
# slow-drip headers cut at --header-timeout, --max-conns-per-ip, a 1 MB prompt refused
# before tokenization, half-closed clients answered, seed range, trailing JSON data,
# NUL in strings, case-insensitive Bearer. Skips (77) without server support, python3
# or the shared model. Env: FRUGAL, FRUGAL_SHARED_DIR, FRUGAL_TMP.
set -u
FRUGAL=${FRUGAL:?FRUGAL must point at the frugal CLI}
SHARED=${FRUGAL_SHARED_DIR:-}
HERE=$(cd "$(dirname "$0")" && pwd)
MODEL=$SHARED/models/fortune-3m-q8_0.gguf
TMP=${FRUGAL_TMP:-/tmp}/test_serve_hardening.$$

if "$FRUGAL" serve --help 2>&1 | grep -q "built without server support"; then
    echo "SKIP: frugal was built without server support (libmicrohttpd-dev, libcjson-dev)"; exit 77
fi
command -v python3 >/dev/null || { echo "SKIP: python3 not found"; exit 77; }
[ -f "$MODEL" ] || { echo "SKIP: $MODEL not found"; exit 77; }
mkdir -p "$TMP" || exit 1
SPID=
cleanup() {
    [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

"$FRUGAL" serve -m "$MODEL" --port 0 -t 1 -c 512 --api-key sekrit --header-timeout 2 --max-conns-per-ip 8 \
    --max-prompt-tokens 200 --max-body 2M 2>"$TMP/log" &
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
grep -q "__asan_init" "$FRUGAL" && SANITIZED=sanitized
timeout 300 python3 "$HERE/serve/hardening_checks.py" "$PORT" "$SPID" sekrit $SANITIZED | tee "$TMP/py.out"
fails=$(grep -c '^FAIL' "$TMP/py.out")
grep -q "^python: 0 failed" "$TMP/py.out" || { echo "FAIL: checks did not finish cleanly ($fails failed)"; exit 1; }
kill -0 "$SPID" 2>/dev/null || { echo "FAIL: server died: $(tail -5 "$TMP/log")"; exit 1; }
if grep -qiE "sanitizer|segfault|abort" "$TMP/log"; then echo "FAIL: server log: $(grep -iE 'sanitizer|abort' "$TMP/log" | head -3)"; exit 1; fi
echo "test_serve_hardening: ok"
