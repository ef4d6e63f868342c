"""Shared helpers of the two writers: locate a layer's nodes, the runtime input, metadata."""

from __future__ import annotations

import json
from collections.abc import Sequence

import onnx

from flexiq_trt.errors import FlexiqInternalError
from flexiq_trt.plugin_spec import RUNTIME_INPUT

from .graph_index import GraphIndex


def locate_nodes(idx: GraphIndex, layer) -> list[int]:
    """Indices of the nodes an EligibleLayer replaces (names were made unique by intake)."""
    by_name = {n.name: i for i, n in enumerate(idx.nodes)}
    missing = [n for n in layer.replaced_nodes if n not in by_name]
    if missing:
        raise FlexiqInternalError(f"layer {layer.name}: nodes {missing} are not in the prepared model")
    found = [by_name[n] for n in layer.replaced_nodes]
    if layer.output_name not in {o for i in found for o in idx.nodes[i].output}:
        raise FlexiqInternalError(f"layer {layer.name}: its nodes do not produce {layer.output_name!r}")
    return found


def check_layer_pairs(layers: Sequence[tuple]) -> int:
    """Validate the (EligibleLayer, QuantizedLayer) pairs; returns L (layer_index runs 0..L-1)."""
    indices = sorted(ql.layer_index for _, ql in layers)
    if indices != list(range(len(layers))):
        raise FlexiqInternalError(f"layer_index values must be 0..{len(layers) - 1}, got {indices}")
    for el, ql in layers:
        ql.validate()
        if ql.op_type != el.plugin_op:
            raise FlexiqInternalError(f"layer {el.name}: quantized as {ql.op_type}, eligible as {el.plugin_op}")
        if ql.in_channels != el.in_channels or ql.out_channels != el.out_channels:
            raise FlexiqInternalError(f"layer {el.name}: channel counts differ between intake and quantization")
    return len(layers)


def runtime_input_info(num_layers: int) -> onnx.ValueInfoProto:
    """The graph input `flexiq_max_4bit_ch`: int32 [L]."""
    return onnx.helper.make_tensor_value_info(RUNTIME_INPUT, onnx.TensorProto.INT32, [num_layers])


def check_written(model: onnx.ModelProto, what: str) -> None:
    """onnx.checker on a written model (in-memory checking is impossible past 2 GiB: check the file then)."""
    if model.ByteSize() >= 2**31 - 1:
        return
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise FlexiqInternalError(f"the {what} fails onnx.checker: {e}") from e


def set_metadata(model: onnx.ModelProto, metadata: dict) -> None:
    """Write/overwrite metadata_props; non-string values are JSON-encoded."""
    props = {p.key: p.value for p in model.metadata_props}
    for key, value in metadata.items():
        props[str(key)] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
