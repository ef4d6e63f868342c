"""benchmarks/bench_bias_empirical.py's building blocks, without a conversion (docs/accuracy.md,
"Empirical (network-in-the-loop) bias correction and degraded-input statistics").

The float layer's mean output from im2col column sums must equal ONNX Runtime's convolution; the
rung update must keep row 0 and put the measured residual exactly on the sampled rungs; the
order-aware codes must lower the prefix's weight error where there is something to compensate.
"""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import REPO

from flexiq_trt.plugin_spec import Activation
from flexiq_trt.quantization.config import QuantConfig
from flexiq_trt.quantization.group_stats import GroupStatsObserver
from flexiq_trt.quantization.layer import ConvGeometry
from flexiq_trt.quantization.quantize_layer import LayerSource, quantize_layer
from flexiq_trt.quantization.weights import (
    base_channel_order,
    pad_and_permute,
    to_channels_last,
    weight_scales,
)

spec = importlib.util.spec_from_file_location("bench_bias_empirical", REPO / "benchmarks" / "bench_bias_empirical.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def ort_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """The float convolution by ONNX Runtime (an implementation independent of the column sums)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=list(geo.kernel_shape),
                            strides=list(geo.strides), pads=list(geo.pads), dilations=list(geo.dilations))
    graph = helper.make_graph([node], "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


@pytest.mark.parametrize("geo", [ConvGeometry((3, 3), (2, 1), (1, 0, 2, 1), (1, 2)), ConvGeometry()],
                         ids=["3x3_s2_pad_dil", "1x1"])
def test_column_sums_give_the_float_convs_mean_output(geo):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(3, 5, 11, 9)) + 0.7).astype(np.float32)
    w = rng.normal(size=(4, 5, *geo.kernel_shape)).astype(np.float32)
    b = rng.normal(size=4).astype(np.float32)
    sums, rows = bench.column_sums(x.astype(np.float64), geo)
    got = bench.float_pre_mean(SimpleNamespace(weight=w, bias=b, geometry=geo), sums, rows)
    want = ort_conv(x, w, b, geo).astype(np.float64).mean(axis=(0, 2, 3))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_column_sums_give_the_float_gemms_mean_output():
    rng = np.random.default_rng(1)
    x, w, b = rng.normal(size=(2, 7, 6)) + 0.3, rng.normal(size=(3, 6)), rng.normal(size=3)
    sums, rows = bench.column_sums(x, None)
    got = bench.float_pre_mean(SimpleNamespace(weight=w, bias=b, geometry=None), sums, rows)
    np.testing.assert_allclose(got, (x @ w.T + b).reshape(-1, 3).mean(axis=0), rtol=1e-12, atol=1e-12)


def gemm_record(seed: int = 0, c: int = 128):
    """A base-order Gemm layer quantized by the converter's code on correlated inputs, and its inputs."""
    rng = np.random.default_rng(seed)
    mix = np.eye(c) + 0.6 * rng.normal(size=(c, c)) / np.sqrt(c)  # correlated channels: compensation has work
    x = (np.abs(rng.normal(size=(512, c)) @ mix) + 0.1).astype(np.float32)
    w = rng.normal(size=(16, c)).astype(np.float32)
    src = LayerSource("l", False, w, rng.normal(size=16).astype(np.float32), None, Activation.NONE, 0, 0, True)
    order = base_channel_order(np.abs(x).max(axis=0), 32)
    s_a = float(np.abs(x).max() / 255)
    obs = GroupStatsObserver(order, c, 32, s_a, False, None, max_rows_per_batch=4096).with_code_sums()
    obs.update(x)
    stats = obs.result()
    layer = quantize_layer(src, 0, order, s_a, stats, QuantConfig()).layer
    return SimpleNamespace(layer=layer, source=src, base_order=order, stats=stats), x


def prefix_weight_error(rec, layer, x: np.ndarray, rank: list[int], k: int) -> float:
    """E||(w - w4eff) x||^2 over the first k groups of `rank` (code units of w; base order)."""
    g = layer.group_size
    s_w = weight_scales(rec.source.weight)
    target = pad_and_permute(to_channels_last(rec.source.weight), rec.base_order).astype(np.float64) / s_w[:, None]
    eff = layer.weight4_effective().astype(np.float64)
    cols = np.concatenate([np.arange(j * g, (j + 1) * g) for j in rank[:k]])
    xb = x[:, rec.base_order].astype(np.float64)
    return float(np.mean((xb[:, cols] @ (target - eff)[:, cols].T) ** 2))


def test_order_aware_codes_compensate_the_prefix_and_keep_int8():
    rec, x = gemm_record()
    rank = [2, 0, 3, 1]
    xb = x[:, rec.base_order].astype(np.float64)
    new = bench.order_aware(rec, rank, xb.T @ xb / xb.shape[0])
    np.testing.assert_array_equal(new.weight_int8, rec.layer.weight_int8)  # INT8 untouched
    np.testing.assert_array_equal(new.bias_table()[0], rec.layer.bias_table()[0])  # row 0 is the INT8 bias
    g = new.group_size
    first = slice(rank[0] * g, (rank[0] + 1) * g)  # nothing before the first group: same codes
    np.testing.assert_array_equal(new.weight_int4[:, first], rec.layer.weight_int4[:, first])
    before = [prefix_weight_error(rec, rec.layer, x, rank, k) for k in range(2, 5)]
    after = [prefix_weight_error(rec, new, x, rank, k) for k in range(2, 5)]
    assert after[-1] < 0.9 * before[-1], (before, after)  # every group 4-bit: clearly lower
    assert sum(after) < sum(before), (before, after)
    assert not np.allclose(new.group_bias_shift, rec.layer.group_bias_shift)  # rows follow the new codes


def test_correct_keeps_row0_and_puts_the_residual_on_the_sampled_rungs():
    rec, _ = gemm_record(seed=2)
    layer = rec.layer  # 4 groups of 32
    rows = [layer.bias_table().astype(np.float64)]
    before = rows[0].copy()
    r2a, r2b, r4 = (np.full(layer.out_channels, v) for v in (0.2, 0.4, -1.0))
    (out,) = bench.correct([layer], [{2: [r2a, r2b], 4: [r4]}], rows)
    table = out.bias_table().astype(np.float64)
    np.testing.assert_array_equal(out.bias_table()[0], layer.bias_table()[0])
    r2 = (r2a + r2b) / 2  # two ratios at one rung: their mean
    want = before - np.stack([0 * r2, r2 / 2, r2, (r2 + r4) / 2, r4])  # linear in k, 0 at rung 0
    np.testing.assert_allclose(table, want, rtol=0, atol=1e-5)
