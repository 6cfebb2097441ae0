#!/bin/sh
# deps.sh - installs what building frugal and running its whole test suite needs.
#
# Debian/Ubuntu: runs apt-get install -y for exactly these packages (as root, or
# through sudo). Elsewhere it prints what to install and exits 1 only when the C
# compiler or cmake is missing (the rest makes parts of the build or tests fail or skip). Set FRUGAL_DEPS_SKIP=1 to do nothing (e.g. when the
# packages were installed by other means). The README's two commands call this first.
#
#   build:  C compiler + make (build-essential), cmake (>= 3.25), pkg-config
#   serve:  libmicrohttpd-dev, libcjson-dev (also the golden-logit tests' JSON and
#           `frugal convert`'s config/tokenizer/safetensors-header JSON)
#   chat:   libedit-dev (line editing when stdin is a terminal)
#   gpu:    libvulkan-dev, glslc (Vulkan backend), mesa-vulkan-drivers (lavapipe: a Vulkan
#           device on the CPU, so the shader tests run everywhere), vulkan-tools (vulkaninfo)
#   tests:  python3, python3-pytest, python3-venv, python3-numpy, python3-setuptools, python3-wheel
#           (Python package), curl, nodejs + npm (server tests with the openai client)
set -eu

[ "${FRUGAL_DEPS_SKIP:-0}" = 1 ] && exit 0

PKGS="build-essential cmake pkg-config libmicrohttpd-dev libcjson-dev libedit-dev \
libvulkan-dev glslc mesa-vulkan-drivers vulkan-tools \
python3 python3-pytest python3-venv python3-numpy python3-setuptools python3-wheel python3-pip curl"

missing_debian() {
    out=""
    for p in $PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || out="$out $p"
    done
    # some images ship their own node (npm inside) that conflicts with Debian's npm
    command -v npm >/dev/null 2>&1 || out="$out nodejs npm"
    echo "$out"
}

if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then
    need=$(missing_debian)
    [ -z "$need" ] && { echo "deps.sh: all build and test packages are installed"; exit 0; }
    SUDO=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || {
            echo "deps.sh: need root to install:$need" >&2; exit 1; }
        SUDO=sudo
    fi
    echo "deps.sh: installing:$need"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq $need >/dev/null
    exit 0
fi

cat >&2 <<'MSG'
deps.sh: not a Debian/Ubuntu system; install these with your package manager:
  a C11 compiler, make, cmake >= 3.25, pkg-config, libmicrohttpd (headers),
  cJSON (headers, include path cjson/cJSON.h), libedit or readline (headers),
  python3 with pytest, venv, numpy and setuptools, curl, node + npm.
  Fedora:  dnf install gcc make cmake pkgconf libmicrohttpd-devel cjson-devel libedit-devel \
           python3-pytest python3-numpy python3-setuptools curl nodejs npm
  macOS:   brew install cmake pkg-config libmicrohttpd cjson libedit node
           (python3 -m pip install pytest numpy)
Then run the README command again with FRUGAL_DEPS_SKIP=1.
MSG
# the build itself needs these; the rest only makes tests skip
for tool in cc cmake; do command -v $tool >/dev/null 2>&1 || exit 1; done
exit 0
