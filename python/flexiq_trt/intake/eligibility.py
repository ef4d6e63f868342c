"""Which Conv/Gemm/MatMul nodes become FlexiQ layers (docs/design.md §2), with canonical float weights.

Every Conv/ConvTranspose/Gemm/MatMul ends up either as an `EligibleLayer` or as a `SkippedLayer`
with the reason, so the plan and the report can explain each decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx

from flexiq_trt.errors import ConfigError
from flexiq_trt.graph_passes.fuse_activation import (
    FusedOp,
    clip_bounds,
    find_activation,
    find_matmul_bias,
)
from flexiq_trt.graph_passes.graph_index import GraphIndex, attr
from flexiq_trt.intake.prepare import recorded_input_shapes, with_input_shapes
from flexiq_trt.intake.shapes import ResolvedShapes
from flexiq_trt.plugin_spec import (
    AUTO_GROUP_SIZE,
    CONV_OP,
    GEMM_OP,
    SUPPORTED_GROUP_SIZES,
    Activation,
    layer_group_size,
)
from flexiq_trt.quantization.layer import ConvGeometry

CANDIDATE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
PASS_THROUGH_OPS = frozenset({"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Reshape",
                              "Flatten", "Transpose", "Identity", "Squeeze", "Unsqueeze", "Slice", "Split"})
NONNEG_SOURCES = frozenset({"Relu", "Sigmoid", "HardSigmoid", "Softmax", "Abs", "Exp", "Softplus"})


@dataclass
class EligibleLayer:
    """A Conv/Gemm/MatMul (plus fused bias/activation) that a FlexiQ plugin node will replace."""

    name: str
    op_type: str  # "Conv", "Gemm" or "MatMul" (the original op)
    input_name: str
    output_name: str  # the final tensor after fused bias/activation
    weight: np.ndarray  # float32 [N, C_in, R, S] (conv) or [N, K] (gemm)
    bias: np.ndarray  # float32 [N]
    geometry: ConvGeometry | None
    activation: Activation
    activation_alpha: float
    activation_beta: float
    replaced_nodes: list[str]
    input_nonnegative: bool
    macs: int
    input_shape: tuple[int, ...]  # at the calibration shape, batch 1
    extra: dict = field(default_factory=dict)

    @property
    def plugin_op(self) -> str:
        """plugin_spec.CONV_OP or GEMM_OP."""
        return CONV_OP if self.op_type == "Conv" else GEMM_OP

    @property
    def is_conv(self) -> bool:
        """True for convolutions."""
        return self.op_type == "Conv"

    @property
    def in_channels(self) -> int:
        """C_in (the reduction channel count)."""
        return int(self.weight.shape[1])

    @property
    def out_channels(self) -> int:
        """N."""
        return int(self.weight.shape[0])


@dataclass(frozen=True)
class SkippedLayer:
    """A candidate node that stays as it is, and why.

    `fixable_by_data` is True only when the reason is an unknown shape that calibration data would
    resolve (`find_layers` called without data); every other reason is a property of the model.
    """

    name: str
    op_type: str
    reason: str
    fixable_by_data: bool = False


class _Skip(Exception):
    """Internal: a candidate is not eligible (message = reason)."""

    def __init__(self, reason: str, fixable_by_data: bool = False) -> None:
        super().__init__(reason)
        self.fixable_by_data = fixable_by_data


class _Shapes:
    """Layer input shapes: resolved from data when available, else from the (prepared) graph."""

    def __init__(self, idx: GraphIndex, declared: GraphIndex, resolved: ResolvedShapes | None) -> None:
        self.idx, self.declared, self.resolved = idx, declared, resolved

    def input(self, tensor: str) -> tuple[tuple[int, ...], int]:
        """(shape with the batch axis as 1, per-sample row count of the flattened leading axes)."""
        if self.resolved is None:
            shape = _static_shape(self.idx, tensor, "input")
            return shape, int(np.prod(shape[1:-1])) if len(shape) > 2 else 1
        shape = self.resolved.get(tensor)
        if shape is None:
            why = self.resolved.runtime_error or "no shape source knew it"
            raise _Skip(f"input shape of {tensor!r} is unknown at the calibration shapes ({why})")
        batch = self.resolved.batch
        leading = int(np.prod(shape[:-1])) if shape else 1
        rows = leading // batch if batch > 1 and leading % batch == 0 else leading
        if shape and shape[0] == batch:
            shape = (1, *shape[1:])
        return shape, rows

    def spatial_is_static(self, tensor: str) -> bool:
        """Whether the model itself (not the calibration data) fixes the tensor's H and W."""
        shape = self.declared.shape(tensor)
        return shape is not None and len(shape) == 4 and all(isinstance(d, int) and d > 0 for d in shape[2:])


