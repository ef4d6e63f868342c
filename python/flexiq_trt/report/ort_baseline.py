"""ONNX Runtime's own static INT8 quantization: the baseline a FlexiQ model should at least match.

Per-channel weights, QDQ format, MinMax calibration on the same calibration arrays the FlexiQ
pipeline uses. ``QDQDisableWeightAdjustForInt32Bias`` is set because onnxruntime 1.32 otherwise
rescales some per-channel weights to keep the int32 bias in range, which breaks on some models.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flexiq_trt.errors import CalibrationDataError, ModelError
from flexiq_trt.options import option


@dataclass(frozen=True)
class OrtBaselineConfig:
    """How the baseline is quantized (defaults: ORT's recommended per-channel QDQ INT8)."""

    per_channel: bool = option(True, "per-output-channel weight scales (ORT's recommended setting for CNNs)")
    batch_size: int = option(32, "calibration batch size; a model with a fixed batch axis uses its own")
    preprocess: bool = option(
        True, "run ORT's quant_pre_process (shape inference, graph optimisation incl. BN folding) first")
    symmetric_activations: bool = option(False, "symmetric activation quantization (ORT's default is asymmetric)")
    extra_options: dict[str, object] = option(
        help="ORT quantize_static extra_options (WeightAdjust off: needed for per-channel QDQ on some models)",
        default_factory=lambda: {"QDQDisableWeightAdjustForInt32Bias": True}, cli=False)


def _array_reader(arrays: Mapping[str, np.ndarray], batch_size: int):
    """The calibration arrays as float32 batches along axis 0 (ORT's CalibrationDataReader protocol)."""
    from flexiq_trt.calibration.feeds import FeedSet, FeedSetReader

    batch = {name: np.asarray(a, dtype=np.float32) for name, a in arrays.items()}
    return FeedSetReader(FeedSet([batch]).rebatch(batch_size))


def _check_calibration(model_path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    import onnx

    from flexiq_trt.calibration.model_io import model_input_names

    if not model_path.is_file():
        raise ModelError(f"{model_path}: model file not found")
    try:
        names = model_input_names(model_path)
    except (onnx.onnx_cpp2py_export.checker.ValidationError, ValueError, OSError) as exc:
        raise ModelError(f"{model_path}: not a readable ONNX model ({exc})") from exc
    missing = sorted(set(names) - set(arrays))
    if missing:
        raise CalibrationDataError(f"calibration data lacks model inputs {missing} of {model_path}")
    counts = {name: np.asarray(arrays[name]).shape[0] for name in names}
    if len(set(counts.values())) != 1 or 0 in counts.values():
        raise CalibrationDataError(f"calibration arrays need one non-zero sample count, got {counts}")


def _fixed_batch(model_path: Path) -> int | None:
    """The batch size the model's first input fixes, or None when axis 0 is dynamic."""
    import onnx

    from flexiq_trt.calibration.model_io import model_input_names

    graph = onnx.load(str(model_path), load_external_data=False).graph
    first = next(v for v in graph.input if v.name == model_input_names(model_path)[0])
    dims = first.type.tensor_type.shape.dim
    return int(dims[0].dim_value) if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0 else None


def quantize_ort_int8(
    model_path: str | Path,
    calibration: Mapping[str, np.ndarray],
    out_path: str | Path,
    config: OrtBaselineConfig | None = None,
) -> Path:
    """Quantize ``model_path`` with ORT ``quantize_static`` and write ``out_path``; returns it."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    cfg = config or OrtBaselineConfig()
    source, out = Path(model_path), Path(out_path)
    _check_calibration(source, calibration)
    out.parent.mkdir(parents=True, exist_ok=True)
    batch_size = _fixed_batch(source) or cfg.batch_size
    with tempfile.TemporaryDirectory() as tmp:
        if cfg.preprocess:
            prepared = Path(tmp) / "prepared.onnx"
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            source = prepared
        quantize_static(
            str(source), str(out), _array_reader(calibration, batch_size),
            quant_format=QuantFormat.QDQ, per_channel=cfg.per_channel,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={**cfg.extra_options, "ActivationSymmetric": cfg.symmetric_activations},
        )
    return out
