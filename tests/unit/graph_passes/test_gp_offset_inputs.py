"""Offset of bounded signed inputs (graph_passes.offset_bounded_inputs): which layers, exact float, INT8 edges kept."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from _utils import models as M
from _utils.ort_run import session
from onnx import helper

from flexiq_trt.graph_passes.graph_index import GraphIndex
from flexiq_trt.graph_passes.offset_bounded_inputs import ACTIVATION_LOWER_BOUNDS, LowerBounds
from flexiq_trt.intake.stage import run_intake
from flexiq_trt.plugin_spec import Activation

K, N, C, HW = 64, 24, 64, 5
FLOAT_TOL = 1e-5


def _act(name: str, src: str, dst: str):
    """Activation nodes of tests/_utils/models.py renamed to read `src` and write `dst`."""
    nodes, inits = M.ACTIVATION_NODES[name]
    rename = {"c": src, "y": dst}
    out = []
    for n in nodes:
        m = onnx.NodeProto()
        m.CopyFrom(n)
        m.input[:] = [rename.get(x, f"{dst}_{x}" if x not in dict(inits) else x) for x in n.input]
        m.output[:] = [rename.get(x, f"{dst}_{x}") for x in n.output]
        m.name = f"{dst}_{n.name}"
        out.append(m)
    return out, list(inits)


def _model(layer: str, act: str = "hardswish", rng_seed: int = 0, opset: int = M.ACTIVATION_OPSET) -> onnx.ModelProto:
    """x -> Identity -> activation `act` -> `layer` -> y (the activation is nobody's fused output)."""
    rng = np.random.default_rng(rng_seed)
    conv = layer.startswith("conv")
    shape = [2, C, HW, HW] if conv else [2, 3, K]
    nodes = [helper.make_node("Identity", ["x"], ["c0"], name="id")]
    act_nodes, inits = _act(act, "c0", "a")
    nodes += act_nodes
    inits = list(inits)
    if layer == "conv1x1":
        nodes.append(helper.make_node("Conv", ["a", "w", "b"], ["y"], name="layer"))
        inits += [("w", (rng.standard_normal((N, C, 1, 1)) * 0.1).astype(np.float32)),
                  ("b", rng.standard_normal(N).astype(np.float32))]
    elif layer == "conv3x3_nopad":
        nodes.append(helper.make_node("Conv", ["a", "w"], ["y"], name="layer", strides=[2, 2]))
        inits += [("w", (rng.standard_normal((N, C, 3, 3)) * 0.1).astype(np.float32))]
    elif layer == "conv3x3_pad":
        nodes.append(helper.make_node("Conv", ["a", "w", "b"], ["y"], name="layer", pads=[1, 1, 1, 1]))
        inits += [("w", (rng.standard_normal((N, C, 3, 3)) * 0.1).astype(np.float32)),
                  ("b", rng.standard_normal(N).astype(np.float32))]
    elif layer == "gemm":
        shape = [4, K]
        nodes.append(helper.make_node("Gemm", ["a", "w", "b"], ["y"], name="layer", transB=1, alpha=2.0, beta=0.5))
        inits += [("w", (rng.standard_normal((N, K)) * 0.1).astype(np.float32)),
                  ("b", rng.standard_normal((1, N)).astype(np.float32))]
    elif layer in ("matmul", "matmul_bias"):
        out = "m" if layer == "matmul_bias" else "y"
        nodes.append(helper.make_node("MatMul", ["a", "w"], [out], name="layer"))
        inits += [("w", (rng.standard_normal((K, N)) * 0.1).astype(np.float32))]
        if layer == "matmul_bias":
            nodes.append(helper.make_node("Add", ["bv", "m"], ["y"], name="layer_bias"))
            inits += [("bv", rng.standard_normal(N).astype(np.float32))]
    return M.make_model(nodes, [M.vinfo("x", shape)], [M.vinfo("y", None)], inits, opset=opset)


def _x(model: onnx.ModelProto, seed: int = 1) -> np.ndarray:
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    return (np.random.default_rng(seed).standard_normal(dims) * 3).astype(np.float32)


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return session(model).run(None, {"x": x})[0]


@pytest.mark.parametrize("layer", ["conv1x1", "conv3x3_nopad", "gemm", "matmul", "matmul_bias"])
@pytest.mark.parametrize("act", ["hardswish", "silu", "gelu_erf", "gelu"])
def test_offset_is_exact_and_makes_the_input_unsigned(layer, act):
    model = _model(layer, act)
    x = _x(model)
    before = run_intake(model, {"x": x}, 32, offset_inputs=False)
    after = run_intake(model, {"x": x}, 32, offset_inputs=True)
    (el0,), (el1,) = before.eligible, after.eligible
    assert not el0.input_nonnegative and el1.input_nonnegative
    expected = ACTIVATION_LOWER_BOUNDS[{"hardswish": Activation.HARD_SWISH, "silu": Activation.SILU}.get(act, Activation.GELU)]
    assert [o.lower_bound for o in after.offsets] == [expected]
    assert el1.input_name == after.offsets[0].shifted
    ref = _run(model, x)
    np.testing.assert_allclose(_run(after.prepared, x), ref, atol=FLOAT_TOL * np.abs(ref).max())
    # the eligible record's own float bias reproduces the layer: W (x - L) + b' on the shifted input
    shifted = np.maximum(_run_tensor(after.prepared, x, el1.input_name), 0)
    assert shifted.min() >= 0


def _run_tensor(model: onnx.ModelProto, x: np.ndarray, name: str) -> np.ndarray:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    m.graph.output.add().CopyFrom(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return session(m).run([name], {"x": x})[0]


def test_padded_conv_keeps_its_signed_input():
    """A zero-padded border reads 0, which the shifted tensor cannot express: no offset."""
    model = _model("conv3x3_pad")
    after = run_intake(model, {"x": _x(model)}, 32, offset_inputs=True)
    assert not after.offsets and not after.eligible[0].input_nonnegative


def test_unbounded_input_is_left_alone():
    model = M.residual_block()
    x = np.random.default_rng(0).standard_normal([1, 64, 8, 8]).astype(np.float32)
    name = model.graph.input[0].name
    after = run_intake(model, {name: x}, 32, offset_inputs=True)
    assert not after.offsets


def test_fused_output_of_an_eligible_layer_is_not_shifted():
    """conv -> HardSwish -> conv: the first layer's fused output may become an INT8 edge (docs/design.md §2.8)."""
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"], name="conv1"),
             helper.make_node("HardSwish", ["c"], ["h"], name="hs"),
             helper.make_node("Conv", ["h", "w2"], ["y"], name="conv2")]
    model = M.make_model(nodes, [M.vinfo("x", [1, C, HW, HW])], [M.vinfo("y", None)],
                         [("w1", (rng.standard_normal((C, C, 1, 1)) * 0.1).astype(np.float32)),
                          ("w2", (rng.standard_normal((N, C, 1, 1)) * 0.1).astype(np.float32))], opset=14)
    after = run_intake(model, {"x": _x(model)}, 32, offset_inputs=True)
    assert len(after.eligible) == 2 and not after.offsets
    no_edges = run_intake(model, {"x": _x(model)}, 32, offset_inputs=True, int8_edges=False)  # --no-int8-edges
    assert [o.layer for o in no_edges.offsets] == ["conv2"]


def test_fused_output_that_also_feeds_other_nodes_is_shifted():
    """conv -> HardSwish -> {conv, graph output}: not an INT8 edge (a float reader), so the reader is shifted."""
    rng = np.random.default_rng(5)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"], name="conv1"),
             helper.make_node("HardSwish", ["c"], ["h"], name="hs"),
             helper.make_node("Conv", ["h", "w2"], ["y"], name="conv2"),
             helper.make_node("GlobalAveragePool", ["h"], ["p"], name="pool")]
    model = M.make_model(nodes, [M.vinfo("x", [1, C, HW, HW])], [M.vinfo("y", None), M.vinfo("p", None)],
                         [("w1", (rng.standard_normal((C, C, 1, 1)) * 0.1).astype(np.float32)),
                          ("w2", (rng.standard_normal((N, C, 1, 1)) * 0.1).astype(np.float32))], opset=14)
    x = _x(model)
    after = run_intake(model, {"x": x}, 32, offset_inputs=True)
    assert [o.layer for o in after.offsets] == ["conv2"]
    for a, b in zip(session(model).run(None, {"x": x}), session(after.prepared).run(None, {"x": x}), strict=True):
        np.testing.assert_allclose(b, a, atol=FLOAT_TOL * np.abs(a).max())


