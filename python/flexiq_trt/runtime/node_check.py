"""Pre-parse checks of FlexiQ plugin nodes that the C++ plugin cannot make.

TensorRT's ONNX parser silently truncates int64 INT/INTS attribute values to int32 (docs/design.md §6), so a
``layer_index`` of 2**33 would reach the plugin as 0. This module checks, per node, that every
attribute has the ONNX type plugin_spec names and that integers fit int32; the plugin itself checks
lengths, ranges and permutations after the parser hands it the fields.
"""

from __future__ import annotations

import onnx

from flexiq_trt.errors import PluginFieldError
from flexiq_trt.plugin_spec import PLUGIN_OPS, FieldKind, fields_for

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_ATTR_TYPE = {
    FieldKind.INT: onnx.AttributeProto.INT,
    FieldKind.FLOAT: onnx.AttributeProto.FLOAT,
    FieldKind.INTS: onnx.AttributeProto.INTS,
    FieldKind.TENSOR_INT8: onnx.AttributeProto.TENSOR,
    FieldKind.TENSOR_INT32: onnx.AttributeProto.TENSOR,
    FieldKind.TENSOR_FLOAT32: onnx.AttributeProto.TENSOR,
}
_TENSOR_DTYPE = {
    FieldKind.TENSOR_INT8: onnx.TensorProto.INT8,
    FieldKind.TENSOR_INT32: onnx.TensorProto.INT32,
    FieldKind.TENSOR_FLOAT32: onnx.TensorProto.FLOAT,
}


def check_plugin_nodes(model: onnx.ModelProto, source: str = "<model>") -> int:
    """Raise PluginFieldError for the first mistyped or int32-overflowing FlexiQ attribute; return the node count."""
    count = 0
    for node in model.graph.node:
        if node.op_type not in PLUGIN_OPS:
            continue
        count += 1
        attrs = {a.name: a for a in node.attribute}
        for spec in fields_for(node.op_type):
            attr = attrs.get(spec.name)
            if attr is not None:
                _check_attribute(attr, spec.kind, f"{source}: {node.op_type} node {node.name!r}")
    return count


def _check_attribute(attr: onnx.AttributeProto, kind: FieldKind, where: str) -> None:
    want = _ATTR_TYPE[kind]
    if attr.type != want:
        raise PluginFieldError(
            f"{where}: attribute {attr.name!r} is {onnx.AttributeProto.AttributeType.Name(attr.type)}, "
            f"expected {onnx.AttributeProto.AttributeType.Name(want)} ({kind.value})"
        )
    if kind is FieldKind.INT:
        values = [attr.i]
    elif kind is FieldKind.INTS:
        values = list(attr.ints)
    else:
        values = []
    bad = [v for v in values if not _INT32_MIN <= v <= _INT32_MAX]
    if bad:
        raise PluginFieldError(
            f"{where}: attribute {attr.name!r} = {bad[0]} does not fit int32 (TensorRT would silently truncate it)"
        )
    if kind in _TENSOR_DTYPE and attr.t.data_type != _TENSOR_DTYPE[kind]:
        got = onnx.TensorProto.DataType.Name(attr.t.data_type)
        need = onnx.TensorProto.DataType.Name(_TENSOR_DTYPE[kind])
        raise PluginFieldError(f"{where}: attribute {attr.name!r} is a {got} tensor, expected {need} ({kind.value})")
