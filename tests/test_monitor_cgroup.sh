#!/usr/bin/env bash
# test_monitor_cgroup.sh - memory pressure for real: a streamed run (--mem) inside a
# memory cgroup whose limit is lowered while it generates. The monitor sees the
# room under the limit fall below --min-free and degrades (the first step frees a
# read-ahead buffer), and the run finishes without an OOM kill, with the same
# greedy text as the unconstrained run. Needs root and a writable memory
# controller (v1 or v2), like test_mem_cgroup.sh; skips (77) otherwise. Not run
# under ASan (its shadow memory does not fit such a limit: .ci/run).
# Env: $FRUGAL (CLI), $FRUGAL_SHARED_DIR (vocabulary), $FRUGAL_TMP (scratch).
set -u

FRUGAL=${FRUGAL:?set FRUGAL to the frugal CLI}
SHARED=${FRUGAL_SHARED_DIR:-$(dirname "$0")/../../shared}
TMP=${FRUGAL_TMP:-/tmp}/test_monitor_cgroup.$$
VOCAB=$SHARED/vocab/ggml-vocab-llama-spm.gguf
MiB=$((1024 * 1024))
CG=""
pid=""
skip() { echo "SKIP: $*"; exit 77; }
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    rm -rf "$TMP"
    if [ -n "$CG" ] && [ -d "$CG" ]; then sleep 0.2; rmdir "$CG" 2>/dev/null; fi
}
[ "$(id -u)" = 0 ] || skip "not root: cannot create a memory cgroup"
[ -f "$VOCAB" ] || skip "vocabulary $VOCAB absent"
if [ -w /sys/fs/cgroup/memory ] && [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
    CGV=1; CG=/sys/fs/cgroup/memory/frugal_mon_$$; LIMF=memory.limit_in_bytes
elif [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw memory /sys/fs/cgroup/cgroup.controllers \
     && [ -w /sys/fs/cgroup ]; then
    CGV=2; CG=/sys/fs/cgroup/frugal_mon_$$; LIMF=memory.max
else
    skip "no writable cgroup v1 or v2 memory controller"
fi
mkdir -p "$TMP"
trap cleanup EXIT
mkdir "$CG" 2>/dev/null || { CG=""; skip "cannot create a cgroup under the memory controller"; }
setlimit() {
    echo "$1" >"$CG/$LIMF" || return 1
    if [ "$CGV" = 1 ] && [ -f "$CG/memory.memsw.limit_in_bytes" ]; then
        echo "$1" >"$CG/memory.memsw.limit_in_bytes" 2>/dev/null
    fi
    return 0
}
[ "$CGV" = 2 ] && [ -f "$CG/memory.swap.max" ] && echo 0 >"$CG/memory.swap.max"
if [ "$CGV" = 1 ] && [ -f "$CG/memory.memsw.limit_in_bytes" ]; then  # memsw first: it must stay >= the limit
    echo $((400 * MiB)) >"$CG/memory.memsw.limit_in_bytes" 2>/dev/null
fi
setlimit $((400 * MiB)) || skip "cannot set the cgroup's limit"

# 16 layers of ~12 MB (Q8_0), ~230 MB in all; --mem 96M keeps a few resident and
# streams the rest through two read-ahead buffers
M=$TMP/m.gguf
"$FRUGAL" mkmodel --dim 1024 --layers 16 --heads 16 --kv-heads 4 --ffn 2816 --type q8_0 \
    --vocab-from "$VOCAB" -o "$M" >/dev/null || { echo "FAIL: mkmodel"; exit 1; }
fail=0
bad() { fail=1; echo "FAIL: $*"; }
ARGS=(run -m "$M" -p "Hello" -n 48 --temp 0 -c 128 -t 2 --mem 96M)
"$FRUGAL" "${ARGS[@]}" >"$TMP/ref.txt" 2>"$TMP/ref.err" || bad "reference run failed: $(tail -c 400 "$TMP/ref.err")"

# the capped run: --min-free 48M is met under 400 MB; then the limit drops
sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$CG" \
    "$FRUGAL" "${ARGS[@]}" --min-free 48M --monitor-interval 20 --stats >"$TMP/cap.txt" 2>"$TMP/cap.err" &
pid=$!
for _ in $(seq 3000); do [ -s "$TMP/cap.txt" ] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.01; done
[ -s "$TMP/cap.txt" ] || bad "no output from the capped run before it ended"
usage=$(cat "$CG/memory.usage_in_bytes" 2>/dev/null || cat "$CG/memory.current")
# page cache (the mapped output head, reclaimable) is not in the way: the room is
# the limit less the rest, and the new limit leaves 32M of it, under --min-free
if [ "$CGV" = 1 ]; then cache=$(awk '/^total_cache /{print $2}' "$CG/memory.stat")
else cache=$(awk '/^file /{print $2}' "$CG/memory.stat"); fi
anon=$(( usage - ${cache:-0} ))
new=$(( anon + 32 * MiB ))
setlimit "$new" || bad "cannot lower the limit to $new"
echo "usage $((usage / MiB)) MiB ($((anon / MiB)) MiB not page cache) at the first token; limit lowered to $((new / MiB)) MiB"
wait "$pid"
rc=$?
pid=""
[ "$rc" = 0 ] || bad "capped run exited $rc: $(tail -c 600 "$TMP/cap.err")"
grep "safety" "$TMP/cap.err" | sed 's/^/  /'
grep -q "degrade step 1 (drop the prefetch window): read-ahead 2 -> 1 buffer.*memory room" "$TMP/cap.err" \
    || bad "no first degrade step logged"
cmp -s "$TMP/ref.txt" "$TMP/cap.txt" || bad "text differs: '$(head -c 200 "$TMP/ref.txt")' vs '$(head -c 200 "$TMP/cap.txt")'"
if [ "$CGV" = 1 ]; then ooms=$(awk '/^oom_kill /{print $2}' "$CG/memory.oom_control")
else ooms=$(awk '/^oom_kill /{print $2}' "$CG/memory.events"); fi
[ "${ooms:-0}" = 0 ] || bad "OOM kills in the cgroup: $ooms"
if [ "$fail" = 0 ]; then echo "test_monitor_cgroup: passed"; exit 0; fi
exit 1