def test_two_readers_share_one_shifted_tensor():
    rng = np.random.default_rng(4)
    nodes = [helper.make_node("Identity", ["x"], ["c0"], name="id"), helper.make_node("HardSwish", ["c0"], ["h"], name="hs"),
             helper.make_node("Conv", ["h", "w1"], ["y1"], name="conv1"),
             helper.make_node("Conv", ["h", "w2"], ["y2"], name="conv2")]
    model = M.make_model(nodes, [M.vinfo("x", [1, C, HW, HW])], [M.vinfo("y1", None), M.vinfo("y2", None)],
                         [("w1", (rng.standard_normal((N, C, 1, 1)) * 0.1).astype(np.float32)),
                          ("w2", (rng.standard_normal((N, C, 1, 1)) * 0.1).astype(np.float32))], opset=14)
    x = _x(model)
    after = run_intake(model, {"x": x}, 32, offset_inputs=True)
    assert len(after.offsets) == 2 and len({o.shifted for o in after.offsets}) == 1
    assert sum(n.op_type == "Relu" for n in after.prepared.graph.node) == 1
    for a, b in zip(session(model).run(None, {"x": x}), session(after.prepared).run(None, {"x": x}), strict=True):
        np.testing.assert_allclose(b, a, atol=FLOAT_TOL * np.abs(a).max())