def find_layers(model: onnx.ModelProto, group_size: int,
                input_shapes: Mapping[str, Sequence[int]] | None = None,
                resolved: ResolvedShapes | None = None,
                ) -> tuple[list[EligibleLayer], list[SkippedLayer]]:
    """Classify every candidate node of a prepared model (see `intake.prepare_model`).

    `resolved` (from `intake.shapes.resolve_shapes`, what `convert` passes) gives every layer's
    input shape at the calibration data's shapes. Without it, `input_shapes` (graph input ->
    calibration shape; default: the shapes `prepare_model` recorded) fixes the graph inputs for
    static shape inference; a dynamic batch dim counts as 1 and any other unresolved dim makes the
    layer ineligible with a reason that says calibration data would resolve it. The model itself
    is not changed. `group_size` is the QuantConfig setting: 32, 64, or AUTO_GROUP_SIZE (G per
    layer, `plugin_spec.auto_group_size`; then only C_in below the smallest G, 32, is too narrow).
    """
    if group_size not in (AUTO_GROUP_SIZE, *SUPPORTED_GROUP_SIZES):
        raise ConfigError(f"group size {group_size} not supported; expected {AUTO_GROUP_SIZE} (auto, per layer) "
                          f"or one of {SUPPORTED_GROUP_SIZES}")
    declared = GraphIndex(model)
    if resolved is None and input_shapes is None:
        input_shapes = recorded_input_shapes(model)
    idx = GraphIndex(with_input_shapes(model, input_shapes)) if resolved is None and input_shapes else declared
    shapes = _Shapes(idx, declared, resolved)
    eligible: list[EligibleLayer] = []
    skipped: list[SkippedLayer] = []
    for node in idx.nodes:
        if node.op_type not in CANDIDATE_OPS or node.domain not in ("", "ai.onnx"):
            continue
        try:
            layer = _match(shapes, node, group_size)
        except _Skip as why:
            skipped.append(SkippedLayer(node.name, node.op_type, str(why), why.fixable_by_data))
            continue
        eligible.append(layer)
    nonneg = _NonNegative(idx)
    for layer in eligible:
        layer.input_nonnegative = nonneg(layer.input_name)
    return eligible, skipped


def _static_shape(idx: GraphIndex, tensor: str, what: str) -> tuple[int, ...]:
    shape = idx.shape(tensor)
    if shape is None:
        raise _Skip(f"{what} shape of {tensor!r} is unknown without data (convert with calibration data "
                    "resolves it)", fixable_by_data=True)
    dims = list(shape)
    if dims and not isinstance(dims[0], int):
        dims[0] = 1  # dynamic batch: MACs are per sample
    if not all(isinstance(d, int) and d > 0 for d in dims):
        raise _Skip(f"{what} shape {list(shape)} of {tensor!r} is dynamic without data (convert with "
                    "calibration data resolves it)", fixable_by_data=True)
    return (1,) + tuple(dims[1:]) if dims else ()


def _match(shapes: _Shapes, node: onnx.NodeProto, g: int) -> EligibleLayer:
    if node.op_type == "ConvTranspose":
        raise _Skip("ConvTranspose: the FlexiQ plugins compute forward convolutions only")
    if node.op_type == "Conv":
        return _match_conv(shapes, node, g)
    return _match_gemm(shapes, node, g)


