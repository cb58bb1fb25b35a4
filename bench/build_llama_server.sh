#!/usr/bin/env bash
# Build llama.cpp's own llama-server (the baseline of bench/load.py) from the llama.cpp source
# that the installed llama-cpp-python version vendors. Nothing is written to the repository.
#
#   bench/build_llama_server.sh [OUT_DIR]     # prints OUT_DIR/bin/llama-server
#
# OUT_DIR defaults to $TMPDIR/llama-server-build. About 6-8 minutes on 2 cores.
#
# Same as ../shared/tools/build-llama-server.sh but with the flags tokenwire's own llama.cpp is
# built with (`make print-cmake-args`): portable on x86_64, no -march=native and no AMX. A native
# build crashes on the first multi-token batch on CPUs that advertise AMX inside a VM
# (Firecracker) that does not give the AMX tile state.
set -euo pipefail
PYTHON="${PYTHON:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
VER="${LLAMA_CPP_PYTHON_VERSION:-$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')}"
OUT="${1:-${TMPDIR:-/tmp}/llama-server-build}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

"$PYTHON" -m pip download --no-deps --no-binary :all: -d "$WORK" "llama-cpp-python==$VER" >/dev/null
tar xzf "$WORK"/llama_cpp_python-*.tar.gz -C "$WORK"
SRC="$(echo "$WORK"/llama_cpp_python-*/vendor/llama.cpp)"

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
read -r -a CPU_FLAGS <<< "$(make -s --no-print-directory -C "$ROOT" print-cmake-args)"

cmake -S "$SRC" -B "$OUT" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON \
  "${CPU_FLAGS[@]}" >/dev/null
cmake --build "$OUT" --target llama-server -j"$(nproc)" >/dev/null
echo "$OUT/bin/llama-server"
