"""find_layers: eligibility reasons, canonical weights, fused activations, non-negativity, MACs."""

from __future__ import annotations

import numpy as np
import pytest
from _utils import models as M
from onnx import helper, numpy_helper

from flexiq_trt.errors import ConfigError
from flexiq_trt.intake import find_layers, prepare_model
from flexiq_trt.plugin_spec import CONV_OP, GEMM_OP, Activation

EXPECTED_ACT = {
    "none": (Activation.NONE, 0.0, 0.0), "relu": (Activation.RELU, 0.0, 0.0),
    "clip": (Activation.CLIP, -0.5, 6.0), "hardswish": (Activation.HARD_SWISH, 0.0, 0.0),
    "silu": (Activation.SILU, 0.0, 0.0), "sigmoid": (Activation.SIGMOID, 0.0, 0.0),
    "leakyrelu": (Activation.LEAKY_RELU, 0.1, 0.0), "hardsigmoid": (Activation.HARD_SIGMOID, 0.25, 0.4),
    "tanh": (Activation.TANH, 0.0, 0.0), "gelu": (Activation.GELU, 0.0, 0.0),
    "gelu_erf": (Activation.GELU, 0.0, 0.0), "gelu_erf_half_first": (Activation.GELU, 0.0, 0.0),
}


def layers_of(model, g=32):
    return find_layers(prepare_model(model), g)


@pytest.mark.parametrize("name", sorted(EXPECTED_ACT))
@pytest.mark.parametrize("layer", ["conv", "matmul"])
def test_activation_detected(name, layer):
    nodes, inits = M.ACTIVATION_NODES[name]
    build = M.conv_then if layer == "conv" else M.matmul_then
    (el,), skipped = layers_of(build(nodes, extra_inits=inits, opset=M.ACTIVATION_OPSET))
    act, alpha, beta = EXPECTED_ACT[name]
    assert el.activation == act
    assert el.activation_alpha == pytest.approx(alpha) and el.activation_beta == pytest.approx(beta)
    assert (el.output_name == "y") == (name != "none")
    assert not skipped


def test_activation_not_fused_when_tensor_has_other_uses():
    nodes = [helper.make_node("Relu", ["c"], ["r"], name="act"), helper.make_node("Add", ["r", "c"], ["y"])]
    (el,), _ = layers_of(M.conv_then(nodes))
    assert el.activation == Activation.NONE and el.output_name == "c" and el.replaced_nodes == ["conv"]


def test_silu_not_fused_when_sigmoid_shared():
    nodes = [helper.make_node("Sigmoid", ["c"], ["s"], name="sig"), helper.make_node("Mul", ["c", "s"], ["m"]),
             helper.make_node("Add", ["m", "s"], ["y"])]
    (el,), _ = layers_of(M.conv_then(nodes))
    assert el.activation == Activation.NONE


def test_activation_not_fused_into_graph_output():
    model = M.conv_then(M.ACTIVATION_NODES["relu"][0])
    model.graph.output.add().CopyFrom(helper.make_tensor_value_info("c", 1, [1, 16, 6, 6]))
    (el,), _ = layers_of(model)
    assert el.activation == Activation.NONE and el.output_name == "c"


def test_depthwise_only_reports_reason():
    eligible, skipped = layers_of(M.depthwise_only())
    assert eligible == []
    assert [(s.name, s.op_type) for s in skipped] == [("dw", "Conv")] and "depthwise" in skipped[0].reason


def test_channels_below_group_skipped():
    eligible, skipped = layers_of(M.conv_then(M.ACTIVATION_NODES["relu"][0], c_in=48), g=64)
    assert eligible == [] and "below one channel group (64)" in skipped[0].reason
    eligible, _ = layers_of(M.conv_then(M.ACTIVATION_NODES["relu"][0], c_in=48), g=32)
    assert len(eligible) == 1 and eligible[0].plugin_op == CONV_OP


def test_auto_group_size_needs_only_the_smallest_group():
    """Setting 0 (auto, the default): a layer's own G decides, so C_in 48 (G 32) stays eligible."""
    for c_in, eligible_count in ((48, 1), (96, 1), (16, 0)):
        eligible, skipped = layers_of(M.conv_then(M.ACTIVATION_NODES["relu"][0], c_in=c_in), g=0)
        assert len(eligible) == eligible_count, (c_in, skipped)
        if not eligible:
            assert "C_in 16 is below one channel group (32)" in skipped[0].reason


def test_unsupported_group_size():
    with pytest.raises(ConfigError, match="16"):
        layers_of(M.depthwise_only(), g=16)


