#!/usr/bin/env bash
# moe_cgroup.sh - a ~3 GB mixture of experts inside a 1.2 GB memory cgroup, with and
# without expert streaming (not run in CI: minutes of disk and CPU, root for the cgroup).
#
#   bench/moe_cgroup.sh [FRUGAL] [WORKDIR]
#
# 1. `frugal mkmodel` writes a random Qwen3-MoE-shape Q4_0 model (shape below, about
#    2.9 GB) into WORKDIR (default: a fresh folder under $TMPDIR or /tmp).
# 2. `frugal plan` measures the disk's read bandwidth on that file (O_DIRECT, 512 MiB)
#    and prints the plan for the budget: dense / cached experts / streamed / cache,
#    forecast bytes read per token with uniform routing.
# 3. For each mode (--mem $MEM, then no budget) the file's page cache is dropped, a
#    fresh memory cgroup capped at $CAP bytes is made, and `frugal bench -p 0 -n $NGEN
#    -r $REPS` runs in it (nice'd); a Python wrapper reads the process's peak RSS and the
#    bytes it read from storage (wait4's rusage: ru_maxrss, ru_inblock), the cgroup's
#    peak usage and OOM kills.
# 4. Prints, per mode: exit status, OOM kills, peak RSS, generation tok/s; with
#    --mem also bench's bytes read per generated token, what the picked experts that
#    were not cached need, hit rate and tok/s against the disk roofline.
# The model and the cgroups are removed at the end. Env: CAP (bytes, default 1.2e9),
# MEM (default 1000M), NGEN (default 32), SHAPE (mkmodel flags), SKEW (mkmodel --expert-skew, default 0:
# uniform routing, the worst case), KEEP=1 keeps the model, MODEL=path reuses one,
# MODES (default "mem nomem"), REPS (default 3).
set -u
FRUGAL=${1:-$(dirname "$0")/../build/frugal}
FRUGAL=$(cd "$(dirname "$FRUGAL")" && pwd)/$(basename "$FRUGAL")
SHARED=${FRUGAL_SHARED_DIR:-$(dirname "$0")/../../shared}
VOCAB=$SHARED/vocab/ggml-vocab-llama-spm.gguf
CAP=${CAP:-1200000000}
MEM=${MEM:-1000M}
NGEN=${NGEN:-32}
REPS=${REPS:-3}   # repetitions; bench probes the disk before each (a virtio disk varies 2x)
SKEW=${SKEW:-0}
base=${TMPDIR:-/tmp}
WORK=${2:-$(mktemp -d "$base/moe_cgroup.XXXXXX")}
M=${MODEL:-$WORK/qwen3moe-3g-q4_0.gguf}
CGS=()

