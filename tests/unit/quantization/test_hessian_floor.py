"""The Hessian floor: channels silent on the calibration data still get sensible 4-bit weights.

Without it a group whose channels never fire in calibration has a (near) zero Hessian, so every weight
step and code fits it equally well; the quantizer then stores codes far from the float weights, and
on data where those channels do fire the layer's output is wrong (docs/accuracy.md, "Channels silent
in calibration"). The tests build exactly that case and check both the failure and the fix.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from flexiq_trt.errors import ConfigError
from flexiq_trt.plugin_spec import Activation
from flexiq_trt.quantization import gptq
from flexiq_trt.quantization.config import QuantConfig
from flexiq_trt.quantization.group_stats import GroupStatsObserver
from flexiq_trt.quantization.quantize_layer import LayerSource, quantize_layer
from flexiq_trt.quantization.weights import base_channel_order, pad_and_permute, to_channels_last

C, N, G = 64, 48, 32


def _silent_layer(seed: int = 0):
    """A Gemm whose first 32 channels never fire in calibration (a ReLU output that stays 0 on those
    inputs, as expanded channels of real CNNs do on a few photos) and fire afterwards."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(N, C)).astype(np.float32)
    src = LayerSource("fc", False, w, np.zeros(N, np.float32), None, Activation.NONE, 0, 0, True)
    calib = np.abs(rng.normal(size=(32, 4, C))).astype(np.float32)
    calib[..., :G] = 0.0  # silent: their calibrated range (0) sorts them into the first group
    fresh = np.abs(rng.normal(size=(4096, C)))  # deployment data: every channel fires
    return src, calib, fresh


def _quantize(src, calib, config: QuantConfig):
    order = base_channel_order(np.abs(calib).max(axis=(0, 1)), G)
    s_a = float(np.abs(calib).max() / 255)
    obs = GroupStatsObserver(order, C, G, s_a, False, None).with_split_hessian(config.cross_validates_damp)
    for b in range(0, calib.shape[0], 4):
        obs.update(calib[b:b + 4])
    return quantize_layer(src, 0, order, s_a, obs.result(), config).layer


def _group_rel_error(layer) -> np.ndarray:
    """Per group, RMS of (effective 4-bit weight - int8 weight) over RMS of the int8 weights."""
    eff, w8 = layer.weight4_effective().astype(np.float64), layer.weight_int8.astype(np.float64)
    return np.asarray([np.sqrt(((eff[:, c] - w8[:, c]) ** 2).mean() / (w8[:, c] ** 2).mean())
                       for c in (slice(0, G), slice(G, 2 * G))])


def _fresh_output_error(src, layer, fresh: np.ndarray) -> float:
    w4 = layer.weight4_effective().astype(np.float64) * layer.weight_scale.astype(np.float64)[:, None]
    xp = fresh[:, layer.permutation]
    ref = xp @ pad_and_permute(to_channels_last(src.weight), layer.permutation).astype(np.float64).T
    return float(((xp @ w4.T - ref) ** 2).mean() / (ref ** 2).mean())


def test_silent_channels_get_weights_close_to_float():
    src, calib, fresh = _silent_layer()
    without = _quantize(src, calib, replace(QuantConfig(), hessian_floor=0.0))
    with_floor = _quantize(src, calib, QuantConfig())
    # the failure the floor exists for: the silent group's codes are far from its weights
    assert _group_rel_error(without)[0] > 0.5
    # with the floor they are as close as 4-bit codes of that group get (plain rounding's error level)
    rel = _group_rel_error(with_floor)
    assert rel[0] < 0.25 and rel[1] < 0.25
    err_without, err_with = _fresh_output_error(src, without, fresh), _fresh_output_error(src, with_floor, fresh)
    assert err_with < 0.25 * err_without


def test_active_channels_are_untouched():
    """Channels above the floor keep their Hessian exactly, so a layer without silent channels is
    quantized exactly as without the floor."""
    rng = np.random.default_rng(1)
    w = rng.normal(size=(N, C)).astype(np.float32)
    src = LayerSource("fc", False, w, np.zeros(N, np.float32), None, Activation.NONE, 0, 0, True)
    calib = np.abs(rng.normal(size=(32, 4, C))).astype(np.float32) * np.linspace(0.2, 3.0, C, dtype=np.float32)
    a = _quantize(src, calib, replace(QuantConfig(), hessian_floor=0.0))
    b = _quantize(src, calib, QuantConfig())
    np.testing.assert_array_equal(a.weight_int4, b.weight_int4)
    np.testing.assert_array_equal(a.weight_step, b.weight_step)


def test_floor_is_a_share_of_the_median_diagonal():
    h = np.stack([np.diag([4.0, 2.0]), np.diag([0.0, 8.0])])  # positive diagonal entries 4, 2, 8: median 4
    out = gptq.floor_silent_channels(h, 0.75)  # floor 3
    np.testing.assert_array_equal(np.diagonal(out, axis1=1, axis2=2), [[4.0, 3.0], [3.0, 8.0]])
    np.testing.assert_array_equal(out - np.diagonal(out, axis1=1, axis2=2)[..., None] * np.eye(2),
                                  h - np.diagonal(h, axis1=1, axis2=2)[..., None] * np.eye(2))  # off-diagonal kept
    assert h[1, 0, 0] == 0.0  # the input is not modified
    assert gptq.floor_silent_channels(h, 0.0) is h
    np.testing.assert_array_equal(gptq.floor_silent_channels(np.zeros((1, 2, 2)), 0.1)[0], np.eye(2))


@pytest.mark.parametrize("bad", [-0.01, 1.5])
def test_bad_floor_names_the_field(bad):
    with pytest.raises(ConfigError, match="hessian_floor"):
        QuantConfig(hessian_floor=bad)


def test_cli_sets_the_floor():
    from flexiq_trt.cli.arg_groups import dataclass_from_args
    from flexiq_trt.cli.main import build_parser

    parse = build_parser().parse_args
    assert dataclass_from_args(QuantConfig, parse(["convert", "m.onnx", "--hessian-floor", "0"])).hessian_floor == 0.0
    assert dataclass_from_args(QuantConfig, parse(["convert", "m.onnx"])).hessian_floor == QuantConfig().hessian_floor


def test_silent_channels_are_counted():
    """The result counts the real channels the floor raised (the report lists them per layer)."""
    src, calib, _ = _silent_layer()
    order = base_channel_order(np.abs(calib).max(axis=(0, 1)), G)
    obs = GroupStatsObserver(order, C, G, float(calib.max() / 255), False, None)
    obs.update(calib)
    assert quantize_layer(src, 0, order, float(calib.max() / 255), obs.result(), QuantConfig()).silent_channels == G
    off = quantize_layer(src, 0, order, float(calib.max() / 255), obs.result(), replace(QuantConfig(), hessian_floor=0.0))
    assert off.silent_channels == 0
