"""Tiny FlexiQ ONNX models for the plugin/engine tests, written exactly as plugin_spec.py says.

Until the real ``convert`` output is used by an integration test, these builders stand in for it:
op_type FlexiQConv/FlexiQGemm in domain PLUGIN_DOMAIN (declared in opset_import), the
``plugin_version``/``plugin_namespace`` attributes, arrays as real TENSOR attributes
(``onnx.numpy_helper.from_array``) and every node taking the int32 [L] ``flexiq_max_4bit_ch`` input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from flexiq_trt.plugin_spec import (
    CONV_OP,
    GEMM_OP,
    PLUGIN_DOMAIN,
    PLUGIN_NAMESPACE,
    PLUGIN_VERSION,
    RUNTIME_INPUT,
    FieldKind,
    fields_for,
    padded_channels,
)


@dataclass
class LayerSpec:
    """Field values of one plugin node (arrays filled by `random_layer`)."""

    op_type: str
    layer_index: int
    in_channels: int
    out_channels: int
    group_size: int = 32
    kernel_shape: tuple[int, int] = (1, 1)
    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilations: tuple[int, int] = (1, 1)
    act_scale: float = 0.05
    act_signed: int = 1
    act_shift_mode: int = 0
    activation: int = 1
    activation_alpha: float = 0.0
    activation_beta: float = 0.0
    input_int8: int = 0
    output_int8: int = 0
    output_scale: float = 1.0
    output_signed: int = 1
    reader_layer_index: int = 0  # workspace-edge producer fields (output_int8 = 2); defaults when unused
    reader_group_size: int = 32
    reader_act_shift_mode: int = 0
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def c_pad(self) -> int:
        return padded_channels(self.in_channels, self.group_size)

    @property
    def k(self) -> int:
        r, s = self.kernel_shape if self.op_type == CONV_OP else (1, 1)
        return r * s * self.c_pad


def random_layer(spec: LayerSpec, seed: int = 0) -> LayerSpec:
    """Fill the arrays of `spec` with valid random values (padded channels last in pi)."""
    rng = np.random.default_rng(seed)
    n, k, cp, g = spec.out_channels, spec.k, spec.c_pad, spec.c_pad // spec.group_size
    perm = np.concatenate([rng.permutation(spec.in_channels), np.arange(spec.in_channels, cp)]).astype(np.int32)
    w4 = rng.integers(-8, 8, size=(n, k), dtype=np.int8)
    packed = ((w4[:, 0::2].astype(np.uint8) & 0xF) | ((w4[:, 1::2].astype(np.uint8) & 0xF) << 4)).view(np.int8)
    spec.arrays = {
        "act_static_shift": rng.integers(0, 5, size=g, dtype=np.int8),
        "permutation": perm,
        "weight_int8": rng.integers(-127, 128, size=(n, k), dtype=np.int8),
        "weight_int4": packed,
        "weight_step": rng.integers(1, 17, size=g, dtype=np.int8),
        "weight_scale": rng.uniform(1e-3, 2e-2, size=n).astype(np.float32),
        "bias": rng.normal(0, 0.1, size=(g + 1, n)).astype(np.float32),  # [G_count + 1, N]: one row per rung
        "reader_act_static_shift": np.zeros(padded_channels(n, spec.reader_group_size) // spec.reader_group_size,
                                            np.int8),
    }
    return spec


def node_attributes(spec: LayerSpec) -> dict[str, onnx.AttributeProto]:
    """Every field of the node as an ONNX attribute of the kind plugin_spec names."""
    attrs: dict[str, onnx.AttributeProto] = {}
    for f in fields_for(spec.op_type):
        if f.kind in (FieldKind.TENSOR_INT8, FieldKind.TENSOR_INT32, FieldKind.TENSOR_FLOAT32):
            attrs[f.name] = helper.make_attribute(f.name, numpy_helper.from_array(spec.arrays[f.name], f.name))
        elif f.kind is FieldKind.INTS:
            attrs[f.name] = helper.make_attribute(f.name, [int(v) for v in getattr(spec, f.name)])
        elif f.kind is FieldKind.FLOAT:
            attrs[f.name] = helper.make_attribute(f.name, float(getattr(spec, f.name)))
        else:
            attrs[f.name] = helper.make_attribute(f.name, int(getattr(spec, f.name)))
    return attrs


def plugin_node(spec: LayerSpec, x: str, y: str, name: str,
                replace: dict[str, onnx.AttributeProto | None] | None = None) -> onnx.NodeProto:
    """A FlexiQ plugin node; `replace` swaps (or with None drops) attributes to corrupt it."""
    attrs = node_attributes(spec)
    for key, value in (replace or {}).items():
        if value is None:
            attrs.pop(key, None)
        else:
            attrs[key] = value
    node = helper.make_node(spec.op_type, [x, RUNTIME_INPUT], [y], name=name, domain=PLUGIN_DOMAIN)
    node.attribute.extend([helper.make_attribute("plugin_version", PLUGIN_VERSION),
                           helper.make_attribute("plugin_namespace", PLUGIN_NAMESPACE), *attrs.values()])
    return node


def conv_gemm_model(fp16: bool = False, conv_replace: dict | None = None, hw: int = 8) -> onnx.ModelProto:
    """x [B,40,hw,hw] -> FlexiQConv 3x3 (16 out, layer 0) -> GlobalAveragePool -> Flatten -> FlexiQGemm (10 out, layer 1)."""
    conv = random_layer(LayerSpec(CONV_OP, 0, 40, 16, kernel_shape=(3, 3), pads=(1, 1, 1, 1)), seed=1)
    gemm = random_layer(LayerSpec(GEMM_OP, 1, 16, 10, activation=0), seed=2)
    dtype = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    nodes = [
        plugin_node(conv, "x", "c0", "flexiq_conv_0", conv_replace),
        helper.make_node("GlobalAveragePool", ["c0"], ["p0"], name="pool"),
        helper.make_node("Flatten", ["p0"], ["f0"], name="flatten", axis=1),
        plugin_node(gemm, "f0", "y", "flexiq_gemm_1"),
    ]
    graph = helper.make_graph(
        nodes, "flexiq_test",
        [helper.make_tensor_value_info("x", dtype, ["batch", 40, hw, hw]),
         helper.make_tensor_value_info(RUNTIME_INPUT, TensorProto.INT32, [2])],
        [helper.make_tensor_value_info("y", dtype, ["batch", 10])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(PLUGIN_DOMAIN, 1)],
                              producer_name="flexiq_trt.tests")
    model.ir_version = 8
    return model


def gemm_model(rank: int = 3, replace: dict | None = None, in_channels: int = 72, out_channels: int = 24,
               spec: LayerSpec | None = None) -> onnx.ModelProto:
    """x [B, T, C] (rank 3) or [B, C] -> FlexiQGemm (layer 0) -> y; one plugin node."""
    spec = spec or random_layer(LayerSpec(GEMM_OP, 0, in_channels, out_channels), seed=3)
    lead = ["batch", 5][: rank - 1]
    graph = helper.make_graph(
        [plugin_node(spec, "x", "y", "flexiq_gemm_0", replace)], "flexiq_gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [*lead, spec.in_channels]),
         helper.make_tensor_value_info(RUNTIME_INPUT, TensorProto.INT32, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [*lead, spec.out_channels])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(PLUGIN_DOMAIN, 1)])
    model.ir_version = 8
    return model


def int8_edge_model(consumer_signed: int = 1, consumer_input_int8: int = 1) -> onnx.ModelProto:
    """x [B, 5, 72] -> FlexiQGemm P (64 out, layer 0, output_int8) -> INT8 codes -> FlexiQGemm C (24 out,
    layer 1, input_int8) -> y: an INT8 edge as convert writes it (docs/design.md §2.3), the edge typed INT8.

    `consumer_input_int8` = 0 leaves C expecting a float input: a mismatched edge the build must reject.
    """
    cons = random_layer(LayerSpec(GEMM_OP, 1, 64, 24, act_signed=consumer_signed, act_scale=0.04,
                                  input_int8=consumer_input_int8, activation=0), seed=5)
    prod = random_layer(LayerSpec(GEMM_OP, 0, 72, 64, activation=1 if consumer_signed == 0 else 0, output_int8=1,
                                  output_scale=cons.act_scale, output_signed=consumer_signed), seed=4)
    graph = helper.make_graph(
        [plugin_node(prod, "x", "codes", "flexiq_gemm_0"), plugin_node(cons, "codes", "y", "flexiq_gemm_1")],
        "flexiq_int8_edge",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 5, 72]),
         helper.make_tensor_value_info(RUNTIME_INPUT, TensorProto.INT32, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 5, 24])],
        value_info=[helper.make_tensor_value_info("codes", TensorProto.INT8, ["batch", 5, 64])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(PLUGIN_DOMAIN, 1)])
    model.ir_version = 8
    return model


def save(model: onnx.ModelProto, path) -> str:
    """Check and write the model; returns the path as str."""
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)
