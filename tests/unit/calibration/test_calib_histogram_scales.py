"""Streaming histogram and threshold selection against exact NumPy computations on stored data."""

from __future__ import annotations

import numpy as np
import pytest

from flexiq_trt.calibration import (
    THRESHOLD_METHODS,
    StreamingHistogram,
    choose_threshold,
    mse_threshold,
    quantization_mse,
    scale_from_threshold,
)
from flexiq_trt.calibration.config import CALIB_METHODS
from flexiq_trt.errors import ConfigError


def _growing_chunks(rng, kind, n_chunks=6, size=40_000):
    """Chunks whose range grows, to force several re-binnings."""
    chunks = []
    for i in range(n_chunks):
        scale = 1.5**i
        if kind == "laplace":
            chunks.append(rng.laplace(scale=scale, size=size))
        elif kind == "relu":
            chunks.append(np.maximum(rng.standard_normal(size) * scale, 0))
        else:
            chunks.append(rng.standard_normal(size) * scale)
    return [c.astype(np.float32) for c in chunks]


def _stream(chunks, bins=2048):
    hist = StreamingHistogram(bins)
    for chunk in chunks:
        hist.update(chunk)
    return hist.snapshot()


def _empirical_mse(x, t, levels):
    s = np.float32(t / levels)
    lo = -levels if levels == 127 else 0
    q = np.clip(np.round(x / s), lo, levels)
    return float(np.mean((q * s - x).astype(np.float64) ** 2))


@pytest.mark.parametrize("kind", ["laplace", "normal", "relu"])
def test_percentile_matches_numpy_within_a_bin(kind):
    rng = np.random.default_rng(1)
    chunks = _growing_chunks(rng, kind)
    snap = _stream(chunks)
    data = np.abs(np.concatenate(chunks))
    assert snap.total == data.size
    assert snap.zeros == int((data == 0).sum())
    assert data.max() <= snap.upper < 2 * data.max()  # growth keeps at least half the bins in use
    for q in (50.0, 99.0, 99.9, 99.99, 100.0):
        assert abs(snap.percentile(q) - np.percentile(data, q)) <= snap.bin_width * 1.01


def test_rebinning_is_exact():
    rng = np.random.default_rng(2)
    chunks = _growing_chunks(rng, "normal", n_chunks=5)
    snap = _stream(chunks, bins=256)
    data = np.abs(np.concatenate(chunks)).astype(np.float64)
    direct, _ = np.histogram(data[data > 0], bins=256, range=(0, snap.upper))
    moved = np.abs(direct - snap.counts).sum()
    assert moved <= 4  # only float rounding exactly at bin edges may differ


def test_memory_is_fixed_regardless_of_samples():
    hist = StreamingHistogram(512)
    hist.update(np.ones(10, np.float32))
    before = hist.nbytes
    rng = np.random.default_rng(3)
    for _ in range(50):
        hist.update(rng.standard_normal(20_000).astype(np.float32) * 100)
    assert hist.nbytes == before == 512 * 8
    snap = hist.snapshot()
    assert snap.counts.shape == (512,) and snap.total == 10 + 50 * 20_000


def test_nonfinite_values_are_ignored():
    hist = StreamingHistogram(64)
    hist.update(np.array([1.0, np.inf, -np.nan, -2.0, 0.0], np.float32))
    snap = hist.snapshot()
    assert (snap.total, snap.zeros, snap.upper) == (3, 1, 2.0)


@pytest.mark.parametrize("kind, levels", [("laplace", 127), ("normal", 127), ("relu", 255), ("relu", 127)])
def test_expected_mse_matches_quantizing_the_data(kind, levels):
    rng = np.random.default_rng(4)
    chunks = _growing_chunks(rng, kind, n_chunks=3)
    data = np.concatenate(chunks)
    snap = _stream(chunks)
    absmax = float(np.abs(data).max())
    for fraction in (0.05, 0.2, 0.5, 1.0):
        t = fraction * absmax
        assert quantization_mse(snap, t, levels) == pytest.approx(_empirical_mse(data, t, levels), rel=0.02)


@pytest.mark.parametrize("kind, levels", [("laplace", 127), ("normal", 127), ("relu", 255)])
def test_mse_threshold_is_near_the_brute_force_optimum(kind, levels):
    rng = np.random.default_rng(5)
    chunks = _growing_chunks(rng, kind, n_chunks=3)
    data = np.concatenate(chunks)
    snap = _stream(chunks)
    absmax = float(np.abs(data).max())
    chosen = mse_threshold(snap, levels, absmax)
    grid = np.linspace(absmax / 50, absmax, 400)
    best = min(_empirical_mse(data, t, levels) for t in grid)
    assert _empirical_mse(data, chosen, levels) <= best * 1.01
    # and it beats the plain max on heavy-tailed data
    if kind == "laplace":
        assert _empirical_mse(data, chosen, levels) < 0.9 * _empirical_mse(data, absmax, levels)


def test_methods_and_scales():
    rng = np.random.default_rng(6)
    data = rng.laplace(size=50_000).astype(np.float32)
    snap = _stream([data])
    absmax = float(np.abs(data).max())
    assert choose_threshold("max", snap, absmax) == absmax
    pct = choose_threshold("percentile", snap, absmax, percentile=99.0)
    assert abs(pct - np.percentile(np.abs(data), 99.0)) <= snap.bin_width
    assert 0 < choose_threshold("mse", snap, absmax) < absmax
    assert scale_from_threshold(127.0, signed=True) == 1.0
    assert scale_from_threshold(255.0, signed=False) == 1.0
    assert scale_from_threshold(0.0) == pytest.approx(1 / 127)
    with pytest.raises(ConfigError, match="unknown calibration method 'kl'"):
        choose_threshold("kl", snap, absmax)


def test_all_zero_tensor():
    snap = _stream([np.zeros(100, np.float32)])
    assert snap.zeros == 100 and snap.upper == 0.0
    assert choose_threshold("mse", snap, 0.0) == 0.0
    assert snap.percentile(99.99) == 0.0


def test_config_choices_mirror_the_registry():
    assert set(CALIB_METHODS) == set(THRESHOLD_METHODS)


def test_update_leaves_the_input_untouched_and_keeps_zeros_apart():
    values = np.array([0.0, -0.0, 0.5, -1.0, 0.001], np.float32)
    original = values.copy()
    hist = StreamingHistogram(16)
    hist.update(values)
    np.testing.assert_array_equal(values, original)
    snap = hist.snapshot()
    assert snap.zeros == 2 and snap.counts.sum() == 3
    assert snap.counts[0] == 1  # only 0.001 lies in the first bin
