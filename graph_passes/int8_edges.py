"""Which FlexiQ layers exchange INT8 codes instead of float tensors (docs/design.md §2.8, "INT8 codes between layers").

A layer's output becomes an INT8 edge when every reader of that tensor is another FlexiQ layer and the
readers share one activation quantizer (the same float32 `act_scale` and `act_signed`). The producer
then writes the readers' codes in its epilogue, and the readers skip their own float->code step. It
is bit-identical to the float chain, because the readers would have quantized the producer's float32
output with exactly that rule; what changes is that 1 byte per value crosses memory instead of 2–4,
and the quantization leaves the readers' input pass. TensorRT's own QuantizeLinear cannot stand in for
the producer: it saturates signed codes at -128 (the contract stops at -127) and has no unsigned codes.
Graph outputs, and tensors any non-FlexiQ node reads, stay float.

Workspace edges (optional, `workspace=True`): an INT8 edge with exactly ONE reader of the producer's own
kind (conv -> conv, gemm -> gemm: the same rows) carries the reader's input-pass image instead of codes
(plugins/kernels/flexiqEdgeImage.h): the producer stores its output channels in the reader's priority
order (`plugin_fields.py` permutes its weight rows, `weight_scale` and bias columns) and runs the reader's
per-(row, group) step in its epilogue, so the reader runs no input pass. Fan-out edges keep the codes form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx


@dataclass(frozen=True)
class CodeFormat:
    """An activation quantizer of docs/design.md §2.3: the codes an INT8 edge carries."""

    scale: float  # float32 s_a
    signed: bool


@dataclass(frozen=True, eq=False)
class WorkspaceReader:
    """What the producer of a workspace edge needs of its one reader (plugin fields reader_*, its pi)."""

    layer_index: int
    group_size: int
    shift_mode: int
    static_shift: np.ndarray  # int8 [C_pad_r / G_r]
    permutation: np.ndarray  # int32 [C_pad_r]; pi[:N] are the real channels (padding last)


@dataclass(frozen=True)
class EdgeIO:
    """One layer's plugin I/O: does it read its own codes, and whose codes (if any) does it write.

    `input_workspace`: the input is a workspace edge; `reader`: the output is the workspace edge of that reader.
    """

    input_int8: bool = False
    output: CodeFormat | None = None
    input_workspace: bool = False
    reader: WorkspaceReader | None = None


FLOAT_EDGES = EdgeIO()


@dataclass(frozen=True)
class AnyQuantizer:
    """Stand-in for a layer not quantized yet, so edges can be predicted from the graph alone.

    Calibration gives one quantizer per tensor, so readers of one tensor always agree; workspace edges
    are left out.
    """

    act_scale: float = 1.0
    act_signed: bool = True
    op_type: str = ""


def predicted_int8_edges(model: onnx.ModelProto, eligible: Sequence) -> dict[str, EdgeIO]:
    """`find_int8_edges` before quantization: which eligible layers' outputs will be INT8 edges."""
    return find_int8_edges(model, [(el, AnyQuantizer()) for el in eligible])


def _code_format(quantized) -> CodeFormat:
    return CodeFormat(float(np.float32(quantized.act_scale)), bool(quantized.act_signed))


def _workspace_reader(ql) -> WorkspaceReader:
    return WorkspaceReader(int(ql.layer_index), int(ql.group_size), int(ql.act_shift_mode),
                           np.asarray(ql.act_static_shift, np.int8), np.asarray(ql.permutation, np.int32))


def find_int8_edges(model: onnx.ModelProto, pairs: Sequence[tuple], workspace: bool = False) -> dict[str, EdgeIO]:
    """EdgeIO per layer name for the (EligibleLayer, QuantizedLayer) `pairs` replaced in `model`.

    A layer's output is an INT8 edge when it is not a graph output, at least one node reads it, and
    every node that reads it is the first node of a replaced layer whose input is exactly that tensor,
    all of them with one CodeFormat. With `workspace`, an edge whose one reader has the producer's op
    type is a workspace edge. Layers not in the result (or absent) keep float I/O.
    """
    first_node = {el.replaced_nodes[0]: (el, ql) for el, ql in pairs}
    readers: dict[str, list] = {}
    for node in model.graph.node:
        for name in set(node.input):
            if name:
                readers.setdefault(name, []).append(node)
    graph_outputs = {o.name for o in model.graph.output}
    output_of: dict[str, CodeFormat] = {}
    reads_codes: set[str] = set()
    reader_of: dict[str, WorkspaceReader] = {}
    reads_workspace: set[str] = set()
    for el, _ in pairs:
        tensor = el.output_name
        nodes = readers.get(tensor, [])
        if tensor in graph_outputs or not nodes:
            continue
        consumers = [first_node.get(n.name) for n in nodes]
        if any(c is None or c[0].input_name != tensor for c in consumers):
            continue
        formats = {_code_format(ql) for _, ql in consumers}
        if len(formats) != 1:
            continue
        output_of[el.name] = formats.pop()
        reads_codes.update(c_el.name for c_el, _ in consumers)
        producer_op = next(q.op_type for e, q in pairs if e.name == el.name)
        if workspace and len(consumers) == 1 and consumers[0][1].op_type == producer_op:
            reader_of[el.name] = _workspace_reader(consumers[0][1])
            reads_workspace.add(consumers[0][0].name)
    return {el.name: EdgeIO(el.name in reads_codes, output_of.get(el.name), el.name in reads_workspace,
                            reader_of.get(el.name)) for el, _ in pairs}


def mark_int8_tensors(model: onnx.ModelProto, names: Sequence[str]) -> None:
    """Type the INT8 edges `names` as INT8 in `model`'s value_info (shapes dropped: the plugin sets them)."""
    wanted = set(names)
    keep = [v for v in model.graph.value_info if v.name not in wanted]
    del model.graph.value_info[:]
    model.graph.value_info.extend(keep)
    model.graph.value_info.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.INT8, None)
                                  for n in names)
