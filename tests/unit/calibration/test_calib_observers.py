"""Observers against NumPy reductions over all batches."""

from __future__ import annotations

import numpy as np
import pytest

from flexiq_trt.calibration import ChannelRangeObserver, Observer, RangeObserver
from flexiq_trt.calibration.observers import AbsHistogramObserver
from flexiq_trt.errors import CalibrationDataError


def _batches(shape=(2, 5, 4, 4), n=4):
    rng = np.random.default_rng(0)
    return [(rng.standard_normal(shape) * (i + 1)).astype(np.float32) for i in range(n)]


def test_range_observer_matches_numpy():
    batches = _batches()
    obs = RangeObserver()
    for b in batches:
        obs.update(b)
    data = np.concatenate(batches)
    result = obs.result()
    assert (result.min, result.max) == (float(data.min()), float(data.max()))
    assert result.absmax == float(np.abs(data).max())
    assert result.count == data.size and result.nonfinite == 0 and not result.nonnegative


def test_range_observer_counts_nonfinite():
    obs = RangeObserver()
    obs.update(np.array([1.0, np.nan, np.inf, 3.0], np.float32))
    result = obs.result()
    assert (result.min, result.max, result.count, result.nonfinite) == (1.0, 3.0, 2, 2)
    assert result.nonnegative


@pytest.mark.parametrize("axis", [1, -1])
def test_channel_observer_matches_numpy(axis):
    batches = _batches()
    obs = ChannelRangeObserver(axis)
    for b in batches:
        obs.update(b)
    data = np.concatenate(batches)
    others = tuple(i for i in range(4) if i != axis % 4)
    result = obs.result()
    np.testing.assert_array_equal(result.min, data.min(axis=others))
    np.testing.assert_array_equal(result.max, data.max(axis=others))
    np.testing.assert_array_equal(result.absmax, np.abs(data).max(axis=others))
    assert result.channels == data.shape[axis]


def test_channel_observer_errors():
    obs = ChannelRangeObserver(1, name="act")
    obs.update(np.zeros((1, 3, 2)))
    with pytest.raises(CalibrationDataError, match="tensor 'act': channel count changed from 3 to 4"):
        obs.update(np.zeros((1, 4, 2)))
    with pytest.raises(CalibrationDataError, match="tensor 'act' has rank 1; channel axis 1"):
        obs.update(np.zeros(3))


def test_builtin_observers_follow_the_protocol():
    for obs in (RangeObserver(), AbsHistogramObserver(16), ChannelRangeObserver(1)):
        assert isinstance(obs, Observer)
    assert not isinstance(object(), Observer)
