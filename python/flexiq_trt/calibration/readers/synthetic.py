"""Random calibration data, for smoke tests and models without data. Explicit opt-in only.

Scales computed from random inputs say little about real activations, so results built from
this reader carry ``synthetic=True`` and the pipeline warns about them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from flexiq_trt.calibration.model_io import InputSpec
from flexiq_trt.calibration.readers.base import BaseReader, resolve_batch_size
from flexiq_trt.errors import CalibrationDataError
from flexiq_trt.log import get_logger

_log = get_logger(__name__)
INT_HIGH = 2  # integer inputs (ids, masks) get values in [0, INT_HIGH): always valid indices/masks


class SyntheticReader(BaseReader):
    """Seeded normal N(0, 1) or uniform U[-1, 1) floats per input; every rewind replays the same data."""

    synthetic = True

    def __init__(
        self,
        specs: Sequence[InputSpec],
        samples: int,
        batch_size: int,
        distribution: str = "normal",
        seed: int = 0,
    ) -> None:
        if distribution not in ("normal", "uniform"):
            raise CalibrationDataError(
                f"synthetic: unknown distribution '{distribution}' (normal or uniform)"
            )
        source = f"synthetic:{distribution}"
        batch_size = resolve_batch_size(specs, batch_size, source)
        if any(spec.rank >= 1 and spec.shape[0] is not None for spec in specs):
            samples = math.ceil(samples / batch_size) * batch_size  # only whole static batches can be fed
        super().__init__(source, specs, samples)
        self.batch_size = batch_size
        self.samples = samples
        self.distribution = distribution
        self.seed = seed
        self._shapes = {spec.name: _sample_shape(spec) for spec in specs}
        _log.warning("calibrating on synthetic %s data: scales will not reflect real inputs", distribution)

    def num_batches(self) -> int | None:
        """Batches in one pass."""
        return math.ceil(self.samples / self.batch_size)

    def _raw_batches(self) -> Iterator[dict[str, np.ndarray]]:
        rng = np.random.default_rng(self.seed)
        for start in range(0, self.samples, self.batch_size):
            count = min(self.batch_size, self.samples - start)
            yield {spec.name: self._draw(rng, spec, count) for spec in self.specs}

    def _draw(self, rng: np.random.Generator, spec: InputSpec, count: int) -> np.ndarray:
        shape = (count, *self._shapes[spec.name]) if spec.rank else ()
        if spec.dtype.kind == "f":
            values = (
                rng.standard_normal(shape) if self.distribution == "normal" else rng.uniform(-1.0, 1.0, shape)
            )
            return values.astype(spec.dtype)
        if spec.dtype.kind == "b":
            return rng.integers(0, 2, shape).astype(bool)
        return rng.integers(0, INT_HIGH, shape).astype(spec.dtype)


def _sample_shape(spec: InputSpec) -> tuple[int, ...]:
    """Per-sample dims (all but the batch axis); they must be static."""
    dims = spec.shape[1:]
    dynamic = [axis + 1 for axis, dim in enumerate(dims) if dim is None]
    if dynamic:
        raise CalibrationDataError(
            f"synthetic: input '{spec.name}' {spec.describe()} has dynamic dimension(s) {dynamic}; "
            "synthetic data needs static shapes (fix the input shape or provide real data)"
        )
    return tuple(int(d) for d in dims)
