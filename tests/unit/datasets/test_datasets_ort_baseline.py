"""ORT static INT8 baseline: it produces a per-channel QDQ model that runs and keeps accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from _datasets_helpers import require_fashion_mnist

from flexiq_trt.datasets import fashion_mnist, model_zoo
from flexiq_trt.errors import CalibrationDataError, ModelError
from flexiq_trt.report.ort_baseline import OrtBaselineConfig, quantize_ort_int8


def _accuracy(path: Path, data: fashion_mnist.LabelledImages) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return float(np.mean(session.run(None, {"input": data.images})[0].argmax(1) == data.labels))


def test_quantized_fmnist_model_runs_and_keeps_accuracy(tmp_path: Path) -> None:
    require_fashion_mnist()
    model = model_zoo.load_model_path("fmnist_resnet")
    calib = fashion_mnist.load("train", limit=64)
    out = quantize_ort_int8(model, {"input": calib.images}, tmp_path / "q.onnx", OrtBaselineConfig(batch_size=16))
    graph = onnx.load(str(out)).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("QuantizeLinear") > 5 and ops.count("DequantizeLinear") > 5
    per_channel = [i for i in graph.initializer if i.name.endswith("_scale") and len(i.dims) == 1 and i.dims[0] > 1]
    assert per_channel, "expected per-channel weight scales"
    held = fashion_mnist.load("test", limit=1000)
    assert _accuracy(out, held) > _accuracy(model, held) - 0.02


def test_missing_input_in_calibration_is_named(tmp_path: Path) -> None:
    model = model_zoo.load_model_path("fmnist_resnet")
    with pytest.raises(CalibrationDataError, match=r"\['input'\]"):
        quantize_ort_int8(model, {"x": np.zeros((2, 1, 28, 28), np.float32)}, tmp_path / "q.onnx")


def test_empty_calibration_is_rejected(tmp_path: Path) -> None:
    model = model_zoo.load_model_path("fmnist_resnet")
    with pytest.raises(CalibrationDataError, match="non-zero"):
        quantize_ort_int8(model, {"input": np.zeros((0, 1, 28, 28), np.float32)}, tmp_path / "q.onnx")


def test_missing_model_file_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="nope.onnx"):
        quantize_ort_int8(tmp_path / "nope.onnx", {"input": np.zeros((1, 1, 28, 28))}, tmp_path / "q.onnx")
