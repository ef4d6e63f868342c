"""A small ONNX -> PyTorch interpreter over the operators of the models flexiq_trt converts.

Why not onnx2torch: it depends on torchvision, and PyPI's torchvision does not import beside the
pinned CPU torch of the finetune extra. The finetune needs only a forward pass with autograd in
which chosen chains of nodes (a FlexiQ layer: its Conv/Gemm/MatMul, fused bias and activation) are
replaced by modules, so an interpreter over the prepared graph is enough. Every node's operator is
checked when the graph is built, so an unsupported one fails early with the node's name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper

from flexiq_trt.errors import UnsupportedModelError


@dataclass(frozen=True)
class Replacement:
    """A chain of nodes (`nodes`, input `input_name` -> output `output_name`) computed by `module` instead."""

    input_name: str
    output_name: str
    nodes: tuple[str, ...]
    module: torch.nn.Module


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _ints(t: torch.Tensor) -> list[int]:
    return [int(v) for v in t.reshape(-1).tolist()]


def _axis_list(node: onnx.NodeProto, args: list, attrs: dict, index: int) -> list[int] | None:
    """Axes from the attribute (older opsets) or the optional input `index` (newer ones)."""
    if "axes" in attrs:
        return list(attrs["axes"])
    if len(args) > index and args[index] is not None:
        return _ints(args[index])
    return None


def _conv(node, args, a):
    x, w = args[0], args[1]
    b = args[2] if len(args) > 2 else None
    if x.dim() != 4:
        raise UnsupportedModelError(f"finetune: node {node.name!r}: only 2-D convolutions are supported")
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
        raise UnsupportedModelError(f"finetune: node {node.name!r}: auto_pad {a['auto_pad']!r} is not supported")
    top, left, bottom, right = a.get("pads", [0, 0, 0, 0])
    if any((top, left, bottom, right)):
        x = F.pad(x, (left, right, top, bottom))
    return F.conv2d(x, w, b, tuple(a.get("strides", [1, 1])), 0, tuple(a.get("dilations", [1, 1])), a.get("group", 1))


def _gemm(node, args, a):
    x, w = args[0], args[1]
    x = x.t() if a.get("transA", 0) else x
    w = w.t() if a.get("transB", 0) else w
    y = a.get("alpha", 1.0) * (x @ w)
    return y + a.get("beta", 1.0) * args[2] if len(args) > 2 and args[2] is not None else y


def _clip(node, args, a):
    lo = args[1] if len(args) > 1 and args[1] is not None else a.get("min")
    hi = args[2] if len(args) > 2 and args[2] is not None else a.get("max")
    lo = None if lo is None else float(lo)
    hi = None if hi is None else float(hi)
    return torch.clamp(args[0], lo, hi)


def _pool(node, args, a, kind: str):
    x = args[0]
    k = tuple(a["kernel_shape"])
    top, left, bottom, right = a.get("pads", [0, 0, 0, 0])
    strides = tuple(a.get("strides", [1, 1]))
    if kind == "max":
        if any((top, left, bottom, right)):
            x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, k, strides, 0, tuple(a.get("dilations", [1, 1])), bool(a.get("ceil_mode", 0)))
    if (top, left) != (bottom, right):
        raise UnsupportedModelError(f"finetune: node {node.name!r}: asymmetric AveragePool pads are not supported")
    return F.avg_pool2d(x, k, strides, (top, left), bool(a.get("ceil_mode", 0)), bool(a.get("count_include_pad", 0)))


def _reshape(node, args, a):
    x, shape = args[0], _ints(args[1])
    shape = [x.shape[i] if s == 0 and not a.get("allowzero", 0) else s for i, s in enumerate(shape)]
    return x.reshape(shape)


def _gather(node, args, a):
    data, idx = args[0], args[1].long()
    axis = a.get("axis", 0) % data.dim()
    idx = torch.where(idx < 0, idx + data.shape[axis], idx)
    out = torch.index_select(data, axis, idx.reshape(-1))
    return out.reshape(data.shape[:axis] + idx.shape + data.shape[axis + 1:])


def _slice(node, args, a):
    x = args[0]
    starts, ends = _ints(args[1]), _ints(args[2])
    axes = _ints(args[3]) if len(args) > 3 and args[3] is not None else list(range(len(starts)))
    steps = _ints(args[4]) if len(args) > 4 and args[4] is not None else [1] * len(starts)
    index = [slice(None)] * x.dim()
    for s, e, ax, st in zip(starts, ends, axes, steps, strict=True):
        if st < 1:
            raise UnsupportedModelError(f"finetune: node {node.name!r}: Slice with step {st} is not supported")
        n = x.shape[ax]
        s, e = (max(min(v + n if v < 0 else v, n), 0) for v in (s, e))
        index[ax] = slice(s, e, st)
    return x[tuple(index)]


def _pad(node, args, a):
    x = args[0]
    pads = _ints(args[1]) if len(args) > 1 and args[1] is not None else list(a.get("pads", []))
    value = float(args[2]) if len(args) > 2 and args[2] is not None and args[2].numel() else float(a.get("value", 0.0))
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    n = x.dim()
    torch_pads: list[int] = []
    for ax in reversed(range(n)):
        torch_pads += [pads[ax], pads[ax + n]]
    if mode == "constant":
        return F.pad(x, torch_pads, value=value)
    torch_mode = {"reflect": "reflect", "edge": "replicate"}.get(mode)
    if torch_mode is None:
        raise UnsupportedModelError(f"finetune: node {node.name!r}: Pad mode {mode!r} is not supported")
    return F.pad(x, torch_pads[: 2 * (n - 2)], mode=torch_mode)


def _reduce_mean(node, args, a):
    axes = _axis_list(node, args, a, 1)
    keep = bool(a.get("keepdims", 1))
    return args[0].mean(dim=axes, keepdim=keep) if axes else args[0].mean().reshape([1] * args[0].dim() if keep else [])


def _unsqueeze(node, args, a):
    x = args[0]
    axes = _axis_list(node, args, a, 1) or []
    for ax in sorted(ax % (x.dim() + len(axes)) for ax in axes):
        x = x.unsqueeze(ax)
    return x


def _squeeze(node, args, a):
    axes = _axis_list(node, args, a, 1)
    x = args[0]
    if axes is None:
        return x.squeeze()
    for ax in sorted((ax % x.dim() for ax in axes), reverse=True):
        x = x.squeeze(ax)
    return x


def _batch_norm(node, args, a):
    x, scale, bias, mean, var = args[:5]
    return F.batch_norm(x, mean, var, scale, bias, False, 0.0, a.get("epsilon", 1e-5))


def _cast(node, args, a):
    dtype = helper.tensor_dtype_to_np_dtype(a["to"])
    return args[0].to(torch.from_numpy(np.zeros(1, dtype=dtype)).dtype)


def _div(node, args, a):
    x, y = args
    if not x.is_floating_point() and not y.is_floating_point():
        return torch.div(x, y, rounding_mode="trunc")
    return x / y


Op = Callable[[onnx.NodeProto, list, dict], torch.Tensor]
OPS: dict[str, Op] = {
    "Conv": _conv, "Gemm": _gemm,
    "MatMul": lambda n, x, a: torch.matmul(x[0], x[1]),
    "Add": lambda n, x, a: x[0] + x[1], "Sub": lambda n, x, a: x[0] - x[1],
    "Mul": lambda n, x, a: x[0] * x[1], "Div": _div,
    "Pow": lambda n, x, a: torch.pow(x[0], x[1]), "Sqrt": lambda n, x, a: torch.sqrt(x[0]),
    "Neg": lambda n, x, a: -x[0], "Abs": lambda n, x, a: torch.abs(x[0]), "Exp": lambda n, x, a: torch.exp(x[0]),
    "Erf": lambda n, x, a: torch.erf(x[0]),
    "Relu": lambda n, x, a: torch.relu(x[0]), "Clip": _clip,
    "Sigmoid": lambda n, x, a: torch.sigmoid(x[0]), "Tanh": lambda n, x, a: torch.tanh(x[0]),
    "HardSigmoid": lambda n, x, a: torch.clamp(a.get("alpha", 0.2) * x[0] + a.get("beta", 0.5), 0, 1),
    "HardSwish": lambda n, x, a: F.hardswish(x[0]),
    "LeakyRelu": lambda n, x, a: F.leaky_relu(x[0], a.get("alpha", 0.01)),
    "GlobalAveragePool": lambda n, x, a: x[0].mean(dim=tuple(range(2, x[0].dim())), keepdim=True),
    "GlobalMaxPool": lambda n, x, a: x[0].amax(dim=tuple(range(2, x[0].dim())), keepdim=True),
    "AveragePool": lambda n, x, a: _pool(n, x, a, "avg"), "MaxPool": lambda n, x, a: _pool(n, x, a, "max"),
    "ReduceMean": _reduce_mean,
    "Reshape": _reshape,
    "Flatten": lambda n, x, a: x[0].reshape(int(np.prod(x[0].shape[: a.get("axis", 1)])), -1),
    "Transpose": lambda n, x, a: x[0].permute(*(a.get("perm") or reversed(range(x[0].dim())))),
    "Concat": lambda n, x, a: torch.cat(x, dim=a["axis"]),
    "Softmax": lambda n, x, a: torch.softmax(x[0], dim=a["axis"]),
    "Identity": lambda n, x, a: x[0], "Dropout": lambda n, x, a: x[0],
    "Shape": lambda n, x, a: torch.tensor(list(x[0].shape)[a.get("start", 0):a.get("end", None)], dtype=torch.int64),
    "Gather": _gather, "Slice": _slice, "Pad": _pad,
    "Unsqueeze": _unsqueeze, "Squeeze": _squeeze,
    "Constant": lambda n, x, a: torch.from_numpy(np.array(numpy_helper.to_array(a["value"]))),
    "Cast": _cast, "BatchNormalization": _batch_norm,
}


def _tensor(arr: np.ndarray) -> torch.Tensor:
    arr = np.asarray(arr)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    return torch.from_numpy(np.array(arr, copy=True))


def check_supported(node: onnx.NodeProto) -> None:
    """Raise UnsupportedModelError naming the node when the interpreter has no PyTorch form of its operator."""
    if node.domain not in ("", "ai.onnx") or node.op_type not in OPS:
        raise UnsupportedModelError(
            f"finetune: node {node.name!r} ({node.domain + '.' if node.domain else ''}{node.op_type}) is "
            f"not supported by the finetune interpreter (flexiq_trt/finetune/torch_graph.py); supported: "
            f"{', '.join(sorted(OPS))}")


def check_graph(model: onnx.ModelProto, replaced: set[str]) -> None:
    """Every node outside `replaced` (the FlexiQ layers' nodes) has a PyTorch form, before any work is done."""
    for node in model.graph.node:
        if node.name not in replaced:
            check_supported(node)


class TorchGraph(torch.nn.Module):
    """The graph's forward pass in PyTorch, with chains of nodes replaced by modules.

    The graph's constants are fixed tensors (not trained); only the replacement modules hold parameters.
    """

    def __init__(self, model: onnx.ModelProto, replacements: list[Replacement] = ()) -> None:
        super().__init__()
        graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.constants = {init.name: _tensor(numpy_helper.to_array(init)) for init in graph.initializer}
        self.input_names = [i.name for i in graph.input if i.name not in self.constants]
        self.output_names = [o.name for o in graph.output]
        self.layers = torch.nn.ModuleList([r.module for r in replacements])
        by_node = {name: i for i, r in enumerate(replacements) for name in r.nodes}
        position = {node.name: p for p, node in enumerate(graph.node)}
        missing = sorted(set(by_node) - set(position))
        if missing:
            raise UnsupportedModelError(f"finetune: replaced node(s) {missing[:5]} not found in the graph")
        last = {i: max(position[n] for n in r.nodes) for i, r in enumerate(replacements)}
        self.steps: list[tuple[str, object]] = []
        for p, node in enumerate(graph.node):
            if node.name in by_node:
                i = by_node[node.name]
                if last[i] == p:
                    self.steps.append(("layer", (i, replacements[i].input_name, replacements[i].output_name)))
                continue
            check_supported(node)
            attrs = _attrs(node)
            if node.op_type == "Softmax":  # the default axis changed in opset 13
                attrs.setdefault("axis", -1 if self.opset >= 13 else 1)
            self.steps.append(("node", (node, attrs)))
        self.softmax_input = self._softmax_input(graph)

    @staticmethod
    def _softmax_input(graph: onnx.GraphProto) -> str | None:
        """The input of the Softmax that produces the first output, if one does (its logits)."""
        out = graph.output[0].name
        producer = next((n for n in graph.node if out in n.output), None)
        return producer.input[0] if producer is not None and producer.op_type == "Softmax" else None

    def forward(self, feeds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every tensor of the graph by name (the constants excluded)."""
        return self.run(dict(feeds), range(len(self.steps)))

    def run(self, env: dict[str, torch.Tensor], steps: Iterable[int]) -> dict[str, torch.Tensor]:
        """Run the given steps (indices into `self.steps`, in order) on `env`, which they extend; returns it.

        A part of the graph runs from the tensors that cross into it (block-wise reconstruction,
        finetune/block_rounding.py).
        """
        for index in steps:
            kind, what = self.steps[index]
            if kind == "layer":
                i, src, dst = what
                env[dst] = self.layers[i](env[src])
                continue
            node, attrs = what
            args = [None if not name else env[name] if name in env else self.constants[name] for name in node.input]
            env[node.output[0]] = OPS[node.op_type](node, args, attrs)
        return env

    def logits(self, feeds: dict[str, torch.Tensor]) -> torch.Tensor:
        """The first output, or the logits before it when a Softmax produces it."""
        env = self.forward(feeds)
        return env[self.softmax_input or self.output_names[0]]