def test_gemm_canonical_weight_alpha_beta_transb():
    model = M.gemm_transb(alpha=0.5, beta=2.0)
    (el,), _ = layers_of(model)
    w = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "w"))
    c = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "c"))
    np.testing.assert_allclose(el.weight, 0.5 * w)
    np.testing.assert_allclose(el.bias, 2.0 * c)
    assert el.plugin_op == GEMM_OP and el.macs == 24 * 64 and el.input_shape == (1, 64)


def test_gemm_trans_a_and_dynamic_weight_skipped():
    m = M.gemm_transb()
    m.graph.node[0].attribute.append(helper.make_attribute("transA", 1))
    _, skipped = find_layers(m, 32)  # unprepared on purpose: shapes not needed for this reason
    assert "transA" in skipped[0].reason
    nodes = [helper.make_node("MatMul", ["x", "x2"], ["y"], name="mm")]
    dyn = M.make_model(nodes, [M.vinfo("x", [1, 4, 64]), M.vinfo("x2", [1, 64, 8])], [M.vinfo("y", [1, 4, 8])])
    _, skipped = layers_of(dyn)
    assert skipped[0].name == "mm" and "not constant" in skipped[0].reason


def test_matmul_weight_transposed_bias_fused_and_macs():
    model = M.mlp()
    (fc1, fc2), _ = layers_of(model)
    w1 = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "w1"))
    b2 = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "b2"))
    np.testing.assert_array_equal(fc1.weight, w1.T)
    np.testing.assert_array_equal(fc2.bias, b2)  # Add(b2, m2): constant on the left
    assert fc1.replaced_nodes == ["fc1", "fc1_bias", "act"] and fc1.activation == Activation.RELU
    assert fc1.macs == 5 * 96 * 64 and fc2.macs == 5 * 40 * 96
    assert not fc1.input_nonnegative and fc2.input_nonnegative


def test_conv1d_convtranspose_skipped():
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="c1d"),
             helper.make_node("ConvTranspose", ["c", "wt"], ["y"], name="ct")]
    model = M.make_model(nodes, [M.vinfo("x", [1, 64, 10])], [M.vinfo("y", None)],
                         [("w", rng.standard_normal((64, 64, 3)).astype(np.float32)),
                          ("wt", rng.standard_normal((64, 8, 3)).astype(np.float32))])
    eligible, skipped = layers_of(model)
    assert eligible == []
    reasons = {s.name: s.reason for s in skipped}
    assert "1-D" in reasons["c1d"] and "ConvTranspose" in reasons["ct"]


def test_auto_pad_resolved_to_explicit():
    (el,), _ = layers_of(M.conv_geometry(auto_pad="SAME_UPPER", hw=11, strides=(2, 1), dilations=(1, 2)))
    assert el.geometry.pads == (1, 2, 1, 2)
    assert el.geometry.output_hw(11, 11) == (6, 11)
    (el,), _ = layers_of(M.conv_geometry(auto_pad="SAME_LOWER", hw=10, strides=(2, 2), dilations=(1, 1)))
    assert el.geometry.pads == (1, 1, 0, 0)


def test_input_nonnegative_through_pool_and_concat():
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Clip", ["x", "z", ""], ["cl"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[1, 1]),
             helper.make_node("Concat", ["p", "cl"], ["cat"], axis=1),
             helper.make_node("Conv", ["cat", "w"], ["c1"], name="pos"),
             helper.make_node("Conv", ["x", "w2"], ["y"], name="neg"),
             helper.make_node("Conv", ["c1", "w2"], ["y2"], name="after_plain_conv")]
    model = M.make_model(nodes, [M.vinfo("x", [1, 32, 4, 4])], [M.vinfo("y", None), M.vinfo("y2", None)],
                         [("z", np.array(0.0, np.float32)), ("w", rng.standard_normal((32, 64, 1, 1)).astype(np.float32)),
                          ("w2", rng.standard_normal((32, 32, 1, 1)).astype(np.float32))])
    eligible, skipped = layers_of(model)
    flags = {e.name: e.input_nonnegative for e in eligible}
    assert flags == {"pos": True, "neg": False, "after_plain_conv": False} and not skipped


def test_erf_gelu_with_other_constants_is_not_fused():
    """x * 0.5 * (1 + erf(x / 2)) is not GELU: the layer keeps no activation and the nodes stay."""
    nodes, inits = M.ACTIVATION_NODES["gelu_erf"]
    inits = [(n, np.array(2.0, np.float32)) if n == "sqrt2" else (n, v) for n, v in inits]
    (el,), _ = layers_of(M.matmul_then(nodes, extra_inits=inits, opset=M.ACTIVATION_OPSET))
    assert el.activation == Activation.NONE and el.output_name != "y"
