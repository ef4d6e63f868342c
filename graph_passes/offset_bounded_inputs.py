"""Shift an eligible layer's bounded signed input to non-negative values, folding the shift into its bias.

Why (docs/design.md §2.3, "Offset inputs"): HardSwish, SiLU and GELU outputs are signed but bounded
below by a small constant (−0.375, −0.278, −0.170), so their signed 8-bit and 4-bit codes spend half
of their range on values that never occur. When a layer reads such a tensor `x ≥ L` (L < 0) and
folding is exact, the pass feeds it `Relu(x − L)` instead and adds `L · Σ_k W[n, k]` to its bias:
`W x + b = W (x − L) + (b + L · ΣW)`. The shifted input is provably non-negative, so the layer gets
unsigned codes (twice the resolution at 8 and at 4 bits) with no change to the numeric contract.

Exact folding needs every input element to go through the weights once: Gemm, MatMul, and Conv
with no padding (a padded border would read 0 where the shifted tensor means L). A tensor that
another eligible layer writes and only eligible layers read is left alone, so INT8 edges between
FlexiQ layers (docs/design.md §2.8) stay intact. The Relu only guards against float rounding just below L.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from flexiq_trt.plugin_spec import Activation

from .fuse_activation import clip_bounds, find_activation, find_matmul_bias
from .graph_index import GraphIndex, attr
from .rewrite import Replacement

# The smallest value of each signed activation with a finite lower bound, rounded outward.
# HardSwish: x (x + 3) / 6 at x = −1.5; SiLU: x σ(x) at x ≈ −1.2785; GELU: −0.16997 (erf form) and
# −0.17004 (tanh approximation), one bound for both.
ACTIVATION_LOWER_BOUNDS: dict[Activation, float] = {
    Activation.HARD_SWISH: -0.375,
    Activation.SILU: -0.27846455,
    Activation.GELU: -0.17004076,
    Activation.RELU: 0.0,
    Activation.SIGMOID: 0.0,
    Activation.HARD_SIGMOID: 0.0,
}
# Single-node activations whose output is bounded below whatever reads their input.
SINGLE_NODE_BOUNDS = {"HardSwish": ACTIVATION_LOWER_BOUNDS[Activation.HARD_SWISH],
                      "Gelu": ACTIVATION_LOWER_BOUNDS[Activation.GELU]}
# A clip [lo, hi] with lo < 0 counts as one-sided only when -lo <= hi * ONE_SIDED_CLIP: a symmetric range
# (Tanh, Softsign, Clip(-1, 1)) gains no 8-bit resolution from a shift, and it would coarsen the
# dynamic 4-bit step of rows whose values sit near zero (the shift moves them to the middle of the range).
ONE_SIDED_CLIP = 0.25
PATTERN_DEPTH = 4  # nodes between an activation pattern's input and its output (erf GELU: 5 nodes)
UNIT_GATES = frozenset({"Sigmoid", "HardSigmoid"})  # outputs in [0, 1]
BOUND_PRESERVING_OPS = frozenset({"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Reshape",
                                  "Flatten", "Transpose", "Identity", "Squeeze", "Unsqueeze", "Slice", "Split",
                                  "Dropout"})


@dataclass(frozen=True)
class OffsetLayer:
    """What the pass did to one layer: its name, the tensor it now reads and the bound it removed."""

    layer: str
    source: str
    shifted: str
    lower_bound: float


@dataclass(frozen=True, eq=False)
class OffsetCandidate:
    """An eligible layer as the pass sees it (intake/stage.py: offset_candidate)."""

    name: str  # its (first) node
    source: str  # its input tensor
    nonnegative: bool  # already proven >= 0: nothing to shift
    padded: bool  # a conv with zero padding: the fold would not be exact
    column_sums: np.ndarray  # float64 [N]: Σ_k W[n, k] of the canonical weight


class LowerBounds:
    """A provable constant lower bound of a one-sided tensor from the graph's structure (memoised).

    None means no bound worth a shift: unbounded, or symmetric (Tanh, a two-sided clip; ONE_SIDED_CLIP).
    """

    def __init__(self, idx: GraphIndex) -> None:
        self.idx = idx
        self.memo: dict[str, float | None] = {}

    def __call__(self, tensor: str) -> float | None:
        """The tensor's lower bound, or None when the graph does not prove one."""
        if tensor not in self.memo:
            self.memo[tensor] = None  # cycle guard
            self.memo[tensor] = self._decide(tensor)
        return self.memo[tensor]

    def _decide(self, tensor: str) -> float | None:
        const = self.idx.value(tensor)
        if const is not None:
            return float(np.min(const)) if const.size else None
        node = self.idx.producer_of(tensor)
        if node is None or node.domain not in ("", "ai.onnx") or not node.input:
            return None
        for source in self._pattern_sources(node):  # an activation pattern that ends in this tensor
            fused = find_activation(self.idx, source)
            if fused is not None and fused.output == tensor:
                return _activation_bound(fused.activation, fused.alpha, fused.beta)
        op = node.op_type
        if op in SINGLE_NODE_BOUNDS and (op != "Gelu" or len(node.input) == 1):
            return SINGLE_NODE_BOUNDS[op]
        if op == "Clip":
            bounds = clip_bounds(self.idx, node)
            low = self(node.input[0])
            if bounds is None:
                return low
            clipped = _clip_bound(*bounds)
            return clipped if low is None else (low if clipped is None else max(clipped, low))
        if op in ("Relu", "Sigmoid", "HardSigmoid", "Softmax", "Abs", "Exp", "Softplus"):
            return 0.0
        if op in BOUND_PRESERVING_OPS:
            return self(node.input[0])
        if op in ("Concat", "Max", "Min"):
            lows = [self(x) for x in node.input if x]
            if op == "Max":
                known = [v for v in lows if v is not None]
                return max(known) if known else None
            return None if any(v is None for v in lows) else min(lows)
        if op == "Mul" and len(node.input) == 2:
            return self._product(node)
        return None

    def _pattern_sources(self, node: onnx.NodeProto, depth: int = PATTERN_DEPTH) -> list[str]:
        """Tensors up to `depth` nodes above `node` (a GELU written in five nodes starts four above its end)."""
        found: dict[str, None] = {}
        frontier = [node]
        for _ in range(depth):
            nxt = []
            for n in frontier:
                for t in n.input:
                    if t and t not in found and self.idx.value(t) is None:
                        found[t] = None
                        p = self.idx.producer_of(t)
                        if p is not None:
                            nxt.append(p)
            frontier = nxt
        return list(found)

    def _product(self, node: onnx.NodeProto) -> float | None:
        """Bound of a product a · g where g is a [0, 1] gate (Sigmoid, HardSigmoid) or a positive scalar.

        x · Sigmoid(x) (SiLU) and x · HardSigmoid(x; 1/6, 1/2) (HardSwish) are recognised even when x
        has other readers, which the fusion patterns of `find_activation` do not allow.
        """
        a, b = node.input
        for x, y in ((a, b), (b, a)):
            other = self.idx.producer_of(y)
            if other is not None and other.input and other.input[0] == x:
                if other.op_type == "Sigmoid":
                    return ACTIVATION_LOWER_BOUNDS[Activation.SILU]
                if other.op_type == "HardSigmoid" and np.isclose(float(attr(other, "alpha", 0.2)), 1 / 6) \
                        and np.isclose(float(attr(other, "beta", 0.5)), 0.5):
                    return ACTIVATION_LOWER_BOUNDS[Activation.HARD_SWISH]
            low = self(x)
            if low is None:
                continue
            if other is not None and other.op_type in UNIT_GATES:
                return min(low, 0.0)
            c = self.idx.value(y)
            if c is not None and c.size == 1 and float(c.reshape(())) > 0:
                return low * float(c.reshape(()))
        return None


