"""Cross-validated GPTQ damping: the even/odd Hessian split, the per-group choice, the option.

The split must partition the calibration rows by sample (so the halves are independent draws),
the choice must fit the final codes on the whole Hessian, and one damping value must reproduce
fixed-damping GPTQ exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from flexiq_trt.errors import ConfigError
from flexiq_trt.plugin_spec import Activation
from flexiq_trt.quantization import gptq
from flexiq_trt.quantization.config import QuantConfig
from flexiq_trt.quantization.group_stats import GroupStatsObserver
from flexiq_trt.quantization.layer import ConvGeometry
from flexiq_trt.quantization.quantize_layer import LayerSource, group_blocks, quantize_layer
from flexiq_trt.quantization.weights import (
    base_channel_order,
    int8_codes,
    pad_and_permute,
    to_channels_last,
    weight_scales,
)

GEO = ConvGeometry((3, 3), (1, 1), (1, 1, 1, 1), (1, 1))


def _observer(c: int, geo: ConvGeometry | None, max_rows: int = 1 << 20) -> GroupStatsObserver:
    return GroupStatsObserver(np.arange(c, dtype=np.int32), c, 32, 0.05, True, geo, max_rows_per_batch=max_rows)


@pytest.mark.parametrize("geo, shape", [(GEO, (5, 32, 4, 4)), (None, (5, 7, 32)), (None, (5, 32))])
def test_split_hessian_partitions_rows_by_sample(geo, shape):
    """Across batches of odd sizes, the even half is exactly the Hessian of the even-numbered samples."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(11,) + shape[1:]).astype(np.float32)
    split = _observer(32, geo).with_split_hessian()
    for lo, hi in ((0, 5), (5, 8), (8, 11)):  # batches 5, 3, 3: sample numbers run on across batches
        split.update(x[lo:hi])
    even_only, whole = _observer(32, geo), _observer(32, geo)
    even_only.update(x[0::2])
    whole.update(x)
    st = split.result()
    np.testing.assert_allclose(st.hessian_even, even_only.result().hessian, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(st.hessian, whole.result().hessian, rtol=1e-9, atol=1e-9)
    assert (st.rows, st.rows_even) == (whole.result().rows, even_only.result().rows)
    h_even, h_odd = st.mean_fold_hessians()
    odd_only = _observer(32, geo)
    odd_only.update(x[1::2])
    np.testing.assert_allclose(h_odd, odd_only.result().mean_hessian(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(h_even, even_only.result().mean_hessian(), rtol=1e-9, atol=1e-9)


def test_no_folds_from_one_sample_or_without_split():
    x = np.random.default_rng(1).normal(size=(1, 32, 4, 4)).astype(np.float32)
    one = _observer(32, GEO).with_split_hessian()
    one.update(x)
    assert one.result().mean_fold_hessians() is None  # the odd half is empty
    plain = _observer(32, GEO)
    plain.update(np.concatenate([x, x]))
    assert plain.result().hessian_even is None and plain.result().mean_fold_hessians() is None


def _layer(rng: np.random.Generator, samples: int, c: int = 64, n: int = 48):
    """A gemm layer whose inputs have correlated channels, and `samples` calibration samples of 4 tokens."""
    mix = rng.normal(size=(c, c)) * 0.3 + np.eye(c)
    x = (rng.normal(size=(samples, 4, c)) @ mix).astype(np.float32)
    w = rng.normal(size=(n, c)).astype(np.float32)
    src = LayerSource("fc", False, w, np.zeros(n, np.float32), None, Activation.NONE, 0, 0, False)
    order = base_channel_order(np.abs(x).max(axis=(0, 1)), 32)
    return src, order, x, mix


def _quantize(src, order, x, config):
    s_a = float(np.abs(x).max() / 127)
    obs = GroupStatsObserver(order, src.weight.shape[1], 32, s_a, True, None).with_split_hessian(
        config.cross_validates_damp)
    for b in range(0, x.shape[0], 4):
        obs.update(x[b:b + 4])
    return quantize_layer(src, 0, order, s_a, obs.result(), config), obs.result()


def _targets(src, order):
    """(float targets in int8 units, int8 codes), both [G_count, N, 32] in base order (what quantize_layer fits)."""
    s_w = weight_scales(src.weight)
    w_cl = pad_and_permute(to_channels_last(src.weight), order).astype(np.float64)
    return (group_blocks(w_cl / s_w[:, None], 2, 32),
            group_blocks(int8_codes(w_cl, s_w).astype(np.int32), 2, 32))


def test_one_value_reproduces_fixed_damping():
    src, order, x, _ = _layer(np.random.default_rng(2), 16)
    fixed, _ = _quantize(src, order, x, QuantConfig(gptq_damp=0.1))
    assert QuantConfig(gptq_damp=0.1).gptq_damp == (0.1,)
    assert np.all(fixed.gptq_damp == 0.1)
    stats = _quantize(src, order, x, QuantConfig(gptq_damp=(0.01, 0.1)))[1]
    t, w8 = _targets(src, order)
    for gi in range(2):
        ref = gptq.gptq_or_plain(t[gi], w8[gi], stats.mean_hessian()[gi], 0.1)
        np.testing.assert_array_equal(fixed.layer.weight_int4[:, gi * 32:(gi + 1) * 32], ref.codes)


def test_chosen_damping_is_fitted_on_the_whole_hessian():
    src, order, x, _ = _layer(np.random.default_rng(3), 12)
    cfg = QuantConfig(gptq_damp=(0.01, 0.1, 0.3))
    res, stats = _quantize(src, order, x, cfg)
    assert set(res.gptq_damp.tolist()) <= set(cfg.gptq_damp)
    t, w8 = _targets(src, order)
    h_even, h_odd = stats.mean_fold_hessians()
    for gi in range(2):
        d = gptq.choose_damp(t[gi], w8[gi], h_even[gi], h_odd[gi], cfg.gptq_damp)
        assert res.gptq_damp[gi] == d
        ref = gptq.gptq_or_plain(t[gi], w8[gi], stats.mean_hessian()[gi], d)
        np.testing.assert_array_equal(res.layer.weight_int4[:, gi * 32:(gi + 1) * 32], ref.codes)


def test_choice_minimises_the_held_out_error():
    rng = np.random.default_rng(4)
    src, order, x, _ = _layer(rng, 8)
    stats = _quantize(src, order, x, QuantConfig())[1]
    t, w8 = (blocks[0] for blocks in _targets(src, order))
    h_even, h_odd = (h[0] for h in stats.mean_fold_hessians())
    cands = (0.01, 0.03, 0.1, 0.3, 0.6)

    def held_out(d: float) -> float:
        return sum(float(gptq._weighted_error(t, gptq.gptq_or_plain(t, w8, a, d).effective(), b).sum())
                   for a, b in ((h_even, h_odd), (h_odd, h_even)))

    errs = [held_out(d) for d in cands]
    assert gptq.choose_damp(t, w8, h_even, h_odd, cands) == cands[int(np.argmin(errs))]
    assert len(set(np.round(errs, 9))) > 1  # the candidates do differ, so the choice means something
    assert gptq.choose_damp(t, w8, h_even, h_odd, (0.2,)) == 0.2


def test_cross_validation_generalises_with_few_samples():
    """With 6 calibration samples of 4 tokens (24 rows for 32 weights a row), fixed 1% damping over-fits
    the calibration Hessian; the cross-validated choice has lower output error on fresh inputs."""
    rng = np.random.default_rng(5)
    src, order, x, mix = _layer(rng, 6)
    fresh = (rng.normal(size=(4096, 64)) @ mix)
    out_err = {}
    for name, cfg in (("fixed", QuantConfig(gptq_damp=0.01)), ("cv", QuantConfig())):
        res, _ = _quantize(src, order, x, cfg)
        lay = res.layer
        s_w = lay.weight_scale.astype(np.float64)
        w4 = (lay.weight_int4.astype(np.float64) * np.repeat(lay.weight_step, 32)[None]) * s_w[:, None]
        xp = fresh[:, lay.permutation]
        ref = xp @ (pad_and_permute(to_channels_last(src.weight), order).astype(np.float64)).T
        out_err[name] = float(((xp @ w4.T - ref) ** 2).mean())
        if name == "cv":
            assert np.any(res.gptq_damp > 0.01)  # it does move away from the fixed value here
    assert out_err["cv"] < out_err["fixed"]


@pytest.mark.parametrize("bad", [(), (0.01, 1.0), (-0.1,), 1.5])
def test_bad_damping_names_the_field(bad):
    with pytest.raises(ConfigError, match="gptq_damp"):
        QuantConfig(gptq_damp=bad)


def test_cli_takes_one_or_several_values():
    from flexiq_trt.cli.arg_groups import dataclass_from_args
    from flexiq_trt.cli.main import build_parser

    parse = build_parser().parse_args
    assert dataclass_from_args(QuantConfig, parse(["convert", "m.onnx", "--gptq-damp", "0.1"])).gptq_damp == (0.1,)
    several = dataclass_from_args(QuantConfig, parse(["convert", "m.onnx", "--gptq-damp", "0.02", "0.2"]))
    assert several.gptq_damp == (0.02, 0.2) and several.cross_validates_damp
    assert dataclass_from_args(QuantConfig, parse(["convert", "m.onnx"])).gptq_damp == (0.01, 0.1, 0.3)
    assert not QuantConfig(weight_rounding="plain").cross_validates_damp
