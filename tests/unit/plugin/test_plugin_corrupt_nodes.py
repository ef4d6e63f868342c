"""Corrupt FlexiQ nodes through TensorRT-RTX's ONNX parser: a clear error naming the field, never a crash.

The parser does not type-check attributes (docs/design.md §6), so these reach the plugin's createPlugin (or the
Python pre-check for what the parser would silently truncate).
"""

from __future__ import annotations

import numpy as np
import pytest
from _flexiq_models import conv_gemm_model, gemm_model, save
from onnx import helper, numpy_helper

from flexiq_trt.errors import PluginFieldError
from flexiq_trt.runtime.engine_builder import build_engine

pytestmark = [pytest.mark.plugin, pytest.mark.rtx]


def _tensor(name: str, array: np.ndarray):
    return helper.make_attribute(name, numpy_helper.from_array(array))


# (attribute replacements, regex the error must match); gemm: C_in 72 -> C_pad 96, N 24.
GEMM_CASES = {
    "permutation_int64": ({"permutation": _tensor("permutation", np.arange(96, dtype=np.int64))},
                          r"'permutation' has type kFLOAT16, expected kINT32"),
    "weight_int8_uint8": ({"weight_int8": _tensor("weight_int8", np.zeros(24 * 96, np.uint8))},
                          r"'weight_int8' has type kFLOAT16, expected kINT8"),
    "bias_bool": ({"bias": _tensor("bias", np.zeros(24, bool))}, r"'bias' has type kFLOAT16"),
    "weight_scale_as_ints": ({"weight_scale": helper.make_attribute("weight_scale", [1] * 24)},
                             r"'weight_scale' has type kINT32, expected kFLOAT32"),
    "group_size_float": ({"group_size": helper.make_attribute("group_size", 32.0)},
                         r"'group_size' has type kFLOAT32, expected kINT32"),
    "act_scale_string": ({"act_scale": helper.make_attribute("act_scale", "0.1")}, r"'act_scale' has type kCHAR"),
    "group_size_48": ({"group_size": helper.make_attribute("group_size", 48)}, r"'group_size' = 48 is not supported"),
    "missing_bias": ({"bias": None}, r"required plugin field 'bias' is missing"),
    "short_weight_step": ({"weight_step": _tensor("weight_step", np.ones(3 - 1, np.int8))},
                          r"'weight_step' has 2 elements, expected G_count = 3"),
    "weight_int8_minus_128": ({"weight_int8": _tensor("weight_int8", np.full(24 * 96, -128, np.int8))},
                              r"'weight_int8'\[0\] = -128 is out of range \[-127, 127\]"),
    "permutation_repeats": ({"permutation": _tensor("permutation", np.zeros(96, np.int32))},
                            r"'permutation' is not a permutation"),
    "act_scale_zero": ({"act_scale": helper.make_attribute("act_scale", 0.0)}, r"'act_scale' = 0 is invalid"),
    "activation_99": ({"activation": helper.make_attribute("activation", 99)}, r"'activation' = 99 is out of range"),
    "k_too_large": ({"in_channels": helper.make_attribute("in_channels", 140_000)},
                    r"K = R\*S\*C_pad = 1\*1\*140000 = 140000 exceeds 131071"),
    "k_unsigned_too_large": ({"in_channels": helper.make_attribute("in_channels", 70_000),
                              "act_signed": helper.make_attribute("act_signed", 0)}, r"exceeds 66311 \(MAX_K_UNSIGNED\)"),
    "weight_int4_as_floats": ({"weight_int4": helper.make_attribute("weight_int4", [0.5] * 4)},
                              r"'weight_int4' has type kFLOAT32, expected kINT8"),
}

# Caught in Python before parsing (flexiq_trt.runtime.node_check): the parser would hide these.
PRECHECK_CASES = {
    "layer_index_int64": ({"layer_index": helper.make_attribute("layer_index", 2**33)},
                          r"'layer_index' = 8589934592 does not fit int32"),
    "pads_int64": ({"in_channels": helper.make_attribute("in_channels", -(2**40))}, r"'in_channels' = -1099511627776"),
    "permutation_int64": ({"permutation": _tensor("permutation", np.arange(96, dtype=np.int64))},
                          r"'permutation' is a INT64 tensor, expected INT32"),
    "weight_scale_as_ints": ({"weight_scale": helper.make_attribute("weight_scale", [1] * 24)},
                             r"'weight_scale' is INTS, expected TENSOR"),
}


def _expect_rejected(rtx, tmp_path, case, replace, pattern, check_nodes) -> None:
    onnx_path = save(gemm_model(replace=replace), tmp_path / f"{case}.onnx")
    with pytest.raises(PluginFieldError, match=pattern) as info:
        build_engine(onnx_path, tmp_path / f"{case}.engine", trt=rtx, compute_capabilities=(86,),
                     check_nodes=check_nodes)
    assert "flexiq_gemm_0" in str(info.value) and str(onnx_path) in str(info.value)
    assert not (tmp_path / f"{case}.engine").exists()


@pytest.mark.parametrize("case", sorted(GEMM_CASES))
def test_corrupt_gemm_node_is_rejected_by_the_plugin(rtx, tmp_path, case) -> None:
    """Python pre-check off: the real parser hands the corrupt fields to createPlugin."""
    _expect_rejected(rtx, tmp_path, case, *GEMM_CASES[case], check_nodes=False)


@pytest.mark.parametrize("case", sorted(PRECHECK_CASES))
def test_corrupt_gemm_node_is_rejected_before_parsing(rtx, tmp_path, case) -> None:
    _expect_rejected(rtx, tmp_path, case, *PRECHECK_CASES[case], check_nodes=True)


def test_int64_truncation_is_invisible_to_the_plugin(rtx, tmp_path) -> None:
    """Why the pre-check exists: without it, layer_index 2**32 + 0 reaches the plugin as 0 and builds."""
    replace = {"layer_index": helper.make_attribute("layer_index", 2**32)}
    onnx_path = save(gemm_model(replace=replace), tmp_path / "t.onnx")
    assert build_engine(onnx_path, tmp_path / "t.engine", trt=rtx, check_nodes=False).size_bytes > 0


def test_corrupt_conv_geometry_is_rejected(rtx, tmp_path) -> None:
    model = conv_gemm_model(conv_replace={"strides": helper.make_attribute("strides", [1, 0])})
    onnx_path = save(model, tmp_path / "c.onnx")
    with pytest.raises(PluginFieldError, match=r"FlexiQConv node 'flexiq_conv_0': plugin field 'strides'\[1\] = 0"):
        build_engine(onnx_path, tmp_path / "c.engine", trt=rtx)


def test_channel_mismatch_with_the_input_is_rejected(rtx, tmp_path) -> None:
    # The node says 64 input channels, the graph feeds 72: caught by getOutputShapes during parsing.
    onnx_path = save(gemm_model(in_channels=64), tmp_path / "ok.onnx")
    model = gemm_model(in_channels=64)
    model.graph.input[0].type.tensor_type.shape.dim[-1].dim_value = 72
    bad = save(model, tmp_path / "bad.onnx")
    build_engine(onnx_path, tmp_path / "ok.engine", trt=rtx)  # control: the consistent model builds
    with pytest.raises(PluginFieldError, match=r"last dimension 72 but plugin field 'in_channels' = 64"):
        build_engine(bad, tmp_path / "bad.engine", trt=rtx)
