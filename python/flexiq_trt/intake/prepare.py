"""Normalise a loaded model for the passes: stable node names, constants folded, BN folded, shapes known."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence

import onnx

from flexiq_trt.errors import ModelError
from flexiq_trt.graph_passes.fold_batchnorm import find_batchnorm_folds
from flexiq_trt.graph_passes.rewrite import apply_replacements

log = logging.getLogger("flexiq_trt.intake")

CALIBRATION_SHAPES_KEY = "flexiq_calibration_input_shapes"


def recorded_input_shapes(model: onnx.ModelProto) -> dict[str, list[int]] | None:
    """The calibration input shapes `prepare_model` recorded, if any."""
    for p in model.metadata_props:
        if p.key == CALIBRATION_SHAPES_KEY:
            return json.loads(p.value)
    return None


def prepare_model(model: onnx.ModelProto,
                  input_shapes: Mapping[str, Sequence[int]] | None = None) -> onnx.ModelProto:
    """Return a copy ready for `find_layers` and the writers.

    Graph-input dims stay as the model declares them (a dynamic batch stays dynamic, so nothing is
    folded for one batch size). `input_shapes` (the calibration shape) is checked and recorded in
    metadata_props[CALIBRATION_SHAPES_KEY]; `find_layers` uses it to resolve geometry and MACs.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    name_nodes(out)
    if input_shapes:
        set_input_shapes(onnx.ModelProto(graph=onnx.GraphProto(input=out.graph.input)), input_shapes)
        entry = out.metadata_props.add()
        entry.key = CALIBRATION_SHAPES_KEY
        entry.value = json.dumps({k: [int(d) for d in v] for k, v in input_shapes.items()})
    out = infer_shapes(out)
    out = fold_constants(out)
    folds = find_batchnorm_folds(out)
    if folds:
        out = apply_replacements(out, folds)
        log.info("folded %d BatchNormalization node(s) into convolutions", len(folds))
    return infer_shapes(out)


def name_nodes(model: onnx.ModelProto) -> None:
    """Give unnamed nodes names derived from their first output tensor; make every name unique."""
    seen: set[str] = set()
    for node in model.graph.node:
        base = node.name or f"{node.op_type}:{node.output[0] if node.output else 'noout'}"
        name, k = base, 1
        while name in seen:
            k += 1
            name = f"{base}#{k}"
        node.name = name
        seen.add(name)


def set_input_shapes(model: onnx.ModelProto, shapes: Mapping[str, Sequence[int]]) -> None:
    """Overwrite graph-input shapes; a named input that does not exist is an error."""
    inputs = {v.name: v for v in model.graph.input}
    for name, shape in shapes.items():
        if name not in inputs:
            raise ModelError(f"input shape given for {name!r}, but the model's inputs are {sorted(inputs)}")
        dims = inputs[name].type.tensor_type.shape.dim
        if len(dims) and len(dims) != len(shape):
            raise ModelError(f"input {name!r}: shape {list(shape)} has rank {len(shape)}, model says {len(dims)}")
        del dims[:]
        for d in shape:
            dims.add().dim_value = int(d)


def with_input_shapes(model: onnx.ModelProto, shapes: Mapping[str, Sequence[int]]) -> onnx.ModelProto:
    """A shape-inferred copy with graph-input dims fixed (for resolving geometry and MACs only)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.value_info[:]
    set_input_shapes(out, shapes)
    return infer_shapes(out)


def infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """ONNX shape inference (with data propagation); a failure leaves shapes unknown, not an error."""
    if model.ByteSize() >= 2**31 - 1:
        log.warning("model over 2 GiB: skipping in-memory shape inference")
        return model
    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as e:  # inference errors on exotic ops must not stop conversion
        log.warning("shape inference failed (%s); continuing with partial shapes", e)
        return model


def fold_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """Fold Constant/Identity/constant-only subgraphs into initializers (onnx-graphsurgeon, ORT)."""
    import onnx_graphsurgeon as gs

    graph = gs.import_onnx(model)
    graph.fold_constants(error_ok=True)
    graph.cleanup(remove_unused_graph_inputs=False)
    folded = gs.export_onnx(graph, do_type_check=False)
    folded.ir_version = model.ir_version
    del folded.metadata_props[:]
    folded.metadata_props.extend(model.metadata_props)
    name_nodes(folded)
    return folded
