"""The intake stage: prepare the loaded model and find the eligible layers at the data's shapes.

Shapes come from the data: every candidate layer's input shape is resolved at the first
calibration batch's shapes (`intake.shapes`: shape inference, shape-subgraph folding, and one
ONNX Runtime run as the ground truth), so reshape chains of exported models do not hide layers.
The prepared model keeps the model's dynamic axes (batch, sequence length), and so do the artifacts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import onnx

from flexiq_trt.graph_passes.int8_edges import predicted_int8_edges
from flexiq_trt.graph_passes.offset_bounded_inputs import OffsetCandidate, OffsetLayer, find_input_offsets
from flexiq_trt.graph_passes.rewrite import apply_replacements
from flexiq_trt.intake.eligibility import CANDIDATE_OPS, EligibleLayer, SkippedLayer, find_layers
from flexiq_trt.intake.prepare import prepare_model
from flexiq_trt.intake.shapes import ResolvedShapes, resolve_shapes
from flexiq_trt.log import get_logger

_log = get_logger(__name__)


@dataclass
class IntakeResult:
    """What the later stages start from: the prepared graph and the layers it offers."""

    prepared: onnx.ModelProto
    eligible: list[EligibleLayer]
    skipped: list[SkippedLayer]
    shapes: ResolvedShapes | None = None
    offsets: list[OffsetLayer] = field(default_factory=list)


def candidate_inputs(model: onnx.ModelProto) -> list[str]:
    """The data input (input 0) of every Conv/ConvTranspose/Gemm/MatMul node."""
    return [n.input[0] for n in model.graph.node
            if n.op_type in CANDIDATE_OPS and n.domain in ("", "ai.onnx") and n.input and n.input[0]]


def offset_candidate(el: EligibleLayer) -> OffsetCandidate:
    """What the offset pass needs of an eligible layer: its input, whether it is padded, Σ_k W[n, k]."""
    padded = el.geometry is not None and any(el.geometry.pads)
    sums = el.weight.reshape(el.weight.shape[0], -1).astype(np.float64).sum(axis=1)  # canonical: alpha, transB applied
    return OffsetCandidate(el.name, el.input_name, el.input_nonnegative, padded, sums)


def run_intake(original: onnx.ModelProto, first_batch: Mapping[str, np.ndarray], group_size: int,
               offset_inputs: bool = False, int8_edges: bool = True) -> IntakeResult:
    """Prepare the model, resolve every candidate's shapes at the first batch, and split the layers.

    `group_size` is the QuantConfig setting (32, 64, or 0 = G per layer), which sets how narrow a layer may be.
    `offset_inputs` shifts eligible layers' bounded signed inputs to non-negative ones, the shift folded
    into their biases (`graph_passes.offset_bounded_inputs`), and finds the layers again in that graph;
    with `int8_edges` (the conversion will write INT8 edges) a tensor that could become one stays signed.
    """
    prepared = prepare_model(original)
    resolved = resolve_shapes(prepared, first_batch, candidate_inputs(prepared))
    eligible, skipped = find_layers(prepared, group_size, resolved=resolved)
    offsets: list[OffsetLayer] = []
    if offset_inputs and eligible:
        edges = predicted_int8_edges(prepared, eligible) if int8_edges else {}
        reps, offsets = find_input_offsets(prepared, [offset_candidate(e) for e in eligible],
                                           keep_signed={e.output_name for e in eligible
                                                        if e.name in edges and edges[e.name].output is not None})
        if reps:
            prepared = apply_replacements(prepared, reps)
            known = dict(resolved.shapes)
            known.update({o.shifted: known[o.source] for o in offsets if o.source in known})
            resolved = replace(resolved, shapes=known)
            eligible, skipped = find_layers(prepared, group_size, resolved=resolved)
            _log.info("offset the bounded signed inputs of %d layer(s) to unsigned codes (e.g. %s: +%g)",
                      len(offsets), offsets[0].layer, -offsets[0].lower_bound)
    return IntakeResult(prepared, eligible, skipped, resolved, offsets)
