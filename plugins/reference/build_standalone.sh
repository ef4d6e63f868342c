#!/usr/bin/env bash
# Builds libflexiq_cpu_reference.so with g++ only (no CUDA, no CMake), for CPU CI.
# Usage: plugins/reference/build_standalone.sh [OUTPUT_DIR]   (default: build/reference)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-${here}/../../build/reference}"
mkdir -p "${out}"
# -ffp-contract=off and no -ffast-math: the epilogue must round like the NumPy reference (docs/design.md §2).
"${CXX:-g++}" -std=c++17 -O2 -fPIC -shared -ffp-contract=off -fvisibility=hidden -Wall -Wextra \
    -I"${here}/../common" -I"${here}/../kernels" \
    "${here}/flexiqCpuReference.cpp" "${here}/flexiqCpuReferenceCapi.cpp" "${here}/../kernels/flexiqShape.cpp" \
    -o "${out}/libflexiq_cpu_reference.so"
echo "${out}/libflexiq_cpu_reference.so"