@pytest.mark.parametrize("case, expected", [
    ("gate", -0.375),  # HardSwish(x) * Sigmoid(z): a [0, 1] gate keeps the bound
    ("scale", -0.75),  # HardSwish(x) * 2
    ("pool", -0.375),  # GlobalAveragePool keeps it
    ("concat", -0.375),  # Concat(Relu, HardSwish): the smaller bound
    ("residual", None),  # Add of two bounded tensors: not derived
    ("tanh", None),  # symmetric: a shift would not help
    ("clip_two_sided", None),  # Clip(-1, 1)
    ("clip_one_sided", -0.5),  # Clip(-0.5, 6)
])
def test_lower_bounds(case, expected):
    nodes = [helper.make_node("HardSwish", ["x"], ["h"], name="hs")]
    inits = []
    if case == "gate":
        nodes += [helper.make_node("Sigmoid", ["z"], ["g"]), helper.make_node("Mul", ["h", "g"], ["y"])]
    elif case == "scale":
        nodes.append(helper.make_node("Mul", ["two", "h"], ["y"]))
        inits.append(("two", np.array(2.0, np.float32)))
    elif case == "pool":
        nodes.append(helper.make_node("GlobalAveragePool", ["h"], ["y"]))
    elif case == "concat":
        nodes += [helper.make_node("Relu", ["z"], ["r"]), helper.make_node("Concat", ["r", "h"], ["y"], axis=1)]
    elif case == "tanh":
        nodes.append(helper.make_node("Tanh", ["z"], ["y"]))
    elif case.startswith("clip"):
        lo, hi = (-1.0, 1.0) if case == "clip_two_sided" else (-0.5, 6.0)
        nodes.append(helper.make_node("Clip", ["z", "lo", "hi"], ["y"]))
        inits += [("lo", np.array(lo, np.float32)), ("hi", np.array(hi, np.float32))]
    else:
        nodes.append(helper.make_node("Add", ["h", "h"], ["y"]))
    model = M.make_model(nodes, [M.vinfo("x", [1, 4, 2, 2]), M.vinfo("z", [1, 4, 2, 2])], [M.vinfo("y", None)],
                         inits, opset=14)
    assert LowerBounds(GraphIndex(model))("y") == expected


def test_bounds_hold_on_dense_samples():
    """The table's bounds are below every value the activations produce (and within 1e-6 of the minimum)."""
    x = np.linspace(-6, 6, 2_000_001, dtype=np.float64)
    sig = 1 / (1 + np.exp(-x))
    from math import erf
    xs = x[::10]
    gelu = 0.5 * xs * (1 + np.vectorize(erf)(xs / np.sqrt(2)))
    values = {Activation.HARD_SWISH: x * np.clip(x + 3, 0, 6) / 6, Activation.SILU: x * sig, Activation.GELU: gelu}
    tanh_gelu = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))  # Gelu(approximate="tanh")
    for act, v in values.items():
        assert ACTIVATION_LOWER_BOUNDS[act] <= v.min() < ACTIVATION_LOWER_BOUNDS[act] + 1e-6 * (act != Activation.GELU) \
            + 1e-4 * (act == Activation.GELU), act
    assert ACTIVATION_LOWER_BOUNDS[Activation.GELU] <= tanh_gelu.min() < ACTIVATION_LOWER_BOUNDS[Activation.GELU] + 1e-6


@pytest.mark.parametrize("form", ["hardswish_op", "hardswish_mul", "silu_mul", "gelu_tanh"])
def test_activation_bounds_when_its_input_has_other_readers(form):
    """x also feeds a residual Add, so no fusion pattern matches; the activation's own node still proves the bound."""
    nodes = [helper.make_node("Identity", ["x"], ["i"], name="id"), helper.make_node("Add", ["i", "i"], ["z"], name="res")]
    if form == "hardswish_op":
        nodes.append(helper.make_node("HardSwish", ["i"], ["y"]))
        expected = -0.375
    elif form == "hardswish_mul":
        nodes += [helper.make_node("HardSigmoid", ["i"], ["g"], alpha=1 / 6, beta=0.5), helper.make_node("Mul", ["i", "g"], ["y"])]
        expected = -0.375
    elif form == "silu_mul":
        nodes += [helper.make_node("Sigmoid", ["i"], ["g"]), helper.make_node("Mul", ["g", "i"], ["y"])]
        expected = ACTIVATION_LOWER_BOUNDS[Activation.SILU]
    else:
        nodes.append(helper.make_node("Gelu", ["i"], ["y"], approximate="tanh"))
        expected = ACTIVATION_LOWER_BOUNDS[Activation.GELU]
    model = M.make_model(nodes, [M.vinfo("x", [1, 4])], [M.vinfo("y", None), M.vinfo("z", None)], opset=20)
    assert LowerBounds(GraphIndex(model))("y") == expected
