"""The quantization stage (pass 2 + quantize): per-group statistics, then every layer in base order.

Pass 2 over the calibration set gathers what weight rounding and error scores need (Hessian
blocks, activation extraction errors) in each layer's base channel order — the order by a
calibrated per-channel magnitude (`QuantConfig.channel_grouping`) that cuts the channels into
groups; selection later only reorders whole groups.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import onnx

from flexiq_trt.calibration.calibrator import Calibrator
from flexiq_trt.calibration.config import CalibConfig
from flexiq_trt.calibration.feeds import FeedSet, FeedSetReader
from flexiq_trt.calibration.stage import CalibratedLayer
from flexiq_trt.errors import ConfigError, FlexiqInternalError
from flexiq_trt.intake.eligibility import EligibleLayer
from flexiq_trt.log import get_logger, progress, stage
from flexiq_trt.quantization.config import CHANNEL_GROUPING, QuantConfig
from flexiq_trt.quantization.group_stats import GroupStats, GroupStatsObserver
from flexiq_trt.quantization.layer import QuantizedLayer
from flexiq_trt.quantization.quantize_layer import LayerQuantResult, LayerSource, quantize_layer
from flexiq_trt.quantization.weights import base_channel_order

_log = get_logger(__name__)


@dataclass(frozen=True)
class QuantizedRecord:
    """A calibrated layer quantized in base channel order, with what selection and the report read."""

    calibrated: CalibratedLayer
    source: LayerSource
    base_order: np.ndarray  # int32 [C_pad]: channel at each base position (padding last)
    stats: GroupStats
    result: LayerQuantResult  # the QuantizedLayer in base order + per-group error scores

    @property
    def eligible(self) -> EligibleLayer:
        """The intake's view of the layer (graph names, MACs)."""
        return self.calibrated.eligible

    @property
    def layer(self) -> QuantizedLayer:
        """The quantized layer in base order."""
        return self.result.layer


def layer_source(cl: CalibratedLayer) -> LayerSource:
    """The quantizer's view of a calibrated layer (keeps quantization independent of the intake types)."""
    el = cl.eligible
    return LayerSource(
        name=el.name, is_conv=el.op_type == "Conv", weight=np.asarray(el.weight, dtype=np.float32),
        bias=np.asarray(el.bias, dtype=np.float32), geometry=el.geometry, activation=el.activation,
        activation_alpha=float(el.activation_alpha), activation_beta=float(el.activation_beta),
        unsigned_input=cl.unsigned)


def grouping_magnitude(cl: CalibratedLayer, grouping: str) -> np.ndarray:
    """The calibrated per-channel statistic that `QuantConfig.channel_grouping` sorts the channels by."""
    if grouping == "max":
        return cl.channel_range
    if grouping not in ("rms", "p99"):
        raise ConfigError(f"layer '{cl.name}': channel_grouping must be one of {CHANNEL_GROUPING}, got {grouping!r}")
    magnitude = cl.channel_rms if grouping == "rms" else cl.channel_p99
    if magnitude is None:
        raise FlexiqInternalError(f"layer '{cl.name}': channel_grouping={grouping!r} needs calibration pass 1 "
                                  "run with typical_magnitudes=True (calibration/stage.calibrate_layers)")
    return magnitude


def base_orders(calibrated: list[CalibratedLayer], quant: QuantConfig) -> list[np.ndarray]:
    """Every layer's base channel order under the configured grouping statistic and its G."""
    return [base_channel_order(grouping_magnitude(cl, quant.channel_grouping),
                               quant.group_size_for(cl.eligible.in_channels)) for cl in calibrated]


def gather_group_stats(model: onnx.ModelProto, calibrated: list[CalibratedLayer], orders: list[np.ndarray],
                       feeds: FeedSet, calib: CalibConfig, quant: QuantConfig) -> list[GroupStats]:
    """Pass 2: per-group Hessian blocks and activation 4-bit errors for every layer (in base order)."""
    cal = Calibrator(model, calib)
    observers = []
    for i, (cl, order) in enumerate(zip(calibrated, orders, strict=True)):
        c_in = cl.eligible.weight.shape[1]
        obs = GroupStatsObserver(order, c_in, quant.group_size_for(c_in), cl.act_scale,
                                 not cl.unsigned, cl.eligible.geometry, quant.max_rows_per_batch, seed=i)
        obs.with_four_bit_moments(quant.weight_rounding == "recon" and quant.act_shift == "dynamic")
        obs.with_code_sums(quant.bias_correction)
        obs.with_split_hessian(quant.cross_validates_damp)
        cal.attach(cl.eligible.input_name, observers={f"group_stats_{i}": obs})
        observers.append(obs)
    with stage("calibration pass 2/2 (group statistics)", _log):
        cal.collect(FeedSetReader(feeds))
    return [o.result() for o in observers]


