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

from flexiq_trt.graph_passes.graph_index import GraphIndex
from flexiq_trt.graph_passes.offset_bounded_inputs import OffsetLayer, find_input_offsets
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


def possible_int8_edges(model: onnx.ModelProto, eligible: list[EligibleLayer]) -> set[str]:
    """Eligible layers' output tensors read only by eligible layers as their input (docs/design.md §2.8).

    Those may become INT8 edges, which carry the reader's codes of the unshifted tensor, so the offset
    pass leaves them signed; an output that any other node also reads stays float anyway.
    """
    idx = GraphIndex(model)
    first = {e.replaced_nodes[0]: e for e in eligible}
    out = set()
    for e in eligible:
        readers = idx.consumers_of(e.output_name)
        if readers and e.output_name not in idx.graph_outputs and all(
                r.name in first and first[r.name].input_name == e.output_name for r in readers):
            out.add(e.output_name)
    return out


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
        reps, offsets = find_input_offsets(prepared, [(e.name, e.input_name, e.input_nonnegative) for e in eligible],
                                           keep_signed=possible_int8_edges(prepared, eligible) if int8_edges else ())
        if reps:
            prepared = apply_replacements(prepared, reps)
            known = dict(resolved.shapes)
            known.update({o.shifted: known[o.source] for o in offsets if o.source in known})
            resolved = replace(resolved, shapes=known)
            eligible, skipped = find_layers(prepared, group_size, resolved=resolved)
            _log.info("offset the bounded signed inputs of %d layer(s) to unsigned codes (e.g. %s: +%g)",
                      len(offsets), offsets[0].layer, -offsets[0].lower_bound)
    return IntakeResult(prepared, eligible, skipped, resolved, offsets)
