"""The calibration stage (pass 1): every eligible layer's activation scale and per-channel statistics.

A per-channel magnitude (the maximum, the RMS or the 99th percentile of |x|, as
``QuantConfig.channel_grouping`` says) fixes each layer's base channel order and so its groups; the
scale is signed or unsigned by graph proof (the intake's non-negativity analysis) *and* by what
calibration saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from flexiq_trt.calibration.calibrator import Calibrator
from flexiq_trt.calibration.config import CalibConfig
from flexiq_trt.calibration.feeds import FeedSet, FeedSetReader
from flexiq_trt.calibration.observers import ChannelMagnitude, ChannelMagnitudeObserver
from flexiq_trt.intake.eligibility import EligibleLayer
from flexiq_trt.log import get_logger, stage

_log = get_logger(__name__)
GROUPING_PERCENTILE = 99.0  # the percentile of |x| gathered per channel (CalibratedLayer.channel_p99)
_MAGNITUDE = "channel_magnitude"  # the pass-1 observer's key in TensorCalibration.extra


@dataclass(frozen=True)
class CalibratedLayer:
    """An eligible layer with its calibrated input: what quantization starts from."""

    eligible: EligibleLayer
    act_scale: float
    unsigned: bool  # u8/u4 codes: proven non-negative, none seen negative, and allowed by the config
    channel_range: np.ndarray  # float64 [C_in], max |x| per input channel
    # Typical magnitudes per input channel, float64 [C_in] (ChannelMagnitudeObserver): sqrt(mean x^2)
    # and the 99th percentile of |x|; either can cut the groups instead of the maximum. None unless
    # pass 1 was asked for them: their histograms cost 6 KiB per channel, which the default grouping
    # (by the maximum) does not need.
    channel_rms: np.ndarray | None = None
    channel_p99: np.ndarray | None = None

    @property
    def name(self) -> str:
        """The layer's node name."""
        return self.eligible.name


def calibrate_layers(model: onnx.ModelProto, layers: list[EligibleLayer], feeds: FeedSet, calib: CalibConfig,
                     allow_unsigned: bool, typical_magnitudes: bool = False) -> list[CalibratedLayer]:
    """Pass 1 over the calibration set: activation scales and per-channel statistics of every layer input.

    `typical_magnitudes` also gathers each channel's RMS and 99th percentile of |x| (for a grouping
    other than by the maximum, `QuantConfig.channel_grouping`).
    """
    cal = Calibrator(model, calib)
    for el in layers:
        axis = 1 if el.op_type == "Conv" else -1
        observers = ({_MAGNITUDE: ChannelMagnitudeObserver(axis, el.input_name, GROUPING_PERCENTILE)}
                     if typical_magnitudes else None)
        cal.attach(el.input_name, channel_axis=axis, observers=observers)
    with stage("calibration pass 1/2 (scales, channel ranges and magnitudes)", _log):
        cal.collect(FeedSetReader(feeds))
        result = cal.compute(calib.method)
    out = []
    for el in layers:
        tc = result[el.input_name]
        unsigned = bool(el.input_nonnegative) and allow_unsigned and tc.threshold_unsigned is not None
        magnitude: ChannelMagnitude | None = tc.extra.get(_MAGNITUDE)
        out.append(CalibratedLayer(el, float(tc.scale(signed=not unsigned)), unsigned,
                                   np.asarray(tc.channels.absmax, dtype=np.float64),
                                   magnitude.rms if magnitude else None, magnitude.percentile if magnitude else None))
    return out
