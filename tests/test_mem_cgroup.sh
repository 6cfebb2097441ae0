#!/usr/bin/env bash
# test_mem_cgroup.sh - the hard memory cap: a ~600 MB model runs with --mem 256M
# inside a 300 MB memory cgroup, exits 0 without an OOM kill and generates the same
# tokens as the uncapped run outside the cgroup; without --mem it still runs (kept in
# the file mapping instead of repacked into RAM). Needs root and a writable memory
# controller (cgroup v1 /sys/fs/cgroup/memory, or v2 with memory in
# /sys/fs/cgroup/cgroup.controllers); skips (77) with a message otherwise.
# Env: $FRUGAL (CLI), $FRUGAL_SHARED_DIR (vocabulary), $FRUGAL_TMP (scratch).
set -u

FRUGAL=${FRUGAL:?set FRUGAL to the frugal CLI}
SHARED=${FRUGAL_SHARED_DIR:-$(dirname "$0")/../../shared}
TMP=${FRUGAL_TMP:-/tmp}/test_mem_cgroup.$$
VOCAB=$SHARED/vocab/ggml-vocab-llama-spm.gguf
LIMIT=$((300 * 1024 * 1024))
CG=""

skip() { echo "SKIP: $*"; exit 77; }
cleanup() {
    rm -rf "$TMP"
    # the cgroup is empty once its one process exited; rmdir removes it
    if [ -n "$CG" ] && [ -d "$CG" ]; then rmdir "$CG" 2>/dev/null; fi
}

[ "$(id -u)" = 0 ] || skip "not root: cannot create a memory cgroup"
[ -f "$VOCAB" ] || skip "vocabulary $VOCAB absent"

# --- find a writable memory controller
if [ -w /sys/fs/cgroup/memory ] && [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
    CGV=1
    CG=/sys/fs/cgroup/memory/frugal_test_$$
elif [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw memory /sys/fs/cgroup/cgroup.controllers \
     && [ -w /sys/fs/cgroup ]; then
    CGV=2
    CG=/sys/fs/cgroup/frugal_test_$$
else
    skip "no writable cgroup v1 or v2 memory controller"
fi
mkdir -p "$TMP"
trap cleanup EXIT
mkdir "$CG" 2>/dev/null || { CG=""; skip "cannot create a cgroup under the memory controller"; }
if [ "$CGV" = 1 ]; then
    echo "$LIMIT" >"$CG/memory.limit_in_bytes" || skip "cannot set memory.limit_in_bytes"
    # no swap here, but where there is, forbid it: the cap must hold in RAM
    [ -f "$CG/memory.memsw.limit_in_bytes" ] && echo "$LIMIT" >"$CG/memory.memsw.limit_in_bytes" 2>/dev/null
else
    echo "$LIMIT" >"$CG/memory.max" || skip "cannot set memory.max"
    [ -f "$CG/memory.swap.max" ] && echo 0 >"$CG/memory.swap.max"
fi

# --- the model: 16 layers of ~45 MB (Q8_0), ~620 MB in all
M=$TMP/big.gguf
"$FRUGAL" mkmodel --dim 2048 --layers 16 --heads 16 --kv-heads 4 --ffn 5632 --type q8_0 \
    --vocab-from "$VOCAB" -o "$M" >/dev/null || { echo "FAIL: mkmodel"; exit 1; }
size=$(stat -c %s "$M")
echo "model: $((size / 1048576)) MiB"
[ "$size" -gt $((500 * 1024 * 1024)) ] || { echo "FAIL: model only $size bytes"; exit 1; }

fail=0
bad() { fail=1; echo "FAIL: $*"; }
ARGS=(run -m "$M" -p "Hello" -n 8 --temp 0 -c 256 -t 2 --json)

# --- uncapped reference, outside the cgroup
"$FRUGAL" "${ARGS[@]}" >"$TMP/ref.json" 2>"$TMP/ref.err" || bad "uncapped run failed: $(cat "$TMP/ref.err")"
# drop the model's page cache so the capped run starts cold (charged to nobody)
dd if=/dev/null of="$M" oflag=nocache conv=notrunc,fdatasync count=0 status=none 2>/dev/null

# --- capped run: move a shell into the cgroup, then exec frugal in it
sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$CG" \
    "$FRUGAL" "${ARGS[@]}" --mem 256M --stats >"$TMP/cap.json" 2>"$TMP/cap.err"
rc=$?
[ "$rc" = 0 ] || bad "capped run exited $rc: $(tail -c 600 "$TMP/cap.err")"
grep -E "io|peak RSS" "$TMP/cap.err" | sed 's/^/  /'

# --- capped run without --mem: the load-time repack (an anonymous copy of the
# weights) would not fit, so the model must stay in the file mapping and run, slowly,
# instead of being OOM-killed
sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$CG" \
    "$FRUGAL" "${ARGS[@]}" >"$TMP/nomem.json" 2>"$TMP/nomem.err"
rc=$?
[ "$rc" = 0 ] || bad "capped run without --mem exited $rc: $(tail -c 600 "$TMP/nomem.err")"
grep -q "not repacked" "$TMP/nomem.err" || bad "capped run without --mem did not say it kept the mapping"
grep "not repacked" "$TMP/nomem.err" | sed 's/^/  /'

tokens() { grep -o '"tokens": \[[^]]*\]' "$1"; }
ref=$(tokens "$TMP/ref.json")
cap=$(tokens "$TMP/cap.json")
[ -n "$ref" ] && [ "$ref" = "$cap" ] || bad "tokens differ: uncapped '$ref', capped '$cap'"
echo "tokens: $cap"

if [ "$CGV" = 1 ]; then
    ooms=$(awk '/^oom_kill /{print $2}' "$CG/memory.oom_control")
    echo "cgroup v1: max usage $(($(cat "$CG/memory.max_usage_in_bytes") / 1048576)) MiB of $((LIMIT / 1048576)) MiB," \
         "failcnt $(cat "$CG/memory.failcnt") (limit hits: page cache reclaimed), oom_kill ${ooms:-n/a}"
else
    ooms=$(awk '/^oom_kill /{print $2}' "$CG/memory.events")
    echo "cgroup v2: peak $(cat "$CG/memory.peak" 2>/dev/null || echo n/a) bytes, oom_kill ${ooms:-n/a}"
fi
[ "${ooms:-0}" = 0 ] || bad "OOM kills in the cgroup: $ooms"

if [ "$fail" = 0 ]; then echo "test_mem_cgroup: passed"; exit 0; fi
exit 1
