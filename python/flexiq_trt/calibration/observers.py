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
