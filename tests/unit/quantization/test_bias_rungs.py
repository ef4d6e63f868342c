"""Ratio-aware bias correction: the per-rung table cancels the mean output shift of the 4-bit groups.

On the statistics' own data, with the layer computed by the NumPy reference (the oracle), the mean
pre-activation output at every rung k must equal the INT8 model's (rung 0) mean, channel by channel:
that is exactly what the table is built to do, so any error in the column sums (conv padding,
strides, dilations, taps), the group order or the sign shows up here.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from flexiq_trt.plugin_spec import Activation
from flexiq_trt.quantization import reference
from flexiq_trt.quantization.bias_rungs import bias_table
from flexiq_trt.quantization.config import QuantConfig
from flexiq_trt.quantization.group_stats import GroupStatsObserver
from flexiq_trt.quantization.layer import ConvGeometry
from flexiq_trt.quantization.quantize_layer import LayerSource, quantize_layer, reorder_groups
from flexiq_trt.quantization.stage import without_bias_correction
from flexiq_trt.quantization.weights import base_channel_order

GEOMETRIES = {
    "gemm": None,
    "conv1x1": ConvGeometry((1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
    "conv3x3_s2_pad_dil": ConvGeometry((3, 3), (2, 1), (1, 0, 2, 1), (1, 2)),
}


def make(kind: str, act_shift: str, signed: bool, seed: int = 0, c: int = 80, bias_correction: bool = True):
    """A quantized layer (base order) with its statistics gathered on `x`, and `x`."""
    rng = np.random.default_rng(seed)
    geo = GEOMETRIES[kind]
    conv = geo is not None
    w = rng.normal(size=(12, c, *geo.kernel_shape) if conv else (12, c)).astype(np.float32)
    x = (rng.normal(size=(4, c, 9, 9)) if conv else rng.normal(size=(3, 40, c))).astype(np.float32)
    x *= np.linspace(0.05, 3, c).reshape((1, c, 1, 1) if conv else (1, 1, c))
    if not signed:
        x = np.abs(x) + np.float32(0.2)  # a mean far from 0: the 4-bit rounding shifts it
    src = LayerSource("l", conv, w, rng.normal(size=12).astype(np.float32), geo, Activation.NONE, 0, 0, not signed)
    ch_range = np.abs(np.moveaxis(x, 1 if conv else -1, 0)).reshape(c, -1).max(axis=1)
    order = base_channel_order(ch_range, 32)
    s_a = float(np.abs(x).max() / (127 if signed else 255))
    obs = GroupStatsObserver(order, c, 32, s_a, signed, geo, max_rows_per_batch=64).with_code_sums()
    for part in np.array_split(x, 2):  # two batches: the sums accumulate
        obs.update(part)
    config = QuantConfig(act_shift=act_shift, bias_correction=bias_correction)
    return quantize_layer(src, 0, order, s_a, obs.result(), config).layer, x


def mean_pre_activation(layer, x: np.ndarray, n4: int) -> np.ndarray:
    """Mean over rows of float(acc) * out_scale + bias[rung] (the layer has no activation), per channel."""
    _, y = reference.layer_forward(layer, x, n4)
    axes = tuple(i for i in range(y.ndim) if i != (1 if layer.is_conv else y.ndim - 1))
    return y.astype(np.float64).mean(axis=axes)


@pytest.mark.parametrize("kind", sorted(GEOMETRIES))
@pytest.mark.parametrize("act_shift", ["dynamic", "static", "naive"])
@pytest.mark.parametrize("signed", [True, False], ids=["s8", "u8"])
def test_every_rung_keeps_the_int8_mean(kind, act_shift, signed):
    layer, x = make(kind, act_shift, signed)
    assert layer.group_bias_shift is not None and layer.group_count == 3
    plain = replace(layer, group_bias_shift=None)
    base = mean_pre_activation(layer, x, 0)
    np.testing.assert_array_equal(base, mean_pre_activation(plain, x, 0))  # rung 0 is the INT8 bias
    moved = 0.0
    for k in range(1, layer.group_count + 1):
        corrected = mean_pre_activation(layer, x, k * 32)
        uncorrected = mean_pre_activation(plain, x, k * 32)
        scale = np.abs(uncorrected - base).max()
        moved = max(moved, scale)
        np.testing.assert_allclose(corrected, base, rtol=0, atol=1e-5 * max(1.0, float(np.abs(base).max())),
                                   err_msg=f"rung {k}")
    assert moved > 1e-3, "the 4-bit groups never moved the mean: the test is too weak"


def test_table_layout_and_group_reordering():
    layer, x = make("conv3x3_s2_pad_dil", "dynamic", True, seed=3)
    table = layer.bias_table()
    assert table.shape == (layer.group_count + 1, layer.out_channels) and table.dtype == np.float32
    np.testing.assert_array_equal(table[0], layer.bias)
    np.testing.assert_allclose(table[1:] - table[:-1], -layer.group_bias_shift, rtol=1e-5, atol=1e-6)
    rank = [1, 0, 2]  # the padded group stays last
    moved = reorder_groups(layer, rank)
    np.testing.assert_array_equal(moved.group_bias_shift, layer.group_bias_shift[rank])
    for k in range(moved.group_count + 1):  # the reordered layer still keeps the INT8 mean at every rung
        np.testing.assert_allclose(mean_pre_activation(moved, x, 32 * k), mean_pre_activation(layer, x, 0),
                                   rtol=0, atol=1e-4)


def test_off_and_without_give_one_bias_at_every_rung():
    layer, _ = make("gemm", "dynamic", True, bias_correction=False)
    assert layer.group_bias_shift is None
    np.testing.assert_array_equal(layer.bias_table(), np.tile(layer.bias, (layer.group_count + 1, 1)))
    on, _ = make("gemm", "dynamic", True)
    from flexiq_trt.quantization.quantize_layer import LayerQuantResult

    (stripped,) = without_bias_correction([LayerQuantResult(on, np.zeros(3), 0.0, 0.0)])
    assert stripped.layer.group_bias_shift is None and on.group_bias_shift is not None
    assert bias_table(on.bias, None, 3).shape == (4, on.out_channels)


def test_no_code_sums_without_the_option():
    obs = GroupStatsObserver(np.arange(32, dtype=np.int32), 32, 32, 0.1, True, None)
    obs.update(np.ones((4, 32), np.float32))
    assert obs.result().code_sums is None
