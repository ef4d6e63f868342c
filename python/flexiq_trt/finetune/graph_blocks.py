"""Cut a graph into reconstruction blocks: stretches between single-tensor cuts (BRECQ's blocks, found generically).

BRECQ reconstructs a network block by block because the layers of one residual block compensate
each other's errors, while a block's output is a clean place to stop: one tensor that everything
after it reads. In a graph that place is a *single-tensor cut*: a point of the topological order
after which exactly one computed tensor is still needed. In a residual network the cuts fall after
each block's Add (inside a block the skip tensor stays alive beside the branch); in a plain chain
after every node. Consecutive stretches are merged until each holds at least `min_layers` FlexiQ
layers, so a plain MBConv (expansion, depthwise, projection) is one block as well.

Steps that only compute shapes (`Shape` and what is computed from shapes and constants, such as
the batch size a final `Reshape` reads) are not tensors a block hands on: they are left out of the
cut test and recomputed for each block from a placeholder of the graph input's shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from flexiq_trt.errors import UnsupportedModelError
from flexiq_trt.finetune.torch_graph import TorchGraph


@dataclass(frozen=True)
class Block:
    """Steps [start, end) of a TorchGraph, the tensors they read from before and the tensors they hand on."""

    start: int
    end: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    layers: tuple[int, ...]  # indices of the FlexiQ layers (the graph's replacement modules) inside


def step_io(graph: TorchGraph, index: int) -> tuple[list[str], str]:
    """(computed tensors a step reads, the tensor it writes); constants left out."""
    kind, what = graph.steps[index]
    if kind == "layer":
        _, src, dst = what
        return [src], dst
    node, _ = what
    return [n for n in node.input if n and n not in graph.constants], node.output[0]


def shape_steps(graph: TorchGraph) -> list[int]:
    """Steps that compute only shapes: `Shape` nodes and nodes whose computed inputs are all such outputs."""
    shape_like: set[str] = set()
    out = []
    for i, (kind, what) in enumerate(graph.steps):
        ins, dst = step_io(graph, i)
        if kind == "node" and (what[0].op_type == "Shape" or (ins and all(n in shape_like for n in ins))):
            shape_like.add(dst)
            out.append(i)
    return out


def final_outputs(graph: TorchGraph) -> tuple[str, ...]:
    """What the last block reproduces: the graph outputs, a classifier's logits in place of its Softmax."""
    names = list(graph.output_names)
    if graph.softmax_input is not None:
        names[0] = graph.softmax_input
    return tuple(names)


def partition(graph: TorchGraph, min_layers: int) -> list[Block]:
    """The graph's steps as blocks (module docstring); blocks without a FlexiQ layer are left out."""
    skip = set(shape_steps(graph))
    produced = {name: -1 for name in graph.input_names}
    last_use: dict[str, int] = {}
    for i in range(len(graph.steps)):
        if i in skip:
            continue
        ins, dst = step_io(graph, i)
        for name in ins:
            last_use[name] = i
        produced[dst] = i
    outputs = final_outputs(graph)
    for name in outputs:
        last_use[name] = len(graph.steps)
    missing = [n for n in outputs if n not in produced]
    if missing:
        raise UnsupportedModelError(f"block rounding: graph output(s) {missing} are not computed by the graph")
    cuts: list[tuple[int, tuple[str, ...]]] = [(-1, tuple(graph.input_names))]
    for i in range(len(graph.steps) - 1):
        if i in skip:
            continue
        live = [n for n, p in produced.items() if p <= i and last_use.get(n, -2) > i]
        if len(live) == 1:
            cuts.append((i, (live[0],)))
    end_of_graph = max(produced[n] for n in outputs) + 1
    cuts = [c for c in cuts if c[0] < end_of_graph - 1] + [(end_of_graph - 1, outputs)]
    blocks: list[Block] = []
    start, inputs = cuts[0][0] + 1, cuts[0][1]
    for i, names in cuts[1:]:
        layers = _layers(graph, start, i + 1)
        if len(layers) >= min_layers or i == end_of_graph - 1:
            if layers:
                blocks.append(Block(start, i + 1, inputs, names, layers))
            start, inputs = i + 1, names
    return blocks


def _layers(graph: TorchGraph, start: int, end: int) -> tuple[int, ...]:
    return tuple(what[0] for kind, what in graph.steps[start:end] if kind == "layer")


def run_block(graph: TorchGraph, block: Block, feeds: dict[str, torch.Tensor], shapes: list[int],
              input_shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """The block's output tensors from its input tensors (`feeds`); shape steps before it run on a placeholder."""
    env = dict(feeds)
    first = graph.input_names[0]
    if first not in env:  # shape steps read only the input's shape: an uninitialised tensor of that shape
        batch = next(iter(feeds.values())).shape[0]
        env[first] = torch.empty((batch, *input_shape[1:]))
    env = graph.run(env, [i for i in shapes if i < block.start] + list(range(block.start, block.end)))
    return {name: env[name] for name in block.outputs}
