#!/usr/bin/env bash
# Builds libflexiq_plugins.so, the CUDA kernels, the C++ CPU reference and the C++ host tests into
# build/ with Ninja (2 jobs by default: CI machines have 2 cores), then runs nothing.
#
# - TensorRT headers: TensorRT_ROOT if set, else third_party/tensorrt_headers (fetched from the
#   kernel-lens wheel by scripts/fetch_trt_headers.sh when missing, docs/design.md §6).
# - nvcc: from PATH; if absent, the CUDA 13.0 compiler wheels are pip-installed into the active
#   Python environment and used from there.
#
# --hardening: afterwards, the sanitizer tree ASAN_BUILD_DIR (build-asan): the C++ host tests, the
# flexiq_infer host tests and the plugin-field fuzz target under ASan + UBSan, built with clang++
# when present (libFuzzer) else g++ (mutation driver). It compiles no CUDA code: the kernels' CUDA
# objects come from build/'s libflexiq_kernels.a (cmake/FlexiqHostOnlyPlugins.cmake, docs/cpp.md).
#
# Usage: scripts/build_plugins.sh [--hardening] [extra cmake -D options]
# Env:   BUILD_DIR (build), JOBS (2), FLEXIQ_CUDA_ARCHS ("80;86;89"), PYTHON (python3), CMAKE_BUILD_TYPE (Release),
#        ASAN_BUILD_DIR (build-asan), FLEXIQ_HARDENING_CXX (clang++, else g++)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
hardening=0
if [[ "${1:-}" == "--hardening" ]]; then
    hardening=1
    shift
fi
build_dir="${BUILD_DIR:-${repo}/build}"
jobs="${JOBS:-2}"
archs="${FLEXIQ_CUDA_ARCHS:-80;86;89}"
python="${PYTHON:-python3}"
# CUDA 13.0 toolchain wheels (same major/minor as docs/design.md §6's nvcc 13.0).
# nvcc pulls nvidia-nvvm (cicc) and nvidia-cuda-crt: pin them too, or a newer cicc emits PTX that
# the 13.0 ptxas rejects ("Unsupported .version 9.5").
cuda_wheels=("nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cccl==13.0.*"
    "nvidia-nvvm==13.0.*" "nvidia-cuda-crt==13.0.*")

log() { echo "== build_plugins: $*" >&2; }

find_wheel_nvcc() {
    "${python}" - <<'PY'
import importlib.util, pathlib
spec = importlib.util.find_spec("nvidia")
roots = list(spec.submodule_search_locations) if spec and spec.submodule_search_locations else []
for root in roots:
    for cand in sorted(pathlib.Path(root).glob("cu*/bin/nvcc")) + sorted(pathlib.Path(root).glob("cuda_nvcc/bin/nvcc")):
        print(cand.resolve())
        raise SystemExit(0)
raise SystemExit(1)
PY
}

# The wheels lay the toolkit out as nvidia/cu13/{bin,include,lib}, but nvcc.profile links from lib64
# and CMake's FindCUDAToolkit needs an unversioned libcudart.so: add the two symlinks (idempotent).
fix_wheel_toolkit() {
    local root="$1"
    [[ -e "${root}/lib64" ]] || ln -s lib "${root}/lib64"
    if [[ ! -e "${root}/lib/libcudart.so" ]]; then
        local so
        so="$(cd "${root}/lib" && ls libcudart.so.* 2>/dev/null | head -n 1)"
        [[ -n "${so}" ]] && ln -s "${so}" "${root}/lib/libcudart.so"
    fi
}

ensure_nvcc() {
    if [[ -n "${CUDACXX:-}" && -x "${CUDACXX}" ]]; then
        echo "${CUDACXX}"; return
    fi
    if command -v nvcc >/dev/null 2>&1; then
        command -v nvcc; return
    fi
    local nvcc
    # Idempotent (quick when already satisfied); also repairs mismatched nvvm/crt versions.
    log "nvcc not on PATH: pip-installing ${cuda_wheels[*]}"
    "${python}" -m pip install --quiet "${cuda_wheels[@]}" >&2
    nvcc="$(find_wheel_nvcc)" || { log "nvcc not found after installing the CUDA wheels"; exit 1; }
    fix_wheel_toolkit "$(cd "$(dirname "${nvcc}")/.." && pwd)"
    echo "${nvcc}"
}

trt_args=()
if [[ -n "${TensorRT_ROOT:-}" ]]; then
    trt_args+=("-DTensorRT_ROOT=${TensorRT_ROOT}")
    log "TensorRT headers from TensorRT_ROOT=${TensorRT_ROOT}"
else
    PYTHON="${python}" "${repo}/scripts/fetch_trt_headers.sh" >/dev/null
fi

nvcc="$(ensure_nvcc)"
cuda_root="$(cd "$(dirname "${nvcc}")/.." && pwd)"
log "nvcc ${nvcc} ($("${nvcc}" --version | tail -n 1))"

start=$(date +%s)
cmake -S "${repo}" -B "${build_dir}" -G Ninja \
    -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-Release}" \
    -DCMAKE_CUDA_COMPILER="${nvcc}" \
    -DCUDAToolkit_ROOT="${cuda_root}" \
    -DFLEXIQ_CUDA_ARCHS="${archs}" \
    "${trt_args[@]}" "$@" >&2
cmake --build "${build_dir}" -j "${jobs}" >&2
log "built in $(( $(date +%s) - start )) s: ${build_dir}/plugins/libflexiq_plugins.so"
if (( ! hardening )); then
    echo "${build_dir}/plugins/libflexiq_plugins.so"
    exit 0
fi

asan_dir="${ASAN_BUILD_DIR:-${repo}/build-asan}"
cxx="${FLEXIQ_HARDENING_CXX:-$(command -v clang++ || command -v g++)}"
start=$(date +%s)
cmake -S "${repo}" -B "${asan_dir}" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER="${cxx}" \
    -DCUDAToolkit_ROOT="${cuda_root}" \
    -DFLEXIQ_SANITIZE=ON \
    -DFLEXIQ_BUILD_FUZZERS=ON \
    -DFLEXIQ_KERNELS_LIBRARY="${build_dir}/plugins/kernels/libflexiq_kernels.a" \
    "${trt_args[@]}" "$@" >&2
cmake --build "${asan_dir}" -j "${jobs}" \
    --target flexiq_host_tests flexiq_infer_host_tests flexiq_fuzz_plugin_fields >&2
log "hardening tree (ASan + UBSan, ${cxx}) built in $(( $(date +%s) - start )) s: ${asan_dir}"
echo "${asan_dir}"
