#!/usr/bin/env bash
# test_layering.sh - the folders under src/ depend one way: the graph of
# `#include "folder/..."` edges between them has no cycle (not even two folders
# including each other). C has no calls without declarations, so the include graph
# is the call graph at folder level. Prints the order it found (leaves first).
set -u
SRC=$(cd "$(dirname "$0")/../src" && pwd)
command -v python3 >/dev/null || { echo "SKIP: python3 not found"; exit 77; }
python3 - "$SRC" <<'PY'
import os, re, sys
src = sys.argv[1]
dirs = sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d)))
edges = {d: set() for d in dirs}
for d in dirs:
    for f in os.listdir(os.path.join(src, d)):
        if not f.endswith((".c", ".h")):
            continue
        for m in re.finditer(r'#include "([a-z_0-9]+)/', open(os.path.join(src, d, f), errors="replace").read()):
            if m.group(1) != d and m.group(1) in edges:
                edges[d].add(m.group(1))
order, state = [], {}
def visit(d, path):
    if state.get(d) == 1:
        sys.exit("FAIL: include cycle: " + " -> ".join(path[path.index(d):] + [d]))
    if state.get(d) == 2:
        return
    state[d] = 1
    for e in sorted(edges[d]):
        visit(e, path + [d])
    state[d] = 2
    order.append(d)
for d in dirs:
    visit(d, [])
for d in order:
    print("%-10s -> %s" % (d, " ".join(sorted(edges[d])) or "(nothing)"))
print("test_layering: %d folders, no cycle" % len(dirs))
PY