def _resolve_pads(node: onnx.NodeProto, hw: tuple[int, int], kernel: tuple[int, int],
                  strides: tuple[int, int], dil: tuple[int, int]) -> tuple[int, int, int, int]:
    auto = attr(node, "auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = list(attr(node, "pads", [0, 0, 0, 0]))
        return pads[0], pads[1], pads[2], pads[3]
    if auto == "VALID":
        return 0, 0, 0, 0
    begin, end = [], []
    for size, k, s, d in zip(hw, kernel, strides, dil, strict=True):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return begin[0], begin[1], end[0], end[1]


def _check_width(in_channels: int, setting: int) -> None:
    """Skip a layer narrower than its own channel group (the layer's G under the setting)."""
    g = layer_group_size(setting, in_channels)
    if in_channels < g:
        raise _Skip(f"C_in {in_channels} is below one channel group ({g}): no channel group to move to 4-bit")


def _match_conv(shapes: _Shapes, node: onnx.NodeProto, g: int) -> EligibleLayer:
    idx = shapes.idx
    w = idx.value(node.input[1])
    if w is None:
        raise _Skip("weight is not constant: an activation x activation product has no fixed weight to quantize")
    if w.ndim != 4:
        raise _Skip(f"{w.ndim - 2}-D convolution: the FlexiQ plugins compute 2-D convolutions only")
    if int(attr(node, "group", 1)) != 1:
        kind = "depthwise" if int(attr(node, "group", 1)) == w.shape[0] and w.shape[1] == 1 else "grouped"
        raise _Skip(f"{kind} convolution (group={attr(node, 'group')}): the FlexiQ plugins compute dense (group=1) "
                    "convolutions only")
    n, c, r, s = w.shape
    _check_width(c, g)
    bias = np.zeros(n, dtype=np.float32)
    if len(node.input) > 2 and node.input[2]:
        b = idx.value(node.input[2])
        if b is None:
            raise _Skip("bias is not constant")
        bias = b.astype(np.float32).reshape(-1)
    shape, _ = shapes.input(node.input[0])
    if len(shape) != 4:
        raise _Skip(f"input rank {len(shape)} is not 4")
    if shape[1] != c:
        raise _Skip(f"input has {shape[1]} channels, weight expects {c}")
    kernel = (r, s)
    strides = tuple(attr(node, "strides", [1, 1]))
    dil = tuple(attr(node, "dilations", [1, 1]))
    auto = attr(node, "auto_pad", "NOTSET")
    if auto.startswith("SAME") and max(strides) > 1 and not shapes.spatial_is_static(node.input[0]):
        raise _Skip(f"auto_pad={auto} with stride {list(strides)} on an input whose size the model leaves "
                    "dynamic: the padding depends on the size, the plugin takes fixed pads (export with "
                    "explicit pads or a fixed input size)")
    pads = _resolve_pads(node, (shape[2], shape[3]), kernel, strides, dil)
    geo = ConvGeometry(kernel_shape=kernel, strides=strides, pads=pads, dilations=dil)
    p, q = geo.output_hw(shape[2], shape[3])
    if p <= 0 or q <= 0:
        raise _Skip(f"empty output {p}x{q}")
    fused = [f for f in [find_activation(idx, node.output[0])] if f is not None]
    return _layer(node, "Conv", w.astype(np.float32), bias, geo, fused, shape, macs=n * c * r * s * p * q)


def _match_gemm(shapes: _Shapes, node: onnx.NodeProto, g: int) -> EligibleLayer:
    idx = shapes.idx
    b = idx.value(node.input[1])
    if b is None:
        raise _Skip("weight (input B) is not constant: an activation x activation product (e.g. attention scores) "
                    "has no fixed weight to quantize")
    if b.ndim != 2:
        raise _Skip(f"weight rank {b.ndim} is not 2 (batched MatMul weights are not supported)")
    is_gemm = node.op_type == "Gemm"
    if is_gemm:
        if int(attr(node, "transA", 0)):
            raise _Skip("Gemm with transA=1 is not supported")
        wt = b.T if int(attr(node, "transB", 0)) else b  # [K, N]
        weight = (np.float32(attr(node, "alpha", 1.0)) * wt.T.astype(np.float32)).astype(np.float32)
    else:
        weight = b.T.astype(np.float32)
    n, k = weight.shape
    _check_width(k, g)
    bias = np.zeros(n, dtype=np.float32)
    if is_gemm and len(node.input) > 2 and node.input[2]:
        c = idx.value(node.input[2])
        if c is None:
            raise _Skip("Gemm C is not constant")
        if c.size == 1:
            c = np.full(n, float(c.reshape(())))
        elif c.size != n or (c.ndim == 2 and c.shape[0] != 1):
            raise _Skip(f"Gemm C of shape {list(c.shape)} is not a per-output-channel bias")
        bias = (np.float32(attr(node, "beta", 1.0)) * c.reshape(-1).astype(np.float32)).astype(np.float32)
    shape, rows = shapes.input(node.input[0])
    if len(shape) < 2:
        raise _Skip(f"input rank {len(shape)} below 2")
    if is_gemm and len(shape) != 2:
        raise _Skip("Gemm input is not 2-D")
    if shape[-1] != k:
        raise _Skip(f"input last dim {shape[-1]} does not match weight K {k}")
    fused: list[FusedOp] = []
    tail = node.output[0]
    if not is_gemm:
        add = find_matmul_bias(idx, tail, n, len(shape))
        if add is not None:
            fused.append(add)
            bias = add.bias
            tail = add.output
    act = find_activation(idx, tail)
    if act is not None:
        fused.append(act)
    return _layer(node, node.op_type, weight, bias, None, fused, shape, macs=rows * n * k)


def _layer(node: onnx.NodeProto, op: str, weight: np.ndarray, bias: np.ndarray, geo: ConvGeometry | None,
           fused: list[FusedOp], shape: tuple[int, ...], macs: int) -> EligibleLayer:
    act = next((f for f in fused if f.activation != Activation.NONE), None)
    return EligibleLayer(
        name=node.name, op_type=op, input_name=node.input[0],
        output_name=fused[-1].output if fused else node.output[0],
        weight=weight, bias=bias.astype(np.float32), geometry=geo,
        activation=act.activation if act else Activation.NONE,
        activation_alpha=act.alpha if act else 0.0, activation_beta=act.beta if act else 0.0,
        replaced_nodes=[node.name] + [n for f in fused for n in f.nodes],
        input_nonnegative=False, macs=int(macs), input_shape=shape)


class _NonNegative:
    """Whether a tensor is provably >= 0 from the graph structure (memoised)."""

    def __init__(self, idx: GraphIndex) -> None:
        self.idx = idx
        self.memo: dict[str, bool] = {}

    def __call__(self, tensor: str) -> bool:
        if tensor not in self.memo:
            self.memo[tensor] = False  # cycle guard
            self.memo[tensor] = self._decide(tensor)
        return self.memo[tensor]

    def _decide(self, tensor: str) -> bool:
        const = self.idx.value(tensor)
        if const is not None:
            return bool(np.all(const >= 0))
        node = self.idx.producer_of(tensor)
        if node is None or node.domain not in ("", "ai.onnx"):
            return False
        op = node.op_type
        if op in NONNEG_SOURCES:
            return True
        if op == "Clip":
            bounds = clip_bounds(self.idx, node)
            return bounds is not None and bounds[0] >= 0
        if op == "Mul" and len(node.input) == 2 and node.input[0] == node.input[1]:
            return True
        if op in PASS_THROUGH_OPS:
            return self(node.input[0])
        if op in ("Concat", "Max", "Add", "Mul"):
            return all(self(x) for x in node.input if x)
        return False
