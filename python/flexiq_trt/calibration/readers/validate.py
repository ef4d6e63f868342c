"""Check one calibration feed against the model's inputs before it reaches ONNX Runtime.

ORT's own errors for a wrong feed name a tensor index, not the file the data came from, and a
float64 or NaN-laden feed would silently skew every scale; so each batch is checked here and the
error names the data source, the batch, the input and the mismatch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from flexiq_trt.calibration.model_io import InputSpec
from flexiq_trt.errors import CalibrationDataError


def validate_feed(feed: Any, specs: Sequence[InputSpec], source: str, index: int) -> dict[str, np.ndarray]:
    """Return a fresh, C-contiguous copy of ``feed`` cast to the model's dtypes, or raise.

    Accepted casts: any float dtype to a float input, and integers to an integer input when every
    value fits. Everything else (e.g. int64 image data for a float input) is an error, because it
    usually means the data was not preprocessed.
    """
    where = f"{source}: batch {index}"
    if not isinstance(feed, Mapping):
        raise CalibrationDataError(
            f"{where}: expected a dict of input name -> array, got {type(feed).__name__}"
        )
    _check_names(feed, specs, where)
    return {spec.name: _check_array(feed[spec.name], spec, where) for spec in specs}


def _check_names(feed: Mapping, specs: Sequence[InputSpec], where: str) -> None:
    expected = [spec.name for spec in specs]
    missing = [name for name in expected if name not in feed]
    extra = [str(name) for name in feed if name not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing input(s) {missing}")
        if extra:
            parts.append(f"unknown name(s) {extra}")
        raise CalibrationDataError(f"{where}: {' and '.join(parts)}; the model's inputs are {expected}")


def _check_array(value: Any, spec: InputSpec, where: str) -> np.ndarray:
    array = np.asarray(value)
    prefix = f"{where}: input '{spec.name}'"
    array = _cast(array, spec, prefix)
    if array.ndim != spec.rank:
        raise CalibrationDataError(
            f"{prefix} has shape {tuple(array.shape)} (rank {array.ndim}) but the model expects "
            f"{spec.describe()} (rank {spec.rank})"
        )
    for axis, (got, want) in enumerate(zip(array.shape, spec.shape, strict=True)):
        if want is not None and got != want:
            raise CalibrationDataError(
                f"{prefix} has shape {tuple(array.shape)}: dimension {axis} is {got} but the model "
                f"expects {spec.describe()}"
            )
    if array.size and array.shape[0] == 0:
        raise CalibrationDataError(f"{prefix} has an empty batch (shape {tuple(array.shape)})")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        nan = int(np.isnan(array).sum())
        inf = int(np.isinf(array).sum())
        raise CalibrationDataError(f"{prefix} contains {nan} NaN and {inf} Inf value(s)")
    return array


def _cast(array: np.ndarray, spec: InputSpec, prefix: str) -> np.ndarray:
    want = spec.dtype
    got = array.dtype
    if got == want:
        return np.array(array, copy=True, order="C")
    if want.kind == "f" and got.kind == "f":
        return np.array(array, dtype=want, copy=True, order="C")
    if want.kind in "iu" and got.kind in "iu":
        info = np.iinfo(want)
        if array.size == 0 or (array.min() >= info.min and array.max() <= info.max):
            return np.array(array, dtype=want, copy=True, order="C")
        raise CalibrationDataError(f"{prefix} has {got} values outside the range of the model's {want}")
    hint = " (was the data normalized to float?)" if want.kind == "f" and got.kind in "iub" else ""
    raise CalibrationDataError(f"{prefix} has dtype {got} but the model expects {want}{hint}")
