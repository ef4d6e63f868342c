"""A read-only index over an ONNX graph: producers, consumers, constants and inferred shapes.

Passes match patterns through this index instead of walking `graph.node` themselves, so "is this
tensor a constant", "who consumes it" and "what is its shape" have one answer everywhere.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import onnx
from onnx import numpy_helper


class GraphIndex:
    """Producer/consumer maps, initializer values and static shapes of one (top-level) graph."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        graph = model.graph
        self.nodes: list[onnx.NodeProto] = list(graph.node)
        self.producer: dict[str, int] = {}
        self.consumers: dict[str, list[int]] = defaultdict(list)
        for i, node in enumerate(self.nodes):
            for out in node.output:
                if out:
                    self.producer[out] = i
            for name in node.input:
                if name:
                    self.consumers[name].append(i)
        self.initializers = {t.name: t for t in graph.initializer}
        self.graph_inputs = {v.name for v in graph.input if v.name not in self.initializers}
        self.graph_outputs = {v.name for v in graph.output}
        self.shapes: dict[str, tuple[int | str | None, ...] | None] = {}
        for vi in list(graph.value_info) + list(graph.input) + list(graph.output):
            self.shapes[vi.name] = _shape_of(vi)
        for name, t in self.initializers.items():
            self.shapes[name] = tuple(t.dims)
        self._values: dict[str, np.ndarray] = {}

    def node(self, index: int) -> onnx.NodeProto:
        """The node at position `index` of the graph."""
        return self.nodes[index]

    def producer_of(self, tensor: str) -> onnx.NodeProto | None:
        """The node producing `tensor`, or None for graph inputs and initializers."""
        i = self.producer.get(tensor)
        return None if i is None else self.nodes[i]

    def consumers_of(self, tensor: str) -> list[onnx.NodeProto]:
        """Every node reading `tensor` (a node reading it twice appears once per read)."""
        return [self.nodes[i] for i in self.consumers.get(tensor, [])]

    def single_consumer(self, tensor: str) -> onnx.NodeProto | None:
        """The only consumer of `tensor` when it has exactly one and is not a graph output."""
        uses = self.consumers.get(tensor, [])
        if len(uses) != 1 or tensor in self.graph_outputs:
            return None
        return self.nodes[uses[0]]

    def is_constant(self, tensor: str) -> bool:
        """True when `tensor` is an initializer (constants are folded into initializers by intake)."""
        return tensor in self.initializers and tensor not in self.graph_inputs

    def value(self, tensor: str) -> np.ndarray | None:
        """The constant value of `tensor`, or None when it is not a constant."""
        if not self.is_constant(tensor):
            return None
        if tensor not in self._values:
            self._values[tensor] = numpy_helper.to_array(self.initializers[tensor])
        return self._values[tensor]

    def shape(self, tensor: str) -> tuple[int | str | None, ...] | None:
        """The inferred shape (ints for static dims, names or None for dynamic ones), or None if unknown."""
        return self.shapes.get(tensor)

    def opset(self, domain: str = "") -> int:
        """The model's opset version for `domain` (0 when not imported)."""
        for imp in self.model.opset_import:
            if imp.domain in (domain, "ai.onnx" if domain == "" else domain):
                return int(imp.version)
        return 0


def _shape_of(vi: onnx.ValueInfoProto) -> tuple[int | str | None, ...] | None:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims: list[int | str | None] = []
    for d in t.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return tuple(dims)


def attr(node: onnx.NodeProto, name: str, default=None):
    """A node attribute's Python value (ints, floats, strings decoded, lists), or `default`."""
    for a in node.attribute:
        if a.name == name:
            value = onnx.helper.get_attribute_value(a)
            if isinstance(value, bytes):
                return value.decode()
            if isinstance(value, list) and value and isinstance(value[0], bytes):
                return [v.decode() for v in value]
            return value
    return default
