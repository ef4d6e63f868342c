"""Find the activation (and MatMul bias) that a FlexiQ layer can fuse into its epilogue.

Not a rewrite: eligibility asks "what follows this tensor" and records the nodes the plugin will
replace. A node is fused only when the tensor feeds exactly that pattern and is not a graph output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from flexiq_trt.plugin_spec import Activation

from .graph_index import GraphIndex, attr

FLOAT_MAX = float(np.finfo(np.float32).max)
NONNEGATIVE_ACTIVATIONS = (Activation.RELU, Activation.SIGMOID, Activation.HARD_SIGMOID)


@dataclass(frozen=True)
class FusedOp:
    """A fused epilogue piece: the nodes it covers and the tensor it finally writes."""

    nodes: tuple[str, ...]
    output: str
    activation: Activation = Activation.NONE
    alpha: float = 0.0
    beta: float = 0.0
    bias: np.ndarray | None = None  # float32 [N], for MatMul + Add


def is_nonnegative_activation(act: Activation, alpha: float) -> bool:
    """True when the activation's output can never be negative."""
    return act in NONNEGATIVE_ACTIVATIONS or (act == Activation.CLIP and alpha >= 0)


def clip_bounds(idx: GraphIndex, node: onnx.NodeProto) -> tuple[float, float] | None:
    """Constant (min, max) of a Clip in attribute or input form; None when a bound is not constant."""
    if len(node.input) == 1 and (attr(node, "min") is not None or attr(node, "max") is not None):
        return float(attr(node, "min", -FLOAT_MAX)), float(attr(node, "max", FLOAT_MAX))
    bounds = []
    for pos, default in ((1, -FLOAT_MAX), (2, FLOAT_MAX)):
        if len(node.input) > pos and node.input[pos]:
            v = idx.value(node.input[pos])
            if v is None or v.size != 1:
                return None
            bounds.append(float(v.reshape(())))
        else:
            bounds.append(default)
    return bounds[0], bounds[1]


def _silu(idx: GraphIndex, tensor: str) -> FusedOp | None:
    """X * Sigmoid(x): `tensor` read only by one Sigmoid and one Mul that multiplies it by that Sigmoid."""
    users = idx.consumers_of(tensor)
    if tensor in idx.graph_outputs or len(users) != 2:
        return None
    sig = next((u for u in users if u.op_type == "Sigmoid"), None)
    mul = next((u for u in users if u.op_type == "Mul"), None)
    if sig is None or mul is None or idx.single_consumer(sig.output[0]) is not mul:
        return None
    if sorted(mul.input) != sorted([tensor, sig.output[0]]):
        return None
    return FusedOp((sig.name, mul.name), mul.output[0], Activation.SILU)


def _constant_near(idx: GraphIndex, node: onnx.NodeProto, tensor: str, target: float, rel: float = 1e-6) -> bool:
    """`node` is a two-input op whose other input is a scalar constant within `rel` of `target`."""
    if len(node.input) != 2 or tensor not in node.input:
        return False
    other = node.input[1] if node.input[0] == tensor else node.input[0]
    value = idx.value(other) if other != tensor else None
    return value is not None and value.size == 1 and abs(float(value.reshape(())) - target) <= rel * abs(target)


def _only_user(idx: GraphIndex, tensor: str, op_type: str) -> onnx.NodeProto | None:
    node = idx.single_consumer(tensor)
    return node if node is not None and node.op_type == op_type and node.domain in ("", "ai.onnx") else None