def _clip_bound(lo: float, hi: float) -> float | None:
    """A clip's lower bound when its range is one-sided (see ONE_SIDED_CLIP), else None."""
    return lo if lo >= 0 or -lo <= hi * ONE_SIDED_CLIP else None


def _activation_bound(act: Activation, alpha: float, beta: float) -> float | None:
    if act == Activation.CLIP:
        return _clip_bound(alpha, beta)
    return ACTIVATION_LOWER_BOUNDS.get(act)


def find_input_offsets(model: onnx.ModelProto, layers: Iterable[OffsetCandidate],
                       keep_signed: Iterable[str] = ()) -> tuple[list[Replacement], list[OffsetLayer]]:
    """Replacements that shift each foldable layer's bounded signed input (see the module docstring).

    `layers` describe the eligible layers (their node is a dense Conv, a Gemm without transA, or a
    MatMul); `keep_signed` are tensors never shifted (those that may become INT8 edges between FlexiQ layers).
    """
    idx = GraphIndex(model)
    bounds = LowerBounds(idx)
    position = {n.name: i for i, n in enumerate(idx.nodes)}
    skip = set(keep_signed)
    reps: list[Replacement] = []
    done: list[OffsetLayer] = []
    shifted_of: dict[str, str] = {}
    for c in layers:
        if c.nonnegative or c.padded or c.source in skip or c.source in idx.graph_inputs:
            continue
        low = bounds(c.source)
        if low is None or not low < 0 or not np.isfinite(low):
            continue
        rep = _fold(idx, idx.nodes[position[c.name]], position, c.source, low, c.column_sums, shifted_of)
        if rep is None:
            continue
        reps.append(rep)
        done.append(OffsetLayer(c.name, c.source, shifted_of[c.source], low))
    return reps, done


