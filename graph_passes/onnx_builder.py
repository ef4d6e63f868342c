"""A tiny node/constant builder for subgraphs made of standard ONNX ops (unique, prefixed names)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


class SubgraphBuilder:
    """Collects nodes and initializers; every generated tensor name starts with `prefix`."""

    def __init__(self, prefix: str, opset: int) -> None:
        self.prefix = prefix
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"{self.prefix}{hint}_{self._count}"

    def const(self, value: np.ndarray | float | int, hint: str = "c", dtype=None) -> str:
        """Add an initializer; Python scalars become float32 unless `dtype` says otherwise.

        A 0-d array stays 0-d (np.ascontiguousarray would make it [1]): a 0-d Gather index drops the
        gathered axis, which the simulation's per-rung tables rely on.
        """
        arr = np.asarray(value, dtype=dtype if dtype is not None else
                         (np.float32 if isinstance(value, float | int) else None))
        name = self._name(hint)
        self.initializers.append(numpy_helper.from_array(np.require(arr, requirements="C"), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, out: str | None = None,
           **attrs) -> str:
        """Add one node; returns its (single) output name."""
        output = out or self._name(hint or op_type.lower())
        self.nodes.append(onnx.helper.make_node(op_type, inputs, [output], name=f"{self.prefix}{output}"
                                                if out else output, **attrs))
        return output

    def reduce_max(self, x: str, axis: int) -> str:
        """ReduceMax over one axis, keepdims (see `reduce`)."""
        return self.reduce("ReduceMax", x, axis)

    def reduce(self, op_type: str, x: str, axis: int) -> str:
        """ReduceMax/ReduceMin over one axis, keepdims; axes moved from attribute to input at opset 18."""
        if self.opset >= 18:
            return self.op(op_type, [x, self.const(np.array([axis], np.int64), "axes")], keepdims=1)
        return self.op(op_type, [x], axes=[axis], keepdims=1)
