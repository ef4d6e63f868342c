"""ChannelMagnitudeObserver (per-channel RMS and 99th percentile of |x|) against NumPy over all batches."""

from __future__ import annotations

import numpy as np
import pytest

from flexiq_trt.calibration.observers import (
    LOG_BINS,
    ChannelMagnitudeObserver,
    ChannelRangeObserver,
    Observer,
    log_bin_edges,
    log_bin_index,
)
from flexiq_trt.errors import CalibrationDataError


def _batches(shape=(3, 6, 5, 7), n=4) -> list[np.ndarray]:
    """ReLU-like batches whose channels differ in scale, some with rare spikes (max far above the RMS)."""
    rng = np.random.default_rng(3)
    scale = np.array([0.01, 0.05, 1.0, 2.0, 5.0, 40.0], np.float32)
    out = []
    for i in range(n):
        x = np.maximum(rng.standard_normal(shape).astype(np.float32), 0) * scale.reshape(1, -1, 1, 1)
        if i == 0:
            x[0, 1, 0, 0] = 25.0  # channel 1: small typical values, one large value
        out.append(x * (1 if i % 2 else -1))  # signs do not matter: |x|
    return out


def _observe(batches: list[np.ndarray], axis: int = 1, q: float = 99.0):
    obs = ChannelMagnitudeObserver(axis, "act", q)
    for b in batches:
        obs.update(b)
    return obs.result()


@pytest.mark.parametrize("axis", [1, -1])
def test_rms_matches_numpy_over_batches(axis):
    batches = _batches()
    data = np.concatenate(batches).astype(np.float64)
    others = tuple(i for i in range(4) if i != axis % 4)
    result = _observe(batches, axis)
    np.testing.assert_allclose(result.rms, np.sqrt(np.mean(data ** 2, axis=others)), rtol=1e-12)
    np.testing.assert_array_equal(result.count, np.full(data.shape[axis], data.size // data.shape[axis]))
    assert result.channels == data.shape[axis] and result.q == 99.0


@pytest.mark.parametrize("axis", [1, -1])
def test_percentile_is_in_the_bin_of_its_order_statistic(axis):
    """The q-th percentile (rank q/100 * n) lies in the log bin of the ceil(rank)-th smallest |x|."""
    batches = _batches()
    data = np.abs(np.concatenate(batches))
    flat = np.moveaxis(data, axis, -1).reshape(-1, data.shape[axis])
    got = _observe(batches, axis).percentile
    edges = log_bin_edges()
    for c in range(flat.shape[1]):
        values = np.sort(flat[:, c])
        kth = values[int(np.ceil(0.99 * values.size)) - 1]
        b = int(log_bin_index(np.array([kth]))[0])
        assert edges[b] <= got[c] <= min(edges[b + 1], float(values[-1])), c


def test_percentile_close_to_numpy_on_dense_data():
    """With many values per channel, within one bin width (6.25%) of NumPy's interpolated percentile."""
    batches = _batches(shape=(4, 6, 24, 24))
    exact = np.percentile(np.abs(np.concatenate(batches)), 99.0, axis=(0, 2, 3))
    np.testing.assert_allclose(_observe(batches).percentile, exact, rtol=1 / 16)


def test_percentile_ranks_channels_like_numpy_and_differs_from_max():
    batches = _batches()
    data = np.abs(np.concatenate(batches))
    result = _observe(batches)
    exact = np.percentile(data, 99.0, axis=(0, 2, 3))
    assert np.argsort(result.percentile, kind="stable").tolist() == np.argsort(exact, kind="stable").tolist()
    maxima = data.max(axis=(0, 2, 3))
    assert np.argsort(maxima).tolist() == [0, 2, 3, 4, 1, 5]  # channel 1's one large value sorts it late
    assert np.argsort(result.rms).tolist() == [0, 2, 1, 3, 4, 5]
    assert np.argsort(result.percentile).tolist() == [0, 1, 2, 3, 4, 5]


def test_counts_do_not_depend_on_batching():
    """Fixed bin edges: one batch or four give the same percentile exactly and the same RMS to rounding."""
    batches = _batches()
    split, whole = _observe(batches), _observe([np.concatenate(batches)])
    np.testing.assert_array_equal(split.percentile, whole.percentile)
    np.testing.assert_allclose(split.rms, whole.rms, rtol=1e-13)


def test_percentile_100_is_the_channel_maximum():
    batches = _batches()
    ranges = ChannelRangeObserver(1)
    for b in batches:
        ranges.update(b)
    np.testing.assert_array_equal(_observe(batches, q=100.0).percentile, ranges.result().absmax)


def test_zeros_tiny_huge_and_nonfinite_values():
    x = np.zeros((4, 3), np.float32)  # [N, C], channel axis -1
    x[:, 1] = [1e-30, 2e-30, 0.0, 1e-30]  # below 2**-24: the first bin
    x[:, 2] = [1e30, 3.0, np.nan, np.inf]  # above 2**24: the last bin; NaN / Inf ignored
    result = _observe([x], axis=-1, q=50.0)
    assert result.count.tolist() == [4, 4, 2]
    assert result.rms[0] == 0.0 and result.percentile[0] == 0.0
    assert 0.0 <= result.percentile[1] < 2.0 ** -24
    assert result.rms[2] == pytest.approx(np.sqrt((1e30 ** 2 + 9.0) / 2), rel=1e-6)
    assert 3.0 <= result.percentile[2] <= 3.0 * (1 + 1 / 16)  # rank 1 of 2: inside 3.0's bin
    empty = ChannelMagnitudeObserver(1).result()
    assert empty.channels == 0 and empty.percentile.shape == (0,)


def test_log_bins_are_monotone_and_contain_their_values():
    edges = log_bin_edges()
    assert edges.shape == (LOG_BINS + 1,) and np.all(np.diff(edges) > 0)
    values = np.abs(np.random.default_rng(0).standard_normal(1000).astype(np.float32)) * 100
    index = log_bin_index(values)
    assert np.all(edges[index] <= values) and np.all(values < edges[index + 1])
    assert np.all(edges[index + 1] - edges[index] <= edges[index] / 16 + 1e-30)


def test_observer_protocol_and_errors():
    obs = ChannelMagnitudeObserver(1, name="act")
    assert isinstance(obs, Observer)
    obs.update(np.zeros((1, 3, 2)))
    with pytest.raises(CalibrationDataError, match="tensor 'act': channel count changed from 3 to 4"):
        obs.update(np.zeros((1, 4, 2)))
    with pytest.raises(CalibrationDataError, match="tensor 'act' has rank 1; channel axis 1"):
        obs.update(np.zeros(3))
    with pytest.raises(CalibrationDataError, match="percentile must be in"):
        ChannelMagnitudeObserver(1, "act", q=101.0)
