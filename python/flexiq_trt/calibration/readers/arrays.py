"""Readers for NumPy files: ``.npz`` keyed by input name and ``.npy`` for single-input models.

Axis 0 of every stored array is the sample axis; batches are consecutive slices of
``batch_size`` samples. ``.npy`` files are memory-mapped, so only the current batch is in RAM.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from flexiq_trt.calibration.model_io import InputSpec
from flexiq_trt.calibration.readers.base import BaseReader, skip_partial_batch
from flexiq_trt.errors import CalibrationDataError


class _SlicingReader(BaseReader):
    """Slices a fixed set of equally long arrays into batches."""

    def __init__(
        self,
        source: str,
        specs: Sequence[InputSpec],
        arrays: Mapping[str, np.ndarray],
        batch_size: int,
        max_samples: int | None,
    ) -> None:
        super().__init__(source, specs, max_samples)
        self.batch_size = batch_size
        self._arrays = dict(arrays)
        self._length = _common_length(self._arrays, source)

    def num_batches(self) -> int | None:
        """Batches in one pass, after the max-samples limit."""
        length = self._length if self.max_samples is None else min(self._length, self.max_samples)
        return math.ceil(length / self.batch_size)

    def _raw_batches(self) -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, self._length, self.batch_size):
            if skip_partial_batch(self.specs, self._length - start, self.batch_size, self.source):
                return
            yield {name: array[start : start + self.batch_size] for name, array in self._arrays.items()}


def _common_length(arrays: Mapping[str, np.ndarray], source: str) -> int:
    lengths = {}
    for name, array in arrays.items():
        if array.ndim == 0:
            raise CalibrationDataError(
                f"{source}: array '{name}' is a scalar; axis 0 must be the sample axis"
            )
        lengths[name] = int(array.shape[0])
    if len(set(lengths.values())) > 1:
        raise CalibrationDataError(f"{source}: arrays have different sample counts (axis 0): {lengths}")
    return next(iter(lengths.values()), 0)


class NpzReader(_SlicingReader):
    """An ``.npz`` archive with one array per model input, named exactly like the input."""

    def __init__(
        self, path: str | Path, specs: Sequence[InputSpec], batch_size: int, max_samples: int | None = None
    ) -> None:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise CalibrationDataError(f"{path}: cannot read .npz file ({exc})") from exc
        expected = [spec.name for spec in specs]
        if set(arrays) != set(expected):
            missing = sorted(set(expected) - set(arrays))
            extra = sorted(set(arrays) - set(expected))
            raise CalibrationDataError(
                f"{path}: arrays must be named after the model's inputs {expected}; "
                f"missing {missing}, unknown {extra}"
            )
        super().__init__(str(path), specs, arrays, batch_size, max_samples)


class NpyReader(_SlicingReader):
    """A single ``.npy`` array for a model with exactly one input (memory-mapped)."""

    def __init__(
        self, path: str | Path, specs: Sequence[InputSpec], batch_size: int, max_samples: int | None = None
    ) -> None:
        path = Path(path)
        if len(specs) != 1:
            raise CalibrationDataError(
                f"{path}: an .npy file can only feed a single-input model, but the model has inputs "
                f"{[spec.name for spec in specs]}; use an .npz keyed by input name"
            )
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CalibrationDataError(f"{path}: cannot read .npy file ({exc})") from exc
        super().__init__(str(path), specs, {specs[0].name: array}, batch_size, max_samples)
