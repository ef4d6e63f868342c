"""Cut the mask-mode simulation before a FlexiQ layer: a prefix computed once, a suffix run per candidate.

Why: measuring the linearized output model (`select/surrogate.py`) runs the simulation once per
(layer, group) item with that item toggled in an anchor set. Everything before the item's layer is
the anchor's computation, so it is computed once per layer and only the suffix runs per item.

The cut before layer l is taken in the graph's node order (topologically sorted, as every pass here
writes it): the prefix is the nodes before layer l's first node, the suffix the rest; the tensors
crossing the cut become the prefix's outputs and the suffix's inputs. A layer's nodes are the ones
named with its ``flexiq<l>_`` prefix (`graph_passes/onnx_builder.SubgraphBuilder`).
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from flexiq_trt.plugin_spec import sim_node_prefix


@dataclass(frozen=True)
class Cut:
    """The two halves of the graph around one layer.

    Attributes:
        prefix: model computing `tensors` from the graph inputs it needs.
        suffix: model computing the graph outputs from `tensors` and the graph inputs it needs.
        tensors: the tensors crossing the cut (prefix outputs, suffix inputs).
        prefix_inputs: graph inputs (data, masks, constants) the prefix reads.
    """

    prefix: onnx.ModelProto
    suffix: onnx.ModelProto
    tensors: tuple[str, ...]
    prefix_inputs: frozenset[str]


def layer_start(model: onnx.ModelProto, layer_index: int) -> int | None:
    """Index of the first node of FlexiQ layer `layer_index`, None when the graph has none."""
    prefix = sim_node_prefix(layer_index)
    return next((i for i, n in enumerate(model.graph.node) if n.name.startswith(prefix)), None)


def tensor_types(model: onnx.ModelProto) -> dict[str, onnx.TypeProto]:
    """Every typed tensor of the model after shape inference (compute once, pass to `cut_before`)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    return {v.name: v.type for v in [*g.input, *g.value_info, *g.output] if v.type.HasField("tensor_type")}


def cut_before(model: onnx.ModelProto, layer_index: int,
               types: dict[str, onnx.TypeProto] | None = None) -> Cut | None:
    """The cut before `layer_index`, or None when it cannot be made (no such layer, untyped tensors, nothing before)."""
    pos = layer_start(model, layer_index)
    if not pos:
        return None
    g = model.graph
    types = types if types is not None else tensor_types(model)
    initializers = {t.name for t in g.initializer}
    head, tail = g.node[:pos], g.node[pos:]
    produced = {o for n in head for o in n.output if o}
    needed = {i for n in tail for i in n.input if i} | {o.name for o in g.output}
    tensors = sorted((produced & needed) - initializers)
    if not tensors or any(t not in types or not types[t].tensor_type.HasField("elem_type") for t in tensors):
        return None
    graph_inputs = {i.name: i for i in g.input if i.name not in initializers}
    head_reads = {i for n in head for i in n.input} & set(graph_inputs)
    tail_reads = ({i for n in tail for i in n.input} | {o.name for o in g.output}) & set(graph_inputs)

    def info(name: str) -> onnx.ValueInfoProto:
        return _info(name, types)

    prefix = _build(model, head, [graph_inputs[n] for n in sorted(head_reads)], [info(t) for t in tensors],
                    f"prefix_{layer_index}")
    suffix = _build(model, tail, [info(t) for t in tensors] + [graph_inputs[n] for n in sorted(tail_reads)],
                    list(g.output), f"suffix_{layer_index}")
    return Cut(prefix, suffix, tuple(tensors), frozenset(head_reads))


@dataclass(frozen=True)
class Segment:
    """The nodes between two cuts: computes the later cut's tensors from the earlier cut's.

    Attributes:
        model: reads `inputs` (earlier-cut tensors and graph inputs), writes `outputs`.
        outputs: the later cut's tensors produced inside the segment; its other tensors cross both
            cuts and are taken from the earlier cut's values as they are.
        graph_inputs: graph inputs (data, masks, constants) the segment reads.
    """

    model: onnx.ModelProto | None
    outputs: tuple[str, ...]
    graph_inputs: frozenset[str]


def segment_between(model: onnx.ModelProto, earlier: Cut, start_layer: int, later: Cut, end_layer: int,
                    types: dict[str, onnx.TypeProto]) -> Segment | None:
    """The nodes from `start_layer`'s first node to `end_layer`'s first node, or None when `end_layer` is not later.

    Every tensor of the later cut is produced inside the segment or crosses the earlier cut too
    (produced before it and read after both), so the earlier cut's values and this segment give
    the later cut's values without running the graph from its inputs again.
    """
    a, b = layer_start(model, start_layer), layer_start(model, end_layer)
    if a is None or b is None or b <= a:
        return None
    g = model.graph
    nodes = g.node[a:b]
    produced = {o for n in nodes for o in n.output if o}
    outputs = tuple(t for t in later.tensors if t in produced)
    if any(t not in produced and t not in earlier.tensors for t in later.tensors):
        return None
    initializers = {t.name for t in g.initializer}
    graph_inputs = {i.name: i for i in g.input if i.name not in initializers}
    reads = {i for n in nodes for i in n.input if i}
    from_cut = sorted(reads & set(earlier.tensors))
    from_graph = sorted(reads & set(graph_inputs))
    if not outputs:
        return Segment(None, (), frozenset(from_graph))
    seg = _build(model, nodes, [_info(t, types) for t in from_cut] + [graph_inputs[n] for n in from_graph],
                 [_info(t, types) for t in outputs], f"segment_{start_layer}_{end_layer}")
    return Segment(seg, outputs, frozenset(from_graph))


def _info(name: str, types: dict[str, onnx.TypeProto]) -> onnx.ValueInfoProto:
    v = onnx.ValueInfoProto()
    v.name = name
    v.type.CopyFrom(types[name])
    return v


def _build(model: onnx.ModelProto, nodes, inputs, outputs, name: str) -> onnx.ModelProto:
    """A model of `nodes` with the initializers they read, the opsets and IR version of `model`."""
    used = {i for n in nodes for i in n.input}
    inits = [t for t in model.graph.initializer if t.name in used]
    graph = onnx.helper.make_graph(list(nodes), name, inputs, outputs, inits)
    m = onnx.helper.make_model(graph, opset_imports=list(model.opset_import))
    m.ir_version = model.ir_version
    return m

