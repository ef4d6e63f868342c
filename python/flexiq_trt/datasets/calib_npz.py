"""Write calibration arrays as the ``.npz`` the CLI reads (``--calib data.npz``), keyed by input name.

Axis 0 of every array is the sample axis (``flexiq_trt.calibration.readers.arrays``). Keying by
the model's own input names is what lets the reader match arrays to inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from flexiq_trt.calibration.model_io import model_input_names
from flexiq_trt.errors import CalibrationDataError


def write_calibration_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Save ``{input name: array}`` uncompressed; every array needs the same sample count."""
    if not arrays:
        raise CalibrationDataError(f"{path}: no arrays to write")
    counts = {name: (np.asarray(a).shape[:1] or (None,))[0] for name, a in arrays.items()}
    if None in counts.values() or len(set(counts.values())) != 1:
        raise CalibrationDataError(f"{path}: arrays need one common sample axis 0, got {counts}")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **{name: np.ascontiguousarray(a) for name, a in arrays.items()})
    return out


def write_for_model(model_path: str | Path, path: str | Path, samples: np.ndarray) -> Path:
    """Save ``samples`` under the input name of a single-input model."""
    names = model_input_names(model_path)
    if len(names) != 1:
        raise CalibrationDataError(f"{model_path}: has inputs {names}; pass a mapping to write_calibration_npz")
    return write_calibration_npz(path, {names[0]: samples})
