#!/usr/bin/env bash
# One-time set-up on a fresh machine (no GPU needed): Debian packages for the C++ example and the
# hardening runs, a virtual environment with flexiq_trt and its test/engine-build/finetune extras, the offline
# test material, and the compiled plugin/kernel libraries with the sanitizer tree (docs/cpp.md).
# Idempotent: re-running it only refreshes what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

# apt-get as root (CI) or through sudo; returns non-zero when neither is possible.
apt_install() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || return 1
        sudo="sudo"
    fi
    command -v apt-get >/dev/null 2>&1 || return 1
    $sudo apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

# libFuzzer links with this clang++ (Debian ships its runtime in libclang-rt-<major>-dev).
have_libfuzzer() {
    command -v clang++ >/dev/null 2>&1 || return 1
    local probe
    probe="$(mktemp -d)"
    printf '#include <cstddef>\n#include <cstdint>\nextern "C" int LLVMFuzzerTestOneInput(uint8_t const*, size_t) { return 0; }\n' \
        >"${probe}/f.cpp"
    clang++ -fsanitize=fuzzer "${probe}/f.cpp" -o "${probe}/f" >/dev/null 2>&1
    local rc=$?
    rm -rf "${probe}"
    return "${rc}"
}

echo "== flexiq_trt setup: system packages (nlohmann/json for flexiq_infer; clang + libFuzzer for fuzzing)"
if [ ! -f /usr/include/nlohmann/json.hpp ]; then
    apt_install nlohmann-json3-dev || {
        echo "ERROR: nlohmann/json is missing and apt-get is not usable: install nlohmann-json3-dev" >&2
        exit 1
    }
fi
if ! have_libfuzzer; then
    command -v clang++ >/dev/null 2>&1 || apt_install clang || true
    major="$(clang++ --version 2>/dev/null | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n 1)"
    [ -z "${major}" ] || apt_install "libclang-rt-${major}-dev" || true
    have_libfuzzer || echo "WARNING: no clang++ with libFuzzer: the fuzz target uses the bounded mutation driver" >&2
fi
[ -d .venv ] || "$PYTHON" -m venv .venv
source .venv/bin/activate
echo "== flexiq_trt setup: python packages"
pip install -q --upgrade pip setuptools wheel
pip install -q -e ".[rtx,test,finetune]"
echo "== flexiq_trt setup: TensorRT-RTX parser fix (docs/design.md §6)"
python -c "from flexiq_trt.runtime.plugin_loader import ensure_rtx_parser_symlink as f; print(f())"
echo "== flexiq_trt setup: test material"
bash scripts/install_test_material.sh
echo "== flexiq_trt setup: plugin and kernel libraries, flexiq_infer, and the sanitizer tree build-asan"
bash scripts/build_plugins.sh --hardening
echo "== flexiq_trt setup: done"
