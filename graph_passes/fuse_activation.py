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


def find_activation(idx: GraphIndex, tensor: str) -> FusedOp | None:
    """The activation applied to `tensor` when it is the tensor's only use, else None."""
    silu = _silu(idx, tensor)
    if silu is not None:
        return silu
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
