"""Reconstruction blocks: cut where one tensor crosses the graph, merged to hold enough FlexiQ layers.

On a small residual graph whose flatten reads the batch size through Shape: the skip connection
keeps its two convolutions in one block, the shape computation is no tensor a block hands on, and
running the blocks one after another reproduces the whole graph's output exactly.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

torch = pytest.importorskip("torch", reason="the finetune extra (torch) is not installed")

from flexiq_trt.finetune.graph_blocks import partition, run_block, shape_steps  # noqa: E402
from flexiq_trt.finetune.torch_graph import Replacement, TorchGraph  # noqa: E402

SHAPE = (2, 4, 6, 6)


class _Conv(torch.nn.Module):
    """A replacement module: the node's convolution, 'same' padded."""

    def __init__(self, w: np.ndarray) -> None:
        super().__init__()
        self.w = torch.from_numpy(w)

    def forward(self, x):
        return torch.nn.functional.conv2d(x, self.w, padding=self.w.shape[-1] // 2)


def _graph():
    rng = np.random.default_rng(0)
    ws = {k: rng.normal(size=(4, 4, 3, 3)).astype(np.float32) for k in ("wa", "wb", "wc")}
    fc = rng.normal(size=(4, 3)).astype(np.float32)
    inits = [onnx.numpy_helper.from_array(v, k) for k, v in ws.items()] + [
        onnx.numpy_helper.from_array(fc, "fc"), onnx.numpy_helper.from_array(np.array([0], np.int64), "zero"),
        onnx.numpy_helper.from_array(np.array([-1], np.int64), "minus_one")]
    conv = {"pads": [1, 1, 1, 1]}
    nodes = [
        helper.make_node("Conv", ["x", "wa"], ["a"], name="conv_a", **conv),
        helper.make_node("Relu", ["a"], ["ar"], name="relu_a"),
        helper.make_node("Conv", ["ar", "wb"], ["b"], name="conv_b", **conv),
        helper.make_node("Add", ["x", "b"], ["res"], name="add"),
        helper.make_node("Conv", ["res", "wc"], ["c"], name="conv_c", **conv),
        helper.make_node("GlobalAveragePool", ["c"], ["g"], name="gap"),
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], name="batch", axis=0),
        helper.make_node("Concat", ["batch", "minus_one"], ["flat_shape"], name="flat_shape", axis=0),
        helper.make_node("Reshape", ["g", "flat_shape"], ["flat"], name="flatten"),
        helper.make_node("MatMul", ["flat", "fc"], ["logits"], name="fc"),
        helper.make_node("Softmax", ["logits"], ["y"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(SHAPE))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [SHAPE[0], 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    repl = [Replacement(src, dst, (name,), _Conv(ws[w])) for src, dst, name, w in
            (("x", "a", "conv_a", "wa"), ("ar", "b", "conv_b", "wb"), ("res", "c", "conv_c", "wc"))]
    return TorchGraph(model, repl)


def test_residual_block_is_one_block_and_the_head_ends_at_the_logits():
    graph = _graph()
    blocks = partition(graph, min_layers=2)
    assert [(b.layers, b.inputs, b.outputs) for b in blocks] == [
        ((0, 1), ("x",), ("res",)),  # no cut inside the skip connection
        ((2,), ("res",), ("logits",)),  # the last block reproduces the logits, not the softmax
    ]
    one = partition(graph, min_layers=1)
    assert [(b.layers, b.outputs) for b in one] == [((0, 1), ("res",)), ((2,), ("c",))]


def test_shape_computation_is_not_a_cut_tensor():
    graph = _graph()
    names = {graph.steps[i][1][0].name for i in shape_steps(graph)}
    assert names == {"shape", "batch", "flat_shape"}


def test_blocks_in_sequence_reproduce_the_graph():
    graph = _graph()
    x = torch.from_numpy(np.random.default_rng(1).normal(size=SHAPE).astype(np.float32))
    with torch.no_grad():
        whole = graph({"x": x})["logits"]
        env = {"x": x}
        for block in partition(graph, min_layers=2):
            env.update(run_block(graph, block, {k: env[k] for k in block.inputs}, shape_steps(graph), SHAPE))
    torch.testing.assert_close(env["logits"], whole, rtol=0, atol=0)
