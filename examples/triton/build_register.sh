#!/usr/bin/env bash
# Build libflexiq_triton_register.so on the Triton host (e.g. inside the NGC Triton or TensorRT
# container), against that TensorRT: bash build_register.sh [OUT_DIR] [TENSORRT_INCLUDE] [TENSORRT_LIB]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-.}
inc=${2:-/usr/include/x86_64-linux-gnu}
lib=${3:-/usr/lib/x86_64-linux-gnu}
cuda_inc=${CUDA_HOME:-/usr/local/cuda}/include
g++ -std=c++17 -O2 -fPIC -shared -I"$inc" -I"$cuda_inc" "$here/flexiq_triton_register.cpp" \
    -L"$lib" -lnvinfer -ldl -o "$out/libflexiq_triton_register.so"
echo "wrote $out/libflexiq_triton_register.so"
