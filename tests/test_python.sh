#!/usr/bin/env bash
# test_python.sh - the Python package (python/): its pytest suite against the
# freshly built libfrugal.so, then `pip install` into a fresh venv
# (--system-site-packages, --no-build-isolation, offline) and a 5-line script that
# generates text from the fortune model with no FRUGAL_LIB set.
# Skips when no python3 with pytest is found (Debian: python3-pytest python3-venv).
# Env: FRUGAL (its directory is the build tree), FRUGAL_SHARED_DIR, FRUGAL_TMP,
# FRUGAL_PYTHON (optional: the interpreter to use).
set -u
. "$(dirname "$0")/lib.sh"
test_setup test_python
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "$(dirname "$FRUGAL")" && pwd)
LIB=$BUILD/libfrugal.so
MODEL=$SHARED/models/fortune-3m-q8_0.gguf
export PYTHONDONTWRITEBYTECODE=1 FRUGAL_SHARED_DIR=$SHARED

PY=""
for cand in ${FRUGAL_PYTHON:-} python3 /usr/bin/python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c "import pytest" 2>/dev/null; then PY=$cand; break; fi
done
[ -n "$PY" ] || { echo "SKIP: no python3 with pytest (Debian: apt-get install python3-pytest python3-venv)"; exit 77; }
[ -f "$LIB" ] || { bad "$LIB not built"; test_finish test_python; exit 1; }
# an ASan-instrumented library loads into python only with the runtime preloaded
if ldd "$LIB" | grep -q libasan; then
    export LD_PRELOAD=$(${CC:-cc} -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0
    ldd "$LIB" | grep -q libubsan && LD_PRELOAD="$LD_PRELOAD:$(${CC:-cc} -print-file-name=libubsan.so)"
fi
echo "python: $PY ($("$PY" --version 2>&1)), library: $LIB"

# every ctypes mirror of a public struct has the C struct's size (a field added on one
# side only would make the library write past the Python buffer)
CC_=${CC:-cc}
if command -v "$CC_" >/dev/null 2>&1; then
    cat >"$TMP/sizes.c" <<'C'
#include <stdio.h>
#include "frugal.h"
#define P(py, c) printf("%s %zu\n", py, sizeof(c))
int main(void) {
    P("Error", frugal_error); P("ModelParams", frugal_model_params); P("ModelInfo", frugal_model_info);
    P("ContextParams", frugal_context_params); P("SamplerParams", frugal_sampler_params); P("Plan", frugal_plan);
    P("SafetyPolicy", frugal_safety_policy); P("Readings", frugal_readings); P("ChatMsg", frugal_chat_msg);
    return 0;
}
C
    if "$CC_" -I"$HERE/../include" -o "$TMP/sizes" "$TMP/sizes.c" 2>"$TMP/cc.err"; then
        "$TMP/sizes" | while read -r name size; do
            got=$(cd "$HERE/../python" && "$PY" -c "import ctypes, frugal._lib as L; print(ctypes.sizeof(L.$name))" 2>&1)
            [ "$got" = "$size" ] && echo "struct $name: $size bytes in C and Python" ||
                { echo "FAIL: struct $name: C $size bytes, Python $got"; echo x >>"$TMP/size_fail"; }
        done
        [ -f "$TMP/size_fail" ] && bad "a Python struct mirror differs from C" || ok
    else
        echo "(no C compiler works here: struct sizes not compared: $(head -1 "$TMP/cc.err"))"
    fi
fi

# the suite runs on a copy, so nothing is written into the source tree
cp -r "$HERE/../python" "$TMP/pkg"
rm -rf "$TMP/pkg/build" "$TMP/pkg/"*.egg-info "$TMP/pkg/frugal/libfrugal.so"
if (cd "$TMP/pkg" && FRUGAL_LIB=$LIB "$PY" -m pytest -q -p no:cacheprovider tests >"$TMP/pytest.log" 2>&1); then
    ok
else
    bad "pytest failed"
fi
tail -15 "$TMP/pytest.log"
grep -qE "[0-9]+ passed" "$TMP/pytest.log" && ok || bad "pytest ran no test"
[ -f "$MODEL" ] && grep -q "skipped" "$TMP/pytest.log" && bad "tests skipped although the model is there"

# pip install into a fresh venv, offline; the library is copied into the package
if ! "$PY" -m venv --system-site-packages "$TMP/venv" >"$TMP/venv.log" 2>&1; then
    echo "SKIP (part): python3 -m venv failed (Debian: python3-venv): $(tail -1 "$TMP/venv.log")"
else
    VPY=$TMP/venv/bin/python
    if (cd "$TMP/pkg" && FRUGAL_LIB=$LIB "$VPY" -m pip install -q --no-index --no-build-isolation . \
            >"$TMP/pip.log" 2>&1); then
        ok
        if [ -f "$MODEL" ]; then
            cat >"$TMP/five.py" <<PYEOF
from frugal import Engine
with Engine.load("$MODEL", n_ctx=256) as eng:
    result = eng.generate("The meaning of life is", max_tokens=24, temperature=0)
print(result.text)
print(len(result.tokens), "tokens", round(result.timings["gen_tok_s"]), "tok/s")
PYEOF
            (cd "$TMP" && env -u FRUGAL_LIB "$VPY" five.py >"$TMP/five.out" 2>&1)
            cat "$TMP/five.out"
            grep -q "John Keelson" "$TMP/five.out" && grep -q "^24 tokens" "$TMP/five.out" && ok ||
                bad "the 5-line script in the venv"
            (cd "$TMP" && env -u FRUGAL_LIB "$VPY" -c "import frugal; print(frugal.lib_path())") | grep -q "$TMP/venv/" &&
                ok || bad "the installed package does not use the library beside itself"
        fi
    else
        bad "pip install into the venv: $(tail -5 "$TMP/pip.log")"
    fi
fi
test_finish test_python