def _erf_gelu(idx: GraphIndex, tensor: str) -> FusedOp | None:
    """GELU as exporters before opset 20 write it: x * 0.5 * (1 + Erf(x / sqrt(2))), either Mul order.

    `tensor` (x) is read by exactly the scaling node (Div by sqrt 2 or Mul by 1/sqrt 2) and one Mul.
    The fused epilogue computes the same function in float32 (erf form); results differ by float
    rounding only, as every fused transcendental activation does (docs/design.md §2).
    """
    users = idx.consumers_of(tensor)
    if tensor in idx.graph_outputs or len(users) != 2:
        return None
    scale = next((u for u in users if (u.op_type == "Div" and u.input[0] == tensor
                                       and _constant_near(idx, u, tensor, float(np.sqrt(2.0))))
                  or (u.op_type == "Mul" and _constant_near(idx, u, tensor, float(np.sqrt(0.5))))), None)
    mul_x = next((u for u in users if u is not scale and u.op_type == "Mul"), None)
    if scale is None or mul_x is None:
        return None
    erf = _only_user(idx, scale.output[0], "Erf")
    one_plus = _only_user(idx, erf.output[0], "Add") if erf is not None else None
    if one_plus is None or not _constant_near(idx, one_plus, erf.output[0], 1.0, 0.0):
        return None
    nodes = [scale.name, erf.name, one_plus.name, mul_x.name]
    if one_plus.output[0] in mul_x.input:  # (x * (1 + erf)) * 0.5
        half = _only_user(idx, mul_x.output[0], "Mul")
        if half is None or not _constant_near(idx, half, mul_x.output[0], 0.5, 0.0):
            return None
        return FusedOp((*nodes, half.name), half.output[0], Activation.GELU)
    if not _constant_near(idx, mul_x, tensor, 0.5, 0.0):  # else (x * 0.5) * (1 + erf)
        return None
    product = _only_user(idx, mul_x.output[0], "Mul")
    if product is None or sorted(product.input) != sorted([mul_x.output[0], one_plus.output[0]]):
        return None
    if idx.single_consumer(one_plus.output[0]) is not product:
        return None
    return FusedOp((*nodes, product.name), product.output[0], Activation.GELU)


def find_activation(idx: GraphIndex, tensor: str) -> FusedOp | None:
    """The activation applied to `tensor` when it is the tensor's only use, else None."""
    for pattern in (_silu, _erf_gelu):
        fused = pattern(idx, tensor)
        if fused is not None:
            return fused
    node = idx.single_consumer(tensor)
    if node is None or node.domain not in ("", "ai.onnx") or node.input[0] != tensor:
        return None
    op = node.op_type
    simple = {"Relu": Activation.RELU, "Sigmoid": Activation.SIGMOID, "Tanh": Activation.TANH,
              "HardSwish": Activation.HARD_SWISH}
    if op in simple:
        return FusedOp((node.name,), node.output[0], simple[op])
    if op == "LeakyRelu":
        return FusedOp((node.name,), node.output[0], Activation.LEAKY_RELU, float(attr(node, "alpha", 0.01)))
    if op == "HardSigmoid":
        return FusedOp((node.name,), node.output[0], Activation.HARD_SIGMOID,
                       float(attr(node, "alpha", 0.2)), float(attr(node, "beta", 0.5)))
    if op == "Gelu" and attr(node, "approximate", "none") == "none":
        return FusedOp((node.name,), node.output[0], Activation.GELU)
    if op == "Clip":
        bounds = clip_bounds(idx, node)
        if bounds is not None:
            return FusedOp((node.name,), node.output[0], Activation.CLIP, bounds[0], bounds[1])
    return None


def find_matmul_bias(idx: GraphIndex, tensor: str, out_channels: int, rank: int) -> FusedOp | None:
    """Add(tensor, const) with a constant broadcasting along the last axis only ([N], [1, N], scalar)."""
    node = idx.single_consumer(tensor)
    if node is None or node.op_type != "Add" or len(node.input) != 2:
        return None
    other = node.input[1] if node.input[0] == tensor else node.input[0]
    value = idx.value(other)
    if value is None or other == tensor or value.ndim > rank:
        return None
    if value.size == 1:
        bias = np.full(out_channels, float(value.reshape(())), dtype=np.float32)
    elif value.shape[-1] == out_channels and value.size == out_channels:
        bias = value.reshape(-1).astype(np.float32)
    else:
        return None
    return FusedOp((node.name,), node.output[0], bias=bias)
