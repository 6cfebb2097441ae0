#!/usr/bin/env bash
# test_install.sh - `cmake --install` into a temporary prefix puts the libraries,
# frugal.h, frugal.pc, the CMake package, the CLI and the man page there; a 10-line
# C program then builds against it with pkg-config (shared library) and with
# find_package(frugal) (shared and static), and runs. The man page must mention
# every flag that `frugal <subcommand> --help` lists.
# Env: FRUGAL (the CLI in the build tree: its directory is the build tree),
# FRUGAL_SHARED_DIR (optional: the fortune model is then loaded), FRUGAL_TMP.
set -u
. "$(dirname "$0")/lib.sh"
test_setup test_install
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(dirname "$FRUGAL")
PREFIX=$TMP/prefix
MODEL=$SHARED/models/fortune-3m-q8_0.gguf
for tool in cmake cc pkg-config; do
    command -v $tool >/dev/null || { echo "SKIP: $tool not found"; exit 77; }
done

cmake --install "$BUILD" --prefix "$PREFIX" >"$TMP/install.log" 2>&1 || bad "cmake --install: $(tail -3 "$TMP/install.log")"
LIBDIR=$(ls -d "$PREFIX"/lib* | head -1)
for f in include/frugal.h bin/frugal share/man/man1/frugal.1; do
    [ -f "$PREFIX/$f" ] && ok || bad "$f not installed"
done
for f in libfrugal.so libfrugal.a pkgconfig/frugal.pc cmake/frugal/frugalConfig.cmake \
         cmake/frugal/frugalTargets.cmake; do
    [ -e "$LIBDIR/$f" ] && ok || bad "$(basename "$LIBDIR")/$f not installed"
done
"$PREFIX/bin/frugal" --version | grep -q "^frugal " && ok || bad "installed frugal --version"

cat >"$TMP/hello.c" <<'C'
#include <frugal.h>
#include <stdio.h>
int main(int argc, char **argv) {
    frugal_model_params p; frugal_model_params_default(&p);
    frugal_model *m = NULL; frugal_error e = FRUGAL_ERROR_INIT; frugal_model_info info;
    if (argc < 2) { printf("frugal %s\n", FRUGAL_VERSION); return 0; }
    if (frugal_model_load(argv[1], &p, &m, &e)) { printf("error: %s\n", e.message); return 1; }
    frugal_model_get_info(m, &info); printf("arch %s layers %d\n", info.arch, info.n_layer);
    frugal_model_free(m); return 0;
}
C
# run PROG: no argument prints the version, a missing file the C API's error, the
# fortune model its architecture
check_prog() {
    local what=$1 prog=$2
    "$prog" | grep -q "^frugal [0-9]" && ok || bad "$what: version"
    "$prog" "$TMP/none.gguf" | grep -q "^error: .*none.gguf" && ok || bad "$what: load error message"
    if [ -f "$MODEL" ]; then
        "$prog" "$MODEL" | grep -q "^arch llama layers [0-9]" && ok || bad "$what: fortune model info"
    fi
}

# an ASan+UBSan build's library needs the programs built with the same runtime
SAN=""
ldd "$LIBDIR/libfrugal.so" | grep -q libasan && SAN="-fsanitize=address,undefined"

export PKG_CONFIG_PATH=$LIBDIR/pkgconfig
flags=$(pkg-config --cflags --libs frugal) || bad "pkg-config --cflags --libs frugal"
echo "pkg-config: $flags"
# shellcheck disable=SC2086
if cc -std=c11 -Wall -Werror $SAN -o "$TMP/hello_pc" "$TMP/hello.c" $flags; then
    ok; LD_LIBRARY_PATH=$LIBDIR check_prog pkg-config "$TMP/hello_pc"
else bad "build with pkg-config"; fi

mkdir -p "$TMP/proj"
cp "$TMP/hello.c" "$TMP/proj/"
cat >"$TMP/proj/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.25)
project(hello C)
find_package(frugal 0.1 REQUIRED)
add_executable(hello_shared hello.c)
target_link_libraries(hello_shared PRIVATE frugal::frugal)
add_executable(hello_static hello.c)
target_link_libraries(hello_static PRIVATE frugal::frugal_static)
CM
if cmake -S "$TMP/proj" -B "$TMP/proj/build" -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_C_FLAGS="$SAN" \
        -DCMAKE_EXE_LINKER_FLAGS="$SAN" >"$TMP/cm.log" 2>&1 &&
   cmake --build "$TMP/proj/build" >>"$TMP/cm.log" 2>&1; then
    ok
    check_prog "cmake shared" "$TMP/proj/build/hello_shared"   # RPATH from the imported target
    check_prog "cmake static" "$TMP/proj/build/hello_static"
    ldd "$TMP/proj/build/hello_static" | grep -q libfrugal && bad "static program links libfrugal.so" || ok
else
    bad "find_package(frugal) build: $(tail -5 "$TMP/cm.log")"
fi

# the man page: renders, and names every flag of every subcommand's --help
MAN=$PREFIX/share/man/man1/frugal.1
if command -v man >/dev/null; then
    man -l "$MAN" 2>/dev/null | grep -q "frugal - run" && ok || bad "man -l frugal.1 does not render"
fi
for sub in run chat bench perplexity quantize plan serve tokenize inspect mkmodel monitor; do
    grep -q "^\.SS $sub" "$MAN" && ok || bad "man page has no section for $sub"
    "$FRUGAL" "$sub" --help 2>&1 | grep -oE -- "(^|[ ,])--?[a-z][a-z0-9-]*" | tr -d ' ,' | sort -u |
    while read -r flag; do
        esc=$(printf '%s' "$flag" | sed 's/-/\\\\-/g')
        grep -q -- "$esc" "$MAN" || echo "man page lacks $sub $flag"
    done >"$TMP/manmiss"
    [ -s "$TMP/manmiss" ] && bad "$(cat "$TMP/manmiss" | tr '\n' ';')" || ok
done
test_finish test_install