def quantize_layers(model: onnx.ModelProto, calibrated: list[CalibratedLayer], feeds: FeedSet,
                    calib: CalibConfig, quant: QuantConfig) -> list[QuantizedRecord]:
    """Every layer quantized in base order (layer_index = position in `calibrated`)."""
    orders = base_orders(calibrated, quant)
    stats = gather_group_stats(model, calibrated, orders, feeds, calib, quant)
    parts = list(zip(calibrated, orders, stats, strict=True))
    with stage(f"quantize {len(parts)} layers ({quant.weight_rounding} 4-bit weights)", _log):
        records = []
        for i, (cl, order, st) in enumerate(progress(parts, desc="quantize")):
            src = layer_source(cl)
            records.append(QuantizedRecord(cl, src, order, st, quantize_layer(src, i, order, cl.act_scale, st, quant)))
    if quant.cross_validates_damp:
        _log.info("GPTQ damping chosen per group (cross-validated): %s", damp_shares(records))
    silent = silent_channel_counts(records)
    if silent:
        _log.info("%d input channel(s) of %d layer(s) (almost) never fired on the calibration data, so their 4-bit "
                  "weights stay close to the float weights (hessian_floor); most: %s", sum(silent.values()),
                  len(silent), ", ".join(f"{k} ({v})" for k, v in sorted(silent.items(), key=lambda kv: -kv[1])[:3]))
    return records


def silent_channel_counts(records: list[QuantizedRecord]) -> dict[str, int]:
    """Layer name -> input channels raised by the Hessian floor, for the layers that have any."""
    return {rec.source.name: rec.result.silent_channels for rec in records if rec.result.silent_channels}


def damp_shares(records: list[QuantizedRecord]) -> str:
    """How often each candidate damping won, over every group of every layer (e.g. "0.01: 46%, 0.1: 36%")."""
    chosen = np.concatenate([rec.result.gptq_damp for rec in records if rec.result.gptq_damp is not None] or [[]])
    values, counts = np.unique(chosen, return_counts=True)
    return ", ".join(f"{v:g}: {100 * c / max(chosen.size, 1):.0f}%" for v, c in zip(values, counts, strict=True))


def requantize(records: list[QuantizedRecord], quant: QuantConfig) -> list[LayerQuantResult]:
    """Quantize the records' layers again under `quant` (same statistics, same base order)."""
    with stage(f"quantize {len(records)} layers ({quant.weight_rounding} 4-bit weights)", _log):
        return [quantize_layer(rec.source, i, rec.base_order, rec.calibrated.act_scale, rec.stats, quant)
                for i, rec in enumerate(progress(records, desc="quantize"))]


def baseline_variants(records: list[QuantizedRecord], quant: QuantConfig) -> dict[str, list[LayerQuantResult]]:
    """The report's baselines on the same statistics, one per step of the 4-bit weights.

    naive top-bit extraction, plain rounding, (when the configured rounding is the reconstruction)
    GPTQ without it, (when GPTQ's damping is cross-validated) the first candidate damping fixed for
    every group, and (with bias correction on) the configured model without the per-rung biases, so
    the report shows what each step costs and gives.
    """
    variants = {
        "naive": requantize(records, replace(quant, weight_rounding="naive", act_shift="naive")),
        "plain": requantize(records, replace(quant, weight_rounding="plain")),
    }
    if quant.weight_rounding == "recon":
        variants["gptq"] = requantize(records, replace(quant, weight_rounding="gptq"))
    if quant.cross_validates_damp:
        variants[FIXED_DAMP] = requantize(records, replace(quant, gptq_damp=quant.gptq_damp[:1]))
    if quant.bias_correction:
        variants[NO_BIAS_CORRECTION] = without_bias_correction([rec.result for rec in records])
    return variants


NO_BIAS_CORRECTION = "no_bias_corr"  # report variant: the configured model with one bias at every rung
FIXED_DAMP = "fixed_damp"  # report variant: GPTQ at the first candidate damping, no per-group choice


def without_bias_correction(results: list[LayerQuantResult]) -> list[LayerQuantResult]:
    """The same layers with the ratio-aware bias correction left out (every rung reads the layer's bias)."""
    return [replace(r, layer=replace(r.layer, group_bias_shift=None)) for r in results]
