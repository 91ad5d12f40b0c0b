#!/usr/bin/env bash
# Installs the dependencies, builds drover with warnings as errors and runs
# every test: the C++ unit tests, the worker's pytest tests and the
# integration tests (real binary, real pytest, real sockets), all via ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DDROVER_WERROR=ON
cmake --build build -j2
cd build
ctest --output-on-failure --timeout 1800 -j2
