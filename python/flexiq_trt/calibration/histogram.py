"""A fixed-size streaming histogram of |x| that grows its range by exact bin merging.

The histogram covers ``[0, upper)`` with ``num_bins`` equal bins. When a batch exceeds ``upper``
the range doubles and adjacent bin pairs are summed, which is exact (old bins nest in new ones),
so no activation has to be stored and no interpolation error builds up; the final range is
within a factor of two of the true maximum, leaving at least ``num_bins / 2`` bins over the data.
Exact zeros are counted apart because they quantize without error at any scale (ReLU outputs
are often half zeros, and spreading them over bin 0 would bias the MSE search).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HistogramSnapshot:
    """The state of a histogram at one moment: counts over ``[0, upper)`` plus exact zeros."""

    counts: np.ndarray  # int64 [num_bins]
    upper: float  # range end; 0.0 when only zeros were seen
    zeros: int  # values exactly 0 (not in counts)
    total: int  # zeros + counts.sum()

    @property
    def num_bins(self) -> int:
        """Number of bins."""
        return int(self.counts.shape[0])

    @property
    def bin_width(self) -> float:
        """Width of one bin (0.0 before any nonzero value)."""
        return self.upper / self.num_bins

    def edges(self) -> np.ndarray:
        """float64 [num_bins + 1] bin edges."""
        return np.linspace(0.0, self.upper, self.num_bins + 1)

    def percentile(self, q: float) -> float:
        """The q-th percentile (0..100) of |x|, linearly interpolated inside its bin."""
        if self.total == 0:
            return 0.0
        target = q / 100.0 * self.total
        if target <= self.zeros or self.upper == 0.0:
            return 0.0
        cumulative = np.cumsum(self.counts)
        rank = target - self.zeros
        index = int(np.searchsorted(cumulative, rank, side="left"))
        index = min(index, self.num_bins - 1)
        before = float(cumulative[index - 1]) if index else 0.0
        inside = float(self.counts[index])
        fraction = (rank - before) / inside if inside else 1.0
        return (index + min(max(fraction, 0.0), 1.0)) * self.bin_width

    def to_dict(self) -> dict:
        """JSON-friendly form (counts as a list)."""
        return {"counts": self.counts.tolist(), "upper": self.upper, "zeros": self.zeros, "total": self.total}

    @classmethod
    def from_dict(cls, data: dict) -> HistogramSnapshot:
        """Inverse of :meth:`to_dict`."""
        return cls(
            np.asarray(data["counts"], np.int64), float(data["upper"]), int(data["zeros"]), int(data["total"])
        )


class StreamingHistogram:
    """Histogram of |x| with fixed memory: ``num_bins`` int64 counters whatever the sample count."""

    def __init__(self, num_bins: int = 2048) -> None:
        if num_bins < 2 or num_bins % 2:
            raise ValueError(f"num_bins must be even and >= 2, got {num_bins}")
        self.counts = np.zeros(num_bins, np.int64)
        self.upper = 0.0
        self.zeros = 0

    @property
    def nbytes(self) -> int:
        """Memory held by the counters (constant)."""
        return int(self.counts.nbytes)

    def update(self, values: np.ndarray) -> None:
        """Add |values| (non-finite entries are ignored; callers count them).

        Works in float32 in place on one temporary copy: a value lying within float32 rounding
        of a bin edge may land in the neighbouring bin, which is below the histogram's resolution.
        """
        flat = np.abs(np.asarray(values, dtype=np.float32).reshape(-1))
        if flat.size == 0:
            return
        peak = float(flat.max())
        if not np.isfinite(peak):
            flat = flat[np.isfinite(flat)]
            peak = float(flat.max()) if flat.size else 0.0
        zeros = int(flat.size - np.count_nonzero(flat))
        self.zeros += zeros
        if peak == 0.0:
            return
        self._grow_to(peak)
        bins = self.counts.shape[0]
        np.multiply(flat, np.float32(bins / self.upper), out=flat)
        index = flat.astype(np.intp)
        np.minimum(index, bins - 1, out=index)
        counts = np.bincount(index, minlength=bins)
        counts[0] -= zeros  # zeros are kept apart, not in bin 0
        self.counts += counts

    def _grow_to(self, peak: float) -> None:
        if self.upper == 0.0:
            self.upper = peak
            return
        while peak > self.upper:
            merged = self.counts.reshape(-1, 2).sum(axis=1)
            self.counts[: merged.shape[0]] = merged
            self.counts[merged.shape[0] :] = 0
            self.upper *= 2.0

    def snapshot(self) -> HistogramSnapshot:
        """An immutable copy of the current state."""
        return HistogramSnapshot(
            self.counts.copy(), self.upper, self.zeros, self.zeros + int(self.counts.sum())
        )
