"""The shipped Fashion-MNIST ResNet: small, the promised interface, and its recorded accuracy."""

from __future__ import annotations

import json

import numpy as np
import onnx

from flexiq_trt.datasets import fashion_mnist, model_zoo


def _provenance() -> dict:
    return json.loads(model_zoo.load_model_path("fmnist_resnet").with_suffix(".json").read_text())


def test_shipped_model_interface() -> None:
    path = model_zoo.load_model_path("fmnist_resnet")
    assert path.stat().st_size < 2_000_000
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 13
    (inp,) = model.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert inp.name == "input" and dims[0].dim_param and [d.dim_value for d in dims[1:]] == [1, 28, 28]
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("Conv") >= 8 and "Gemm" in ops
    assert ops.count("BatchNormalization") == _provenance()["onnx"]["batchnorm_nodes"]


def test_provenance_records_recipe_and_normalisation() -> None:
    info = _provenance()
    assert info["recipe"]["seed"] == 0 and info["recipe"]["epochs"] > 0
    assert str(fashion_mnist.MEAN) in info["input"]["normalisation"]
    assert str(fashion_mnist.STD) in info["input"]["normalisation"]
    assert info["test_accuracy_fp32_ort"] >= 0.91


def test_shipped_model_reaches_recorded_accuracy(fmnist_test: fashion_mnist.LabelledImages) -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_zoo.load_model_path("fmnist_resnet")), providers=["CPUExecutionProvider"])
    images, labels = fmnist_test.images[:2000], fmnist_test.labels[:2000]
    predicted = np.concatenate([session.run(None, {"input": images[i : i + 500]})[0].argmax(1) for i in range(0, 2000, 500)])
    accuracy = float(np.mean(predicted == labels))
    assert abs(accuracy - _provenance()["test_accuracy_fp32_ort"]) <= 0.01
