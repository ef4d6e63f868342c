"""The reader protocol (ONNX Runtime's CalibrationDataReader shape) and the shared base class.

Every reader yields feed dicts ``{input name: array}`` through ``get_next()`` until it returns
``None``; ``rewind()`` starts over; iterating a reader always yields the whole set from the start.
The base class validates every batch, applies the max-samples limit and turns an empty set into
a clear error, so concrete readers only say how raw batches are produced.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from flexiq_trt.calibration.model_io import InputSpec
from flexiq_trt.calibration.readers.validate import validate_feed
from flexiq_trt.errors import CalibrationDataError
from flexiq_trt.log import get_logger

Feed = dict[str, np.ndarray]
_log = get_logger(__name__)


@runtime_checkable
class CalibrationReader(Protocol):
    """What the calibrator consumes; any object with this shape works (ORT readers included)."""

    def get_next(self) -> Mapping[str, np.ndarray] | None:
        """The next batch, or None when the set is exhausted."""

    def rewind(self) -> None:
        """Start again from the first batch."""


class BaseReader(ABC):
    """Validation, max-samples limit and iteration on top of a raw batch generator."""

    #: True only for random data; copied into the calibration result.
    synthetic: bool = False

    def __init__(self, source: str, specs: Sequence[InputSpec], max_samples: int | None = None) -> None:
        self.source = source
        self.specs = tuple(specs)
        self.max_samples = max_samples
        self.samples_seen = 0
        self.batches_seen = 0
        self._iter: Iterator[Feed] | None = None

    @abstractmethod
    def _raw_batches(self) -> Iterator[Mapping[str, Any]]:
        """Yield unvalidated feed dicts from the beginning of the data."""

    def num_batches(self) -> int | None:
        """Number of batches one pass yields, when known in advance (for progress)."""
        return None

    def get_next(self) -> Feed | None:
        """The next validated batch, or None at the end (raises on an empty set)."""
        if self._iter is None:
            self._iter = self._validated()
        return next(self._iter, None)

    def rewind(self) -> None:
        """Restart from the first batch."""
        self._iter = None

    def __iter__(self) -> Iterator[Feed]:
        self.rewind()
        while (batch := self.get_next()) is not None:
            yield batch

    def _validated(self) -> Iterator[Feed]:
        self.samples_seen = 0
        self.batches_seen = 0
        for index, raw in enumerate(self._raw_batches()):
            feed = validate_feed(raw, self.specs, self.source, index)
            feed = self._limit(feed)
            if feed is None:
                break
            self.samples_seen += batch_length(feed)
            self.batches_seen += 1
            yield feed
            if self.max_samples is not None and self.samples_seen >= self.max_samples:
                break
        if self.batches_seen == 0:
            raise CalibrationDataError(f"{self.source}: the calibration set is empty (no batch was produced)")
        _log.debug("%s: %d sample(s) in %d batch(es)", self.source, self.samples_seen, self.batches_seen)

    def _limit(self, feed: Feed) -> Feed | None:
        """Cut the batch that crosses ``max_samples``; drop it when a static batch dim forbids cutting."""
        if self.max_samples is None:
            return feed
        left = self.max_samples - self.samples_seen
        length = batch_length(feed)
        if length <= left:
            return feed
        if any(spec.rank == 0 or spec.shape[0] is not None for spec in self.specs):
            return feed if self.batches_seen == 0 else None
        return {name: array[:left] for name, array in feed.items()}


def batch_length(feed: Mapping[str, np.ndarray]) -> int:
    """Samples in a feed: axis 0 of its first batched input (1 if all inputs are scalars)."""
    for array in feed.values():
        if array.ndim >= 1:
            return int(array.shape[0])
    return 1


def resolve_batch_size(specs: Sequence[InputSpec], requested: int, source: str) -> int:
    """The batch size to slice data into: the model's static batch dim if it has one, else ``requested``."""
    static = {spec.shape[0] for spec in specs if spec.rank >= 1 and spec.shape[0] is not None}
    if len(static) > 1:
        raise CalibrationDataError(
            f"{source}: the model's inputs disagree on the batch dimension: {sorted(static)}"
        )
    if static:
        size = static.pop()
        if size != requested:
            _log.info(
                "%s: the model has a static batch of %d; using it instead of batch_size=%d",
                source,
                size,
                requested,
            )
        return size
    return requested


def skip_partial_batch(specs: Sequence[InputSpec], remaining: int, batch_size: int, source: str) -> bool:
    """True when a short last batch cannot be fed because the model's batch dimension is static."""
    if remaining >= batch_size or not any(spec.rank >= 1 and spec.shape[0] is not None for spec in specs):
        return False
    _log.warning(
        "%s: dropping the last %d sample(s): the model's static batch is %d", source, remaining, batch_size
    )
    return True