die() { echo "moe_cgroup: $*" >&2; exit 1; }
cleanup() {
    for cg in "${CGS[@]}"; do [ -d "$cg" ] && rmdir "$cg" 2>/dev/null; done
    [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
[ -x "$FRUGAL" ] || die "no frugal CLI at $FRUGAL (build first or pass its path)"
[ -f "$VOCAB" ] || die "vocabulary $VOCAB absent"
[ "$(id -u)" = 0 ] || die "needs root (memory cgroup)"
mkdir -p "$WORK" || die "cannot create $WORK"
trap cleanup EXIT
avail=$(df -Pk "$WORK" | awk 'NR == 2 {print $4}')
[ "$avail" -gt $((6 * 1024 * 1024)) ] || die "less than 6 GB free under $WORK"

# A cgroup capped at CAP (v1 or v2); prints its path.
make_cgroup() {
    local cg
    if [ -w /sys/fs/cgroup/memory ] && [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
        cg=/sys/fs/cgroup/memory/frugal_moe_$$_$1
        mkdir "$cg" && echo "$CAP" >"$cg/memory.limit_in_bytes" || return 1
        [ -f "$cg/memory.memsw.limit_in_bytes" ] && echo "$CAP" >"$cg/memory.memsw.limit_in_bytes" 2>/dev/null
    elif [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
        cg=/sys/fs/cgroup/frugal_moe_$$_$1
        mkdir "$cg" && echo "$CAP" >"$cg/memory.max" || return 1
        [ -f "$cg/memory.swap.max" ] && echo 0 >"$cg/memory.swap.max"
    else
        return 1
    fi
    echo "$cg"
}
cg_peak() { cat "$1/memory.max_usage_in_bytes" 2>/dev/null || cat "$1/memory.peak" 2>/dev/null || echo 0; }
cg_ooms() { awk '/^oom_kill /{print $2}' "$1/memory.oom_control" "$1/memory.events" 2>/dev/null | head -1; }
drop_cache() { dd if=/dev/null of="$1" oflag=nocache conv=notrunc,fdatasync count=0 status=none 2>/dev/null; }

# Run a command in cgroup $1; print "rc maxrss_kib inblock_bytes" (wait4's rusage).
run_in() {
    local cg=$1; shift
    python3 - "$cg" "$@" <<'EOF'
import os, sys
cg, argv = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    with open(os.path.join(cg, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))
    os.nice(10)
    os.execvp(argv[0], argv)
_, status, ru = os.wait4(pid, 0)
rc = os.waitstatus_to_exitcode(status)
print(rc, ru.ru_maxrss, ru.ru_inblock * 512)
EOF
}

SHAPE=${SHAPE:-"--arch qwen3moe --dim 2048 --layers 8 --heads 32 --kv-heads 4 --head-dim 128 --experts 128 \
--experts-used 8 --ffn 768 --ctx 4096"}
echo "model: qwen3moe $SHAPE --type q4_0 --expert-skew $SKEW (vocabulary: llama SPM, 32000)"
t0=$(date +%s)
if [ -f "$M" ]; then
    echo "  reusing $M (MODEL)"
else
    # shellcheck disable=SC2086
    nice "$FRUGAL" mkmodel $SHAPE --type q4_0 --expert-skew "$SKEW" --seed 1 --vocab-from "$VOCAB" -o "$M" >/dev/null ||
        die "mkmodel failed"
    echo "  written in $(($(date +%s) - t0)) s: $(($(stat -c %s "$M") / 1048576)) MiB"
fi

drop_cache "$M"
nice "$FRUGAL" plan -m "$M" --mem "$MEM" -c "$((NGEN + 16))" -t 2 >"$WORK/plan.txt" 2>&1 || die "plan: $(cat "$WORK/plan.txt")"
echo "plan for --mem $MEM (ctx $((NGEN + 16))):"
sed 's/^/  /' "$WORK/plan.txt"

for mode in ${MODES:-mem nomem}; do
    cg=$(make_cgroup "$mode") || die "cannot make a memory cgroup"
    CGS+=("$cg")
    args=("$FRUGAL" bench -m "$M" -p 0 -n "$NGEN" -r "$REPS" -t 2 --bw-mib 4)
    [ "$mode" = mem ] && args+=(--mem "$MEM")
    drop_cache "$M"
    t0=$SECONDS
    run_in "$cg" timeout "${TIMEOUT:-1200}" "${args[@]}" >"$WORK/$mode.out" 2>"$WORK/$mode.err"
    read -r rc rss inblock < <(tail -n 1 "$WORK/$mode.out") # the wrapper's line comes last
    if [ "$mode" = mem ]; then echo "--- --mem $MEM"; else echo "--- no budget (runs from the file mapping)"; fi
    echo "  exit $rc, OOM kills $(cg_ooms "$cg"), peak RSS $((rss / 1024)) MiB, cgroup peak" \
         "$(($(cg_peak "$cg") / 1048576)) MiB (cap $((CAP / 1048576)) MiB), wall $((SECONDS - t0)) s"
    echo "  read from storage: $((inblock / 1048576)) MiB in all (load + warm-up + timed run: $((2 * NGEN)) tokens)"
    grep -E '^\| .*tg|^experts:|^disk roofline' "$WORK/$mode.out" | sed 's/^/  /'
    [ "$rc" = 0 ] || tail -c 400 "$WORK/$mode.err" | sed 's/^/  stderr: /'
done
