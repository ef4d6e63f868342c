"""Calibrate and quantize every eligible layer (two streaming passes over the calibration set).

Pass 1 gives each layer input its activation scale and per-channel ranges (which fix the base
channel order and so the groups); pass 2 gathers the per-group statistics (Hessian blocks,
activation extraction errors) that weight rounding and error scores need.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from flexiq_trt.calibration.calibrator import Calibrator
from flexiq_trt.config import CalibConfig
from flexiq_trt.log import get_logger, stage
from flexiq_trt.pipeline.data import FeedSet, FeedSetReader
from flexiq_trt.quantization.config import QuantConfig
from flexiq_trt.quantization.group_stats import GroupStats, GroupStatsObserver
from flexiq_trt.quantization.quantize_layer import LayerQuantResult, LayerSource, quantize_layer
from flexiq_trt.quantization.weights import base_channel_order

_log = get_logger(__name__)


@dataclass
class CalibratedLayer:
    """Pass-1 results for one layer."""

    source: LayerSource
    input_name: str
    act_scale: float
    channel_range: np.ndarray  # float64 [C_in], max |x| per input channel
    base_order: np.ndarray  # int32 [C_pad]


def layer_source(el) -> LayerSource:
    """Adapt intake's EligibleLayer to the quantizer's LayerSource."""
    return LayerSource(
        name=el.name, is_conv=el.op_type == "Conv", weight=np.asarray(el.weight, dtype=np.float32),
        bias=np.asarray(el.bias, dtype=np.float32), geometry=el.geometry, activation=el.activation,
        activation_alpha=float(el.activation_alpha), activation_beta=float(el.activation_beta),
        unsigned_input=bool(el.input_nonnegative))


def calibrate_layers(model: onnx.ModelProto, layers: list, feeds: FeedSet, calib: CalibConfig,
                     quant: QuantConfig) -> tuple[list[CalibratedLayer], object]:
    """Pass 1: activation scales (signed or unsigned by graph proof) and per-channel ranges."""
    cal = Calibrator(model, calib)
    for el in layers:
        cal.attach(el.input_name, channel_axis=1 if el.op_type == "Conv" else -1)
    with stage("calibration pass 1/2 (scales, channel ranges)", _log):
        cal.collect(FeedSetReader(feeds))
        result = cal.compute(calib.method)
    out = []
    for el in layers:
        src = layer_source(el)
        tc = result[el.input_name]
        unsigned = src.unsigned_input and quant.unsigned_activations and tc.threshold_unsigned is not None
        scale = float(tc.scale(signed=not unsigned))
        src = LayerSource(**{**src.__dict__, "unsigned_input": unsigned})
        ch = np.asarray(tc.channels.absmax, dtype=np.float64)
        out.append(CalibratedLayer(src, el.input_name, scale, ch, base_channel_order(ch, quant.group_size)))
    return out, result


def gather_group_stats(model: onnx.ModelProto, calibrated: list[CalibratedLayer], feeds: FeedSet,
                       calib: CalibConfig, quant: QuantConfig) -> list[GroupStats]:
    """Pass 2: per-group Hessian blocks and activation 4-bit errors for every layer."""
    cal = Calibrator(model, calib)
    observers = []
    for i, cl in enumerate(calibrated):
        obs = GroupStatsObserver(cl.base_order, cl.source.weight.shape[1], quant.group_size, cl.act_scale,
                                 not cl.source.unsigned_input, cl.source.geometry, quant.max_rows_per_batch,
                                 seed=i)
        cal.attach(cl.input_name, observers={f"group_stats_{i}": obs})
        observers.append(obs)
    with stage("calibration pass 2/2 (group statistics)", _log):
        cal.collect(FeedSetReader(feeds))
    return [o.result() for o in observers]


def quantize_all(calibrated: list[CalibratedLayer], stats: list[GroupStats],
                 quant: QuantConfig) -> list[LayerQuantResult]:
    """Quantize every layer in base order (layer_index = position in `calibrated`)."""
    from flexiq_trt.log import progress

    out = []
    with stage(f"quantize {len(calibrated)} layers ({quant.weight_rounding} 4-bit weights)", _log):
        for i, (cl, st) in enumerate(progress(list(zip(calibrated, stats, strict=True)), desc="quantize")):
            out.append(quantize_layer(cl.source, i, cl.base_order, cl.act_scale, st, quant))
    return out
