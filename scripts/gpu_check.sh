#!/usr/bin/env bash
# First-GPU check (benchmarks/gpu_check.py; how to run and read it: docs/performance.md).
#
#   scripts/gpu_check.sh --prepare        on the build machine (nvcc, no GPU): build the kernel library
#                                         and the C++ CPU reference incrementally into build/, then
#                                         print the plan; carry the two printed files to the GPU machine
#   scripts/gpu_check.sh [--dry-run] [gpu_check.py options]
#                                         on the GPU machine (driver + CUDA runtime + PyTorch, no
#                                         TensorRT, no compiler needed): runs the check, writes
#                                         gpu_check.json and gpu_check.md into $OUT (or gpu_check_out/)
#
# Env: PYTHON (default: .venv/bin/python if it imports torch, else python3), OUT, FLEXIQ_CUDA_ARCHS
# for --prepare (default "80;86;89": SASS for those, PTX for the last, which the driver JIT-compiles
# on newer GPUs such as sm_90; add 90 for native sm_90 SASS).
# Exit status: 0 done, 1 a check failed, 2 refused (no usable GPU, torch or library).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo}"
capi="build/plugins/kernels/libflexiq_kernels_capi.so"
cpuref="build/plugins/reference/libflexiq_cpu_reference.so"

pick_python() {
    if [ -n "${PYTHON:-}" ]; then echo "${PYTHON}"; return; fi
    if [ -x .venv/bin/python ] && .venv/bin/python -c "import torch" 2>/dev/null; then echo .venv/bin/python; return; fi
    if [ -x .venv/bin/python ] && ! command -v python3 >/dev/null; then echo .venv/bin/python; return; fi
    echo python3
}

if [ "${1:-}" = "--prepare" ]; then
    shift
    bash scripts/build_plugins.sh
    for f in "${capi}" "${cpuref}"; do
        [ -f "${f}" ] || { echo "gpu_check.sh: ${f} was not built" >&2; exit 1; }
    done
    "$(pick_python)" benchmarks/gpu_check.py --dry-run "$@"
    echo "gpu_check.sh: carry to the GPU machine: ${capi} ${cpuref}"
    exit 0
fi

python="$(pick_python)"
[ -f "${capi}" ] && export FLEXIQ_KERNELS_CAPI_LIB="${FLEXIQ_KERNELS_CAPI_LIB:-${repo}/${capi}}"
[ -f "${cpuref}" ] && export FLEXIQ_CPU_REFERENCE_LIB="${FLEXIQ_CPU_REFERENCE_LIB:-${repo}/${cpuref}}"
exec "${python}" benchmarks/gpu_check.py --out "${OUT:-${repo}/gpu_check_out}" "$@"
