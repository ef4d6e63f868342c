"""Observers: bounded-memory running statistics of one tensor, fed batch by batch.

The calibrator owns no statistics itself; it hands every batch of a tensor to the observers
attached to that tensor. Anything with ``update(array)`` and ``result()`` can be attached (the
pipeline's Hessian accumulator, for instance), so new statistics need no calibrator change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from flexiq_trt.calibration.histogram import HistogramSnapshot, StreamingHistogram
from flexiq_trt.errors import CalibrationDataError


@runtime_checkable
class Observer(Protocol):
    """Accumulates one statistic over batches of a tensor, in memory independent of sample count."""

    def update(self, array: np.ndarray) -> None:
        """Fold one batch of the tensor into the statistic."""

    def result(self) -> Any:
        """The statistic so far (an immutable value)."""


@dataclass(frozen=True)
class TensorRange:
    """Per-tensor extremes over all finite values seen."""

    min: float
    max: float
    absmax: float
    count: int  # finite values seen
    nonfinite: int  # NaN/Inf values seen (excluded from everything else)

    @property
    def nonnegative(self) -> bool:
        """True when no negative value was observed (a hint only; unsigned codes need a proof)."""
        return self.count > 0 and self.min >= 0.0


class RangeObserver:
    """Running min / max / absmax of a tensor."""

    def __init__(self) -> None:
        self._min = np.inf
        self._max = -np.inf
        self._count = 0
        self._nonfinite = 0

    def update(self, array: np.ndarray) -> None:
        """Fold one batch in."""
        array = np.asarray(array)
        if array.size == 0:
            return
        low, high = float(array.min()), float(array.max())
        if not (np.isfinite(low) and np.isfinite(high)):
            finite = array[np.isfinite(array)]
            self._nonfinite += int(array.size - finite.size)
            array = finite
            if array.size == 0:
                return
            low, high = float(array.min()), float(array.max())
        self._min = min(self._min, low)
        self._max = max(self._max, high)
        self._count += int(array.size)

    def result(self) -> TensorRange:
        """Extremes so far (zeros when nothing finite was seen)."""
        if self._count == 0:
            return TensorRange(0.0, 0.0, 0.0, 0, self._nonfinite)
        return TensorRange(self._min, self._max, max(-self._min, self._max), self._count, self._nonfinite)


class AbsHistogramObserver:
    """Streaming histogram of |x| (see :mod:`flexiq_trt.calibration.histogram`)."""

    def __init__(self, num_bins: int = 2048) -> None:
        self.histogram = StreamingHistogram(num_bins)

    def update(self, array: np.ndarray) -> None:
        """Fold one batch in."""
        self.histogram.update(array)

    def result(self) -> HistogramSnapshot:
        """A frozen copy of the histogram."""
        return self.histogram.snapshot()


@dataclass(frozen=True)
class ChannelRange:
    """Per-channel extremes along ``axis``: float64 arrays of length C."""

    axis: int
    min: np.ndarray
    max: np.ndarray
    absmax: np.ndarray

    @property
    def channels(self) -> int:
        """Number of channels."""
        return int(self.min.shape[0])


class ChannelRangeObserver:
    """Running per-channel min / max / absmax along ``axis`` (1 for NCHW, -1 for [..., K])."""

    def __init__(self, axis: int, name: str = "tensor") -> None:
        self.axis = axis
        self.name = name
        self._min: np.ndarray | None = None
        self._max: np.ndarray | None = None

    def update(self, array: np.ndarray) -> None:
        """Fold one batch in; the channel count must stay the same across batches."""
        array = np.asarray(array)
        if not -array.ndim <= self.axis < array.ndim:
            raise CalibrationDataError(
                f"tensor '{self.name}' has rank {array.ndim}; channel axis {self.axis} does not exist"
            )
        others = tuple(i for i in range(array.ndim) if i != self.axis % array.ndim)
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            array = np.where(np.isfinite(array), array, np.nan)
            low, high = np.nanmin(array, axis=others), np.nanmax(array, axis=others)
        else:
            low, high = array.min(axis=others), array.max(axis=others)
        low, high = low.astype(np.float64), high.astype(np.float64)
        if self._min is None:
            self._min, self._max = low, high
            return
        if low.shape != self._min.shape:
            raise CalibrationDataError(
                f"tensor '{self.name}': channel count changed from {self._min.shape[0]} to {low.shape[0]}"
            )
        self._min = np.fmin(self._min, low)
        self._max = np.fmax(self._max, high)

    def result(self) -> ChannelRange:
        """Per-channel extremes so far (empty arrays before any update)."""
        if self._min is None or self._max is None:
            empty = np.zeros(0, np.float64)
            return ChannelRange(self.axis, empty, empty, empty)
        low, high = self._min.copy(), self._max.copy()
        return ChannelRange(self.axis, low, high, np.fmax(-low, high))


# Log-spaced |x| bins for per-channel percentiles: the top bits of a float32 (exponent and
# LOG_SUB_BITS mantissa bits) index 2**LOG_SUB_BITS bins per octave over [2**LOG_LOW_EXP, 2**LOG_HIGH_EXP),
# plus one bin below (zeros included) and one above. The edges are fixed, so the counts are exact
# and independent of how the data is cut into batches; a percentile is interpolated inside one bin
# (each at most 1/16 = 6.25% of its lower edge wide).
LOG_SUB_BITS = 4
LOG_LOW_EXP, LOG_HIGH_EXP = -24, 24
_LOG_SHIFT = 23 - LOG_SUB_BITS
_LOG_FIRST = (127 + LOG_LOW_EXP) << LOG_SUB_BITS  # float32 bits >> _LOG_SHIFT of 2**LOG_LOW_EXP
LOG_BINS = ((LOG_HIGH_EXP - LOG_LOW_EXP) << LOG_SUB_BITS) + 2


def log_bin_edges() -> np.ndarray:
    """float64 [LOG_BINS + 1] edges of the log-spaced |x| bins (the last one open: inf)."""
    inner = (np.arange(_LOG_FIRST, _LOG_FIRST + LOG_BINS - 1, dtype=np.uint32) << _LOG_SHIFT).view(np.float32)
    return np.concatenate([[0.0], inner.astype(np.float64), [np.inf]])


def log_bin_index(absx: np.ndarray) -> np.ndarray:
    """int32 log-bin index of each finite |x| (0: below 2**LOG_LOW_EXP, LOG_BINS - 1: at or above 2**LOG_HIGH_EXP)."""
    bits = np.ascontiguousarray(absx, dtype=np.float32).view(np.int32) >> _LOG_SHIFT  # |x| >= 0: sign bit clear
    bits -= _LOG_FIRST - 1
    return np.clip(bits, 0, LOG_BINS - 1, out=bits)


@dataclass(frozen=True)
class ChannelMagnitude:
    """Per-channel typical magnitudes of |x| along ``axis``: float64 arrays of length C.

    Why: a channel's maximum is set by its rarest value, while a 4-bit group's dynamic shift is set
    row by row; grouping channels by a typical magnitude is the option ``QuantConfig.channel_grouping``
    offers (docs/accuracy.md, "Channel grouping by a typical magnitude").
    """

    axis: int
    rms: np.ndarray  # sqrt(mean x^2) over the finite values
    percentile: np.ndarray  # the q-th percentile of |x| (log-binned, interpolated inside its bin)
    q: float
    count: np.ndarray  # int64: finite values seen per channel

    @property
    def channels(self) -> int:
        """Number of channels."""
        return int(self.rms.shape[0])


class ChannelMagnitudeObserver:
    """Running per-channel sum of squares and log-binned |x| histogram along ``axis``.

    Memory: C x LOG_BINS int64 counters (6 KiB per channel), whatever the sample count. The sum
    of squares accumulates in float64 batch by batch, so a fixed batch sequence gives a fixed result.
    """

    def __init__(self, axis: int, name: str = "tensor", q: float = 99.0) -> None:
        if not 0.0 <= q <= 100.0:
            raise CalibrationDataError(f"tensor '{name}': percentile must be in [0, 100], got {q}")
        self.axis = axis
        self.name = name
        self.q = q
        self._squares: np.ndarray | None = None
        self._absmax: np.ndarray | None = None
        self._counts: np.ndarray | None = None  # int64 [C, LOG_BINS]

    def update(self, array: np.ndarray) -> None:
        """Fold one batch in; the channel count must stay the same across batches."""
        array = np.asarray(array)
        if not -array.ndim <= self.axis < array.ndim:
            raise CalibrationDataError(
                f"tensor '{self.name}' has rank {array.ndim}; channel axis {self.axis} does not exist"
            )
        axis = self.axis % array.ndim
        c = array.shape[axis]
        if c * LOG_BINS >= 2**31:
            raise CalibrationDataError(f"tensor '{self.name}': {c} channels are too many for per-channel histograms")
        if self._counts is None:
            self._squares, self._absmax = np.zeros(c, np.float64), np.zeros(c, np.float64)
            self._counts = np.zeros((c, LOG_BINS), np.int64)
        elif c != self._counts.shape[0]:
            raise CalibrationDataError(
                f"tensor '{self.name}': channel count changed from {self._counts.shape[0]} to {c}"
            )
        others = tuple(i for i in range(array.ndim) if i != axis)
        absx = np.abs(array.astype(np.float32, copy=False))
        finite = np.isfinite(absx)
        all_finite = bool(finite.all())
        if not all_finite:
            absx = np.where(finite, absx, np.float32(0))
        dims = list(range(array.ndim))
        self._squares += np.einsum(absx, dims, absx, dims, [axis], dtype=np.float64)  # float64 products and sums
        if absx.size:
            self._absmax = np.fmax(self._absmax, absx.max(axis=others).astype(np.float64))
        shape = [1] * array.ndim
        shape[axis] = c
        index = log_bin_index(absx)
        index += (np.arange(c, dtype=np.int32) * LOG_BINS).reshape(shape)
        weights = None if all_finite else finite.ravel().astype(np.float64)
        counts = np.bincount(index.ravel(), weights=weights, minlength=c * LOG_BINS)
        self._counts += counts.astype(np.int64).reshape(c, LOG_BINS)

    def result(self) -> ChannelMagnitude:
        """RMS and percentile per channel so far (empty arrays before any update; 0 for an empty channel)."""
        if self._counts is None or self._squares is None or self._absmax is None:
            empty = np.zeros(0, np.float64)
            return ChannelMagnitude(self.axis, empty, empty, self.q, np.zeros(0, np.int64))
        count = self._counts.sum(axis=1)
        rms = np.sqrt(self._squares / np.maximum(count, 1))
        return ChannelMagnitude(self.axis, rms, _binned_percentile(self._counts, self._absmax, self.q),
                                self.q, count)


def _binned_percentile(counts: np.ndarray, absmax: np.ndarray, q: float) -> np.ndarray:
    """Per row of log-bin ``counts``: the q-th percentile (rank q/100 * n), linear inside its bin.

    Bins are clipped to the channel's maximum, so q = 100 gives the maximum exactly.
    """
    c = counts.shape[0]
    if c == 0:
        return np.zeros(0, np.float64)
    total = counts.sum(axis=1)
    cumulative = np.cumsum(counts, axis=1)
    rank = q / 100.0 * total
    index = np.minimum((cumulative < rank[:, None]).sum(axis=1), LOG_BINS - 1)
    rows = np.arange(c)
    before = np.where(index > 0, cumulative[rows, np.maximum(index - 1, 0)], 0)
    inside = counts[rows, index]
    fraction = np.clip(np.where(inside > 0, (rank - before) / np.maximum(inside, 1), 1.0), 0.0, 1.0)
    edges = log_bin_edges()
    low = np.minimum(edges[index], absmax)
    high = np.minimum(edges[index + 1], absmax)
    return np.where(total > 0, low + fraction * (high - low), 0.0)
