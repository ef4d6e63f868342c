"""Calibration and held-out evaluation data as in-memory lists of feed batches.

Inputs (not activations) are small enough to hold: the calibration set is capped by
`CalibConfig.max_samples`. Held-out figures must never come from calibration inputs, so when no
separate evaluation set is given, the tail of the calibration set is split off and *not* used to
calibrate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from flexiq_trt.errors import CalibrationDataError, ConfigError

if TYPE_CHECKING:
    import onnx

    from flexiq_trt.calibration.config import CalibConfig

Feed = dict[str, np.ndarray]


@dataclass
class FeedSet:
    """Batches of model inputs (+ optional labels aligned with the samples)."""

    batches: list[Feed]
    labels: np.ndarray | None = None
    source: str = ""
    synthetic: bool = False

    @property
    def samples(self) -> int:
        """Total number of samples."""
        return sum(next(iter(b.values())).shape[0] for b in self.batches) if self.batches else 0

    def rebatch(self, batch_size: int) -> FeedSet:
        """Same samples, batches of `batch_size` (the last one may be smaller)."""
        if not self.batches:
            return self
        merged = {k: np.concatenate([b[k] for b in self.batches]) for k in self.batches[0]}
        n = next(iter(merged.values())).shape[0]
        out = [{k: v[i:i + batch_size] for k, v in merged.items()} for i in range(0, n, batch_size)]
        return FeedSet(out, self.labels, self.source, self.synthetic)

    def split_tail(self, fraction: float) -> tuple[FeedSet, FeedSet]:
        """(head, tail) with about `fraction` of the samples in the tail, split on sample boundaries."""
        if not 0 < fraction < 1:
            raise ConfigError(f"holdout fraction must be in (0, 1), got {fraction}")
        n = self.samples
        cut = n - max(1, int(round(n * fraction)))
        if cut < 1:
            raise CalibrationDataError(f"{self.source}: {n} sample(s) are too few to hold some out for evaluation")
        merged = {k: np.concatenate([b[k] for b in self.batches]) for k in self.batches[0]}
        bs = next(iter(self.batches[0].values())).shape[0]
        head = {k: v[:cut] for k, v in merged.items()}
        tail = {k: v[cut:] for k, v in merged.items()}
        lab_h = self.labels[:cut] if self.labels is not None else None
        lab_t = self.labels[cut:] if self.labels is not None else None
        return (FeedSet([head], lab_h, self.source, self.synthetic).rebatch(bs),
                FeedSet([tail], lab_t, f"held-out tail of {self.source}", self.synthetic).rebatch(bs))


def load_labelled_npz(path: Path, input_names: list[str], labels_key: str, batch_size: int) -> FeedSet:
    """An .npz with one array per model input (axis 0 = samples) and optionally `labels_key`."""
    if not path.is_file():
        raise CalibrationDataError(f"{path}: evaluation data file not found")
    try:
        data = np.load(path)
    except Exception as e:  # noqa: BLE001 - numpy raises several types for bad files
        raise CalibrationDataError(f"{path}: cannot read as .npz ({e})") from e
    missing = [n for n in input_names if n not in data.files]
    if missing:
        raise CalibrationDataError(f"{path}: missing array(s) for model input(s) {missing}; has {data.files}")
    arrays = {n: data[n] for n in input_names}
    lengths = {a.shape[0] for a in arrays.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise CalibrationDataError(f"{path}: inputs must have the same non-zero number of samples, got {lengths}")
    labels = data[labels_key] if labels_key in data.files else None
    if labels is not None and labels.shape[0] != next(iter(lengths)):
        raise CalibrationDataError(f"{path}: '{labels_key}' has {labels.shape[0]} entries for {lengths} samples")
    return FeedSet([arrays], labels, str(path)).rebatch(batch_size)


def read_feeds(spec: str | None, model: onnx.ModelProto, calib: CalibConfig, allow_synthetic: bool) -> FeedSet:
    """Materialise the calibration set (validated against the model's inputs by the reader)."""
    from flexiq_trt.calibration.readers import open_reader

    if spec and spec.split(":")[0] == "synthetic" and not allow_synthetic:
        raise CalibrationDataError(
            "synthetic calibration data was requested without --allow-synthetic; random inputs make every "
            "accuracy figure meaningless, so this must be asked for explicitly")
    reader = open_reader(spec, model, calib)
    batches = [dict(b) for b in reader]
    feeds = FeedSet(batches, None, reader.source, bool(getattr(reader, "synthetic", False)))
    if feeds.samples == 0:
        raise CalibrationDataError(f"{reader.source}: the calibration set is empty")
    return feeds


def split_heldout(feeds: FeedSet, input_names: list[str], eval_data: str | None, labels_key: str,
                  holdout_fraction: float, batch_size: int) -> tuple[FeedSet, FeedSet]:
    """(calibration, held-out evaluation): a separate eval file, or the calibration set's tail.

    Held-out figures never come from calibration inputs: without an eval file the tail is split off
    and not used to calibrate.
    """
    if eval_data:
        return feeds, load_labelled_npz(Path(eval_data), input_names, labels_key, batch_size)
    return feeds.split_tail(holdout_fraction)


class FeedSetReader:
    """A calibration reader (get_next/rewind) over an in-memory FeedSet."""

    def __init__(self, feeds: FeedSet) -> None:
        self.feeds, self._i = feeds, 0
        self.source, self.synthetic = feeds.source, feeds.synthetic

    def get_next(self) -> Feed | None:
        """The next batch or None."""
        if self._i >= len(self.feeds.batches):
            return None
        self._i += 1
        return self.feeds.batches[self._i - 1]

    def rewind(self) -> None:
        """Start over."""
        self._i = 0

    def num_batches(self) -> int:
        """Batches per pass."""
        return len(self.feeds.batches)

    def __iter__(self):
        self.rewind()
        return iter(self.feeds.batches)
