"""The finetune's ONNX -> PyTorch interpreter: same outputs as ONNX Runtime, unsupported ops named."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

torch = pytest.importorskip("torch", reason="the finetune extra (torch) is not installed")

from flexiq_trt.errors import UnsupportedModelError  # noqa: E402
from flexiq_trt.finetune.torch_graph import TorchGraph  # noqa: E402
from flexiq_trt.report.evaluate import session  # noqa: E402


def _model(nodes, inits, out_shape):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


def test_matches_onnxruntime_on_a_small_graph():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    fc = rng.normal(size=(4, 5)).astype(np.float32)
    inits = [onnx.numpy_helper.from_array(w, "w"), onnx.numpy_helper.from_array(fc, "fc"),
             onnx.numpy_helper.from_array(np.array([0, -1], np.int64), "shape"),
             onnx.numpy_helper.from_array(np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64), "pads")]
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["xp"], name="pad", mode="reflect"),
        helper.make_node("Conv", ["xp", "w"], ["c"], name="conv", strides=[2, 1], pads=[0, 1, 1, 0]),
        helper.make_node("HardSwish", ["c"], ["h"], name="hs"),
        helper.make_node("MaxPool", ["h"], ["m"], name="mp", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["m"], ["g"], name="gap"),
        helper.make_node("Reshape", ["g", "shape"], ["r"], name="reshape"),
        helper.make_node("MatMul", ["r", "fc"], ["l"], name="mm"),
        helper.make_node("Softmax", ["l"], ["y"], name="sm"),
    ]
    model = _model(nodes, inits, [2, 5])
    x = rng.normal(size=(2, 3, 8, 8)).astype(np.float32)
    graph = TorchGraph(model)
    with torch.no_grad():
        got = graph({"x": torch.from_numpy(x)})["y"].numpy()
        logits = graph.logits({"x": torch.from_numpy(x)}).numpy()
    np.testing.assert_allclose(got, session(model).run(None, {"x": x})[0], rtol=1e-5, atol=1e-6)
    assert graph.softmax_input == "l"  # the distillation reads the logits, not the probabilities
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), got, rtol=1e-5, atol=1e-7)


def test_unsupported_operator_names_the_node():
    nodes = [helper.make_node("Resize", ["x"], ["y"], name="upsample_3")]
    with pytest.raises(UnsupportedModelError, match="'upsample_3' \\(Resize\\)"):
        TorchGraph(_model(nodes, [], [2, 3, 16, 16]))


def test_the_shipped_fmnist_model_matches_onnxruntime():
    from flexiq_trt.datasets.model_zoo import load_model_path
    from flexiq_trt.errors import FlexiqError

    try:
        model = onnx.load(load_model_path("fmnist_resnet"))
    except FlexiqError as e:
        pytest.skip(f"test material missing ({e})")
    x = np.random.default_rng(1).normal(size=(3, 1, 28, 28)).astype(np.float32)
    name = model.graph.input[0].name
    with torch.no_grad():
        got = TorchGraph(model)({name: torch.from_numpy(x)})[model.graph.output[0].name].numpy()
    np.testing.assert_allclose(got, session(model).run(None, {name: x})[0], rtol=1e-4, atol=1e-4)
