"""The one place that edits graphs: apply `Replacement` descriptions returned by the passes.

Passes never mutate a model; they return which nodes (by position in the graph they matched) a
new set of nodes replaces. `apply_replacements` removes them, inserts the new nodes and
initializers, drops what became unused and topologically sorts the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import onnx

from flexiq_trt.errors import FlexiqInternalError


@dataclass
class Replacement:
    """Nodes at `old_nodes` (indices into the matched graph's node list) become `new_nodes`."""

    old_nodes: list[int]
    new_nodes: list[onnx.NodeProto]
    new_initializers: list[onnx.TensorProto] = field(default_factory=list)
    description: str = ""


def apply_replacements(model: onnx.ModelProto, replacements: list[Replacement],
                       new_inputs: list[onnx.ValueInfoProto] | None = None,
                       new_outputs: list[onnx.ValueInfoProto] | None = None,
                       opset_imports: dict[str, int] | None = None) -> onnx.ModelProto:
    """Return a copy of `model` with every replacement applied, unused initializers removed, sorted."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    old = list(graph.node)
    removed: set[int] = set()
    for rep in replacements:
        overlap = removed.intersection(rep.old_nodes)
        if overlap:
            raise FlexiqInternalError(f"replacements overlap on nodes {sorted(overlap)} ({rep.description})")
        removed.update(rep.old_nodes)
    nodes = [n for i, n in enumerate(old) if i not in removed]
    inits = list(graph.initializer)
    for rep in replacements:
        nodes.extend(rep.new_nodes)
        inits.extend(rep.new_initializers)
    graph.input.extend(new_inputs or [])
    graph.output.extend(new_outputs or [])
    sorted_nodes = toposort(nodes, graph)
    del graph.node[:]
    graph.node.extend(sorted_nodes)
    _keep_used_initializers(graph, inits)
    _drop_stale_value_info(graph)
    for domain, version in (opset_imports or {}).items():
        if not any(imp.domain == domain for imp in out.opset_import):
            out.opset_import.append(onnx.helper.make_opsetid(domain, version))
    return out


def _subgraph_inputs(node: onnx.NodeProto) -> set[str]:
    """Outer-scope names read by a node's subgraphs (If/Loop/Scan bodies)."""
    names: set[str] = set()
    for a in node.attribute:
        graphs = [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)
        for g in graphs:
            local = {i.name for i in g.input} | {t.name for t in g.initializer}
            for n in g.node:
                local.update(n.output)
            for n in g.node:
                names.update(x for x in list(n.input) + list(_subgraph_inputs(n)) if x and x not in local)
    return names


def toposort(nodes: list[onnx.NodeProto], graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """Kahn's order that keeps the original relative order where possible."""
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    deps: list[set[int]] = []
    for n in nodes:
        needed = {x for x in n.input if x} | _subgraph_inputs(n)
        deps.append({producer[x] for x in needed if x in producer})
    users: list[list[int]] = [[] for _ in nodes]
    for i, d in enumerate(deps):
        for j in d:
            users[j].append(i)
    pending = [len(d) for d in deps]
    ready = [i for i, c in enumerate(pending) if c == 0]
    order: list[int] = []
    import heapq

    heapq.heapify(ready)
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users[i]:
            pending[u] -= 1
            if pending[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes):
        stuck = [nodes[i].name or nodes[i].op_type for i in range(len(nodes)) if i not in set(order)]
        raise FlexiqInternalError(f"graph has a cycle after rewriting, around {stuck[:5]}")
    return [nodes[i] for i in order]


def _keep_used_initializers(graph: onnx.GraphProto, inits: list[onnx.TensorProto]) -> None:
    used = {x for n in graph.node for x in list(n.input) + list(_subgraph_inputs(n))}
    used |= {o.name for o in graph.output}
    keep = [t for t in inits if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    init_names = {t.name for t in keep}
    stale = [v for v in graph.input if v.name not in used and v.name not in init_names
             and any(v.name == t.name for t in inits)]
    for v in stale:
        graph.input.remove(v)


def _drop_stale_value_info(graph: onnx.GraphProto) -> None:
    live = {o for n in graph.node for o in n.output}
    keep = [v for v in graph.value_info if v.name in live]
    del graph.value_info[:]
    graph.value_info.extend(keep)
