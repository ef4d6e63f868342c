"""Calibration: readers for calibration data, bounded-memory observers, scale selection, calibrator.

Typical use (see :mod:`flexiq_trt.calibration.calibrator` for the lifecycle)::

    reader = open_reader("calib.npz", model, CalibConfig())
    result = calibrate(model, reader, ["conv1_in", "fc_in"], channel_axes={"conv1_in": 1})
    s_a = result.scale("conv1_in", signed=True)
"""

from flexiq_trt.calibration.calibrator import Calibrator, calibrate
from flexiq_trt.calibration.histogram import HistogramSnapshot, StreamingHistogram
from flexiq_trt.calibration.model_io import InputSpec, input_specs, load_model
from flexiq_trt.calibration.observers import (
    AbsHistogramObserver,
    ChannelRange,
    ChannelRangeObserver,
    Observer,
    RangeObserver,
    TensorRange,
)
from flexiq_trt.calibration.readers import BaseReader, CalibrationReader, open_reader
from flexiq_trt.calibration.result import CalibrationResult, TensorCalibration
from flexiq_trt.calibration.scales import (
    THRESHOLD_METHODS,
    choose_threshold,
    mse_threshold,
    quantization_mse,
    scale_from_threshold,
)
from flexiq_trt.calibration.session import create_session, run_model

__all__ = [
    "AbsHistogramObserver",
    "BaseReader",
    "CalibrationReader",
    "CalibrationResult",
    "Calibrator",
    "ChannelRange",
    "ChannelRangeObserver",
    "HistogramSnapshot",
    "InputSpec",
    "Observer",
    "RangeObserver",
    "StreamingHistogram",
    "THRESHOLD_METHODS",
    "TensorCalibration",
    "TensorRange",
    "calibrate",
    "choose_threshold",
    "create_session",
    "input_specs",
    "load_model",
    "mse_threshold",
    "open_reader",
    "quantization_mse",
    "run_model",
    "scale_from_threshold",
]
