#!/usr/bin/env bash
# test_oom_band.sh - issue 23 finding 6: without --mem, the decision to repack the
# weights into RAM must count the context (KV, scratch) too. Runs synth-spm-f16 in
# memory cgroups of 20..48 MiB (2 MiB steps): every run must exit 0 (repacked where
# there is room, zero-copy where not); none may be OOM-killed (137), as 30-34 MiB
# were when only the weights were counted. Needs root and a writable memory
# controller (v1 or v2); skips (77) otherwise. Env: FRUGAL, FRUGAL_SHARED_DIR.
set -u
FRUGAL=${FRUGAL:?FRUGAL must point at the frugal CLI}
SHARED=${FRUGAL_SHARED_DIR:-}
MODEL=$SHARED/models/synth-spm-f16.gguf
skip() { echo "SKIP: $*"; exit 77; }
[ -f "$MODEL" ] || skip "$MODEL not found"
[ "$(id -u)" = 0 ] || skip "not root: cannot create a memory cgroup"
grep -q "__asan_init" "$FRUGAL" && skip "sanitizer build: its shadow memory makes a memory cap meaningless"
if [ -w /sys/fs/cgroup/memory ] && [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
    CG=/sys/fs/cgroup/memory/frugal_oomband_$$ LIMF=memory.limit_in_bytes
elif [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw memory /sys/fs/cgroup/cgroup.controllers \
     && [ -w /sys/fs/cgroup ]; then
    CG=/sys/fs/cgroup/frugal_oomband_$$ LIMF=memory.max
else
    skip "no writable cgroup v1 or v2 memory controller"
fi
fail=0 ran=0
for mib in $(seq 20 2 48); do
    mkdir "$CG" 2>/dev/null || skip "cannot create a cgroup under the memory controller"
    echo $((mib * 1048576)) >"$CG/$LIMF" || { rmdir "$CG"; skip "cannot set $LIMF"; }
    [ -f "$CG/memory.memsw.limit_in_bytes" ] && echo $((mib * 1048576)) >"$CG/memory.memsw.limit_in_bytes" 2>/dev/null
    [ -f "$CG/memory.swap.max" ] && echo 0 >"$CG/memory.swap.max"
    sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$CG" \
        "$FRUGAL" run -m "$MODEL" -p "Hello world" -n 8 -s 1 -t 1 >/dev/null 2>"${TMPDIR:-/tmp}/oomband.$$"
    rc=$?
    rmdir "$CG" 2>/dev/null
    ran=$((ran + 1))
    how=repacked
    grep -q "not repacked" "${TMPDIR:-/tmp}/oomband.$$" && how=zero-copy
    echo "cgroup $mib MiB: exit $rc ($how)"
    [ "$rc" -eq 0 ] || { fail=1; echo "FAIL: cgroup of $mib MiB: exit $rc: $(tail -c 200 "${TMPDIR:-/tmp}/oomband.$$")"; }
done
rm -f "${TMPDIR:-/tmp}/oomband.$$"
echo "test_oom_band: $ran limits, $([ $fail = 0 ] && echo "all ran" || echo "some failed")"
exit $fail