def _shift_nodes(source: str, low: float) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    offset, added, shifted = f"{source}__offset", f"{source}__plus_offset", f"{source}__shifted"
    nodes = [helper.make_node("Add", [source, offset], [added], name=f"{source}__offset_add"),
             helper.make_node("Relu", [added], [shifted], name=f"{source}__offset_relu")]
    return nodes, [numpy_helper.from_array(np.array(-low, dtype=np.float32), offset)], shifted


def _fold(idx: GraphIndex, node: onnx.NodeProto, position: Mapping[str, int], source: str, low: float,
          sums: np.ndarray, shifted_of: dict[str, str]) -> Replacement | None:
    """The layer's node (and bias Add) rewritten to read the shifted tensor with the folded bias."""
    new_nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    if source not in shifted_of:
        shift, shift_inits, shifted_of[source] = _shift_nodes(source, low)
        new_nodes += shift
        inits += shift_inits
    shifted = shifted_of[source]
    extra = (low * sums).astype(np.float64)  # W x = W (x − L) + L ΣW
    out = node.output[0]
    layer = onnx.NodeProto()
    layer.CopyFrom(node)
    layer.input[0] = shifted
    old = [position[node.name]]
    bias_name = f"{out}__offset_bias"
    if node.op_type == "Conv":
        b = idx.value(node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros(len(sums))
        if b is None:
            return None
        inits.append(numpy_helper.from_array((b.astype(np.float64) + extra).astype(np.float32), bias_name))
        del layer.input[2:]
        layer.input.append(bias_name)
    elif node.op_type == "Gemm":
        beta = float(attr(node, "beta", 1.0))
        c = idx.value(node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros(1)
        if c is None or (c.size not in (1, len(sums))):
            return None
        full = beta * np.broadcast_to(c.reshape(-1).astype(np.float64), sums.shape) + extra
        inits.append(numpy_helper.from_array(full.astype(np.float32).reshape(1, -1), bias_name))
        del layer.input[2:]
        layer.input.append(bias_name)
        for a in layer.attribute:
            if a.name == "beta":
                a.f = 1.0
    else:  # MatMul: fold into its bias Add when it has one, else add one
        rank = len(idx.shape(node.input[0]) or (0, 0))
        add = find_matmul_bias(idx, out, len(sums), max(rank, 2))
        if add is not None:
            add_node = idx.nodes[position[add.nodes[0]]]
            new_add = helper.make_node("Add", [out, bias_name], list(add_node.output), name=add_node.name)
            inits.append(numpy_helper.from_array((add.bias.astype(np.float64) + extra).astype(np.float32), bias_name))
            old.append(position[add_node.name])
            new_nodes.append(new_add)
        else:
            pre = f"{out}__before_offset_bias"
            layer.output[0] = pre
            inits.append(numpy_helper.from_array(extra.astype(np.float32), bias_name))
            new_nodes.append(helper.make_node("Add", [pre, bias_name], [out], name=f"{node.name}__offset_bias_add"))
    new_nodes.insert(0, layer)
    return Replacement(old_nodes=old, new_nodes=new_nodes, new_initializers=inits,
                       description=f"offset input {source!r} of {node.name!r} by {-low:g}")
