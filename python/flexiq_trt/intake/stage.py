"""The intake stage: prepare the loaded model at the calibration shapes and find the eligible layers.

Input shapes come from the data: a model with dynamic non-batch dimensions is resolved at the
first calibration batch's shape, and the written artifacts get their batch axis back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx

from flexiq_trt.intake.eligibility import EligibleLayer, SkippedLayer, find_layers
from flexiq_trt.intake.prepare import infer_shapes, prepare_model
from flexiq_trt.log import get_logger

_log = get_logger(__name__)


@dataclass
class IntakeResult:
    """What the later stages start from: the prepared graph and the layers it offers."""

    prepared: onnx.ModelProto
    eligible: list[EligibleLayer]
    skipped: list[SkippedLayer]


def calibration_shapes(model: onnx.ModelProto, first_batch: Mapping[str, np.ndarray]) -> dict[str, list[int]] | None:
    """Fixed input shapes (batch 1) when the model has dynamic non-batch dims, else None."""
    from flexiq_trt.calibration.model_io import input_specs

    dynamic = {s.name for s in input_specs(model) if any(d is None for d in s.shape[1:])}
    if not dynamic:
        return None
    _log.warning("inputs %s have dynamic non-batch dimensions: fixing them to the calibration shape",
                 sorted(dynamic))
    return {k: [1, *first_batch[k].shape[1:]] for k in dynamic}


def keep_batch_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    """Make axis 0 of every graph input and output symbolic again after shapes were fixed."""
    for vi in list(model.graph.input) + list(model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if len(dims):
            dims[0].dim_param = "batch"
    del model.graph.value_info[:]
    return infer_shapes(model)


def run_intake(original: onnx.ModelProto, first_batch: Mapping[str, np.ndarray], group_size: int) -> IntakeResult:
    """Prepare the model (at the data's shapes where it is dynamic) and split its layers."""
    shapes = calibration_shapes(original, first_batch)
    prepared = prepare_model(original, shapes)
    eligible, skipped = find_layers(prepared, group_size)
    if shapes:
        prepared = keep_batch_dynamic(prepared)
    return IntakeResult(prepared, eligible, skipped)
