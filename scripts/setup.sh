#!/usr/bin/env bash
# One-time set-up on a fresh machine (no GPU needed): a virtual environment with flexiq_trt and its
# test/engine-build extras, the offline test material, and the compiled plugin/kernel libraries.
# Idempotent: re-running it only refreshes what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -d .venv ] || "$PYTHON" -m venv .venv
source .venv/bin/activate
echo "== flexiq_trt setup: python packages"
pip install -q --upgrade pip setuptools wheel
pip install -q -e ".[rtx,test]"
echo "== flexiq_trt setup: TensorRT-RTX parser fix (docs/design.md §6)"
python -c "from flexiq_trt.runtime.plugin_loader import ensure_rtx_parser_symlink as f; print(f())"
echo "== flexiq_trt setup: test material"
bash scripts/install_test_material.sh
echo "== flexiq_trt setup: plugin and kernel libraries"
bash scripts/build_plugins.sh
echo "== flexiq_trt setup: done"
