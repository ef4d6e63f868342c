"""QuantizedLayer -> plugin-node attributes, driven by `plugin_spec.fields_for` (one table, no drift)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from flexiq_trt.errors import PluginFieldError
from flexiq_trt.plugin_spec import (
    PLUGIN_NAMESPACE,
    PLUGIN_VERSION,
    SUPPORTED_GROUP_SIZES,
    EdgeKind,
    FieldKind,
    FieldSpec,
    fields_for,
    padded_channels,
)
from flexiq_trt.quantization import bits
from flexiq_trt.quantization.layer import QuantizedLayer

from .int8_edges import FLOAT_EDGES, EdgeIO, WorkspaceReader

_TENSOR_DTYPES = {FieldKind.TENSOR_INT8: np.int8, FieldKind.TENSOR_INT32: np.int32,
                  FieldKind.TENSOR_FLOAT32: np.float32}


def reader_order(reader: WorkspaceReader, out_channels: int, name: str) -> np.ndarray:
    """The producer's output channel order of a workspace edge: the reader's pi[:N] (checked: padding last)."""
    rows = np.asarray(reader.permutation[:out_channels], np.int64)
    if rows.size != out_channels or not np.array_equal(np.sort(rows), np.arange(out_channels)):
        raise PluginFieldError(f"layer {name}: the workspace reader's permutation does not start with its "
                               f"{out_channels} real channels (docs/design.md §2.4: padding comes last)")
    return rows


def field_values(layer: QuantizedLayer, edge: EdgeIO = FLOAT_EDGES) -> dict[str, object]:
    """Every plugin field's value for `layer`, in plugin layouts (weights flattened to [N, K]).

    `edge` says whether the layer reads and writes INT8 codes (graph_passes/int8_edges.py).
    """
    n = layer.out_channels
    w8 = layer.weight_int8.reshape(n, -1)
    w4 = layer.weight_int4.reshape(n, -1)
    w_step, w_scale, bias = np.asarray(layer.weight_step), np.asarray(layer.weight_scale), layer.bias_table()
    reader = edge.reader
    if reader is not None:
        # A workspace edge: output channel j is the reader's permuted channel pi_r[j] (pi_r[:N] are the real
        # channels, padding last), so the producer's epilogue writes the reader's order directly.
        rows = reader_order(reader, n, layer.name)
        w8, w4, w_scale, bias = w8[rows], w4[rows], w_scale[rows], bias[:, rows]  # steps are per group: unchanged
    r_group = reader.group_size if reader is not None else SUPPORTED_GROUP_SIZES[0]
    values: dict[str, object] = {
        "layer_index": layer.layer_index, "group_size": layer.group_size, "in_channels": layer.in_channels,
        "out_channels": n, "act_scale": float(layer.act_scale), "act_signed": int(bool(layer.act_signed)),
        "act_shift_mode": int(layer.act_shift_mode), "act_static_shift": layer.act_static_shift,
        "permutation": layer.permutation, "weight_int8": w8, "weight_int4": bits.pack_int4(w4),
        "weight_step": w_step, "weight_scale": w_scale, "bias": bias,
        "activation": int(layer.activation), "activation_alpha": float(layer.activation_alpha),
        "activation_beta": float(layer.activation_beta),
        "input_int8": int(EdgeKind.WORKSPACE if edge.input_workspace else
                          (EdgeKind.CODES if edge.input_int8 else EdgeKind.FLOAT)),
        "output_int8": int(EdgeKind.WORKSPACE if reader is not None else
                           (EdgeKind.CODES if edge.output is not None else EdgeKind.FLOAT)),
        "output_scale": float(edge.output.scale) if edge.output is not None else 1.0,
        "output_signed": int(edge.output.signed) if edge.output is not None else 0,
        "reader_layer_index": reader.layer_index if reader is not None else 0,
        "reader_group_size": r_group,
        "reader_act_shift_mode": reader.shift_mode if reader is not None else 0,
        "reader_act_static_shift": (reader.static_shift if reader is not None
                                    else np.zeros(padded_channels(n, r_group) // r_group, np.int8)),
    }
    if layer.is_conv:
        geo = layer.geometry
        values.update(kernel_shape=list(geo.kernel_shape), strides=list(geo.strides), pads=list(geo.pads),
                      dilations=list(geo.dilations))
    return values


def _check_range(layer: QuantizedLayer, spec: FieldSpec, arr: np.ndarray) -> None:
    if spec.name == "weight_int4" or arr.size == 0:
        return
    if spec.low is not None and float(arr.min()) < spec.low:
        raise PluginFieldError(f"layer {layer.name}: field {spec.name} below {spec.low} ({arr.min()})")
    if spec.high is not None and float(arr.max()) > spec.high:
        raise PluginFieldError(f"layer {layer.name}: field {spec.name} above {spec.high} ({arr.max()})")


def make_attributes(layer: QuantizedLayer, edge: EdgeIO = FLOAT_EDGES) -> list[onnx.AttributeProto]:
    """plugin_version, plugin_namespace and every field of the layer's op, with the spec's kinds."""
    values = field_values(layer, edge)
    attrs = [onnx.helper.make_attribute("plugin_version", PLUGIN_VERSION),
             onnx.helper.make_attribute("plugin_namespace", PLUGIN_NAMESPACE)]
    for spec in fields_for(layer.op_type):
        if spec.name not in values:
            raise PluginFieldError(f"layer {layer.name}: no value for plugin field {spec.name}")
        v = values[spec.name]
        if spec.kind == FieldKind.INT:
            _check_range(layer, spec, np.asarray(v))
            attr = onnx.helper.make_attribute(spec.name, int(v))
        elif spec.kind == FieldKind.FLOAT:
            attr = onnx.helper.make_attribute(spec.name, float(np.float32(v)))
        elif spec.kind == FieldKind.INTS:
            _check_range(layer, spec, np.asarray(v))
            attr = onnx.helper.make_attribute(spec.name, [int(x) for x in v])
        else:
            arr = np.ascontiguousarray(np.asarray(v))
            cast = arr.astype(_TENSOR_DTYPES[spec.kind])
            if np.issubdtype(arr.dtype, np.integer) and not np.array_equal(cast.astype(np.int64), arr.astype(np.int64)):
                raise PluginFieldError(f"layer {layer.name}: field {spec.name} does not fit {cast.dtype}")
            _check_range(layer, spec, cast)
            attr = onnx.helper.make_attribute(spec.name, numpy_helper.from_array(cast, spec.name))
        attrs.append(attr)
    return attrs
