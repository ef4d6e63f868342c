"""Layer quantization: codes in range, GPTQ never worse than plain rounding, group reordering."""

import numpy as np
import pytest

from flexiq_trt.plugin_spec import Activation
from flexiq_trt.quantization import reference
from flexiq_trt.quantization.config import QuantConfig
from flexiq_trt.quantization.group_stats import GroupStatsObserver
from flexiq_trt.quantization.layer import ConvGeometry
from flexiq_trt.quantization.quantize_layer import LayerSource, quantize_layer, reorder_groups
from flexiq_trt.quantization.weights import base_channel_order


def make(conv, rounding, rng, c=48):
    geo = ConvGeometry((3, 3), (1, 1), (1, 1, 1, 1), (1, 1)) if conv else None
    w = rng.normal(size=(16, c, 3, 3) if conv else (16, c)).astype(np.float32)
    x = (rng.normal(size=(8, c, 6, 6)) if conv else rng.normal(size=(64, c))).astype(np.float32)
    x *= np.linspace(0.1, 3, c).reshape((1, c) + (1,) * (x.ndim - 2))  # channel ranges differ
    src = LayerSource("l", conv, w, rng.normal(size=16).astype(np.float32), geo, Activation.NONE, 0, 0, False)
    rng_ch = np.abs(x).max(axis=tuple(i for i in range(x.ndim) if i != 1))
    order = base_channel_order(rng_ch, 32)
    s_a = float(np.abs(x).max() / 127)
    obs = GroupStatsObserver(order, c, 32, s_a, True, geo)
    obs.update(x)
    return quantize_layer(src, 0, order, s_a, obs.result(), QuantConfig(weight_rounding=rounding)), x


@pytest.mark.parametrize("conv", [True, False])
def test_gptq_not_worse_than_plain(conv):
    res, _ = make(conv, "gptq", np.random.default_rng(0))
    assert res.weight_error_chosen <= res.weight_error_plain * (1 + 1e-9)
    assert res.weight_error_chosen < res.weight_error_plain  # on random data it strictly helps
    assert np.all(res.error_score >= 0) and res.error_score.shape == (2,)


def test_plain_matches_contract_extraction():
    res, _ = make(False, "plain", np.random.default_rng(1))
    assert res.weight_error_chosen == pytest.approx(res.weight_error_plain)


@pytest.mark.parametrize("conv", [True, False])
def test_reorder_groups_keeps_outputs_at_full_and_zero_ratio(conv):
    res, x = make(conv, "gptq", np.random.default_rng(2), c=64)
    layer = res.layer
    swapped = reorder_groups(layer, [1, 0])
    assert not np.array_equal(swapped.permutation, layer.permutation)
    for n4 in (0, layer.padded_channels):
        a = reference.layer_forward(layer, x, n4)[0]
        b = reference.layer_forward(swapped, x, n4)[0]
        assert np.array_equal(a, b)
