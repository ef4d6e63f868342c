"""Graph assertions with a compact dump of the graph on failure."""

from __future__ import annotations

from collections import Counter

import onnx


def graph_dump(model: onnx.ModelProto, limit: int = 60) -> str:
    """One line per node: name, op_type, inputs -> outputs."""
    lines = [f"  {n.name or '<unnamed>'}: {n.domain + '::' if n.domain else ''}{n.op_type}"
             f"({', '.join(n.input)}) -> {', '.join(n.output)}" for n in model.graph.node[:limit]]
    more = len(model.graph.node) - limit
    return "\n".join(lines + ([f"  ... {more} more"] if more > 0 else []))


def op_counts(model: onnx.ModelProto) -> Counter:
    """How many nodes of each op type the top-level graph has."""
    return Counter(n.op_type for n in model.graph.node)


def assert_op_counts(model: onnx.ModelProto, expected: dict[str, int]) -> None:
    """Every op in `expected` occurs exactly that many times (0 = absent)."""
    counts = op_counts(model)
    wrong = {op: (counts.get(op, 0), want) for op, want in expected.items() if counts.get(op, 0) != want}
    assert not wrong, f"op counts (got, expected) differ: {wrong}\ngraph:\n{graph_dump(model)}"
