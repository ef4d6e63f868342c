"""Write `<stem>.flexiq.onnx`: each eligible layer's nodes become one FlexiQ plugin node (docs/design.md §3)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import onnx

from flexiq_trt.plugin_spec import PLUGIN_DOMAIN, PLUGIN_VERSION, RUNTIME_INPUT

from .graph_index import GraphIndex
from .int8_edges import FLOAT_EDGES, EdgeIO, find_int8_edges, mark_int8_tensors
from .layer_nodes import check_layer_pairs, check_written, locate_nodes, runtime_input_info, set_metadata
from .plugin_fields import make_attributes
from .rewrite import Replacement, apply_replacements

log = logging.getLogger("flexiq_trt.graph_passes")

CANDIDATE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def plugin_replacements(prepared_model: onnx.ModelProto, layers: Sequence[tuple],
                        edges: dict[str, EdgeIO] | None = None) -> list[Replacement]:
    """One Replacement per (EligibleLayer, QuantizedLayer): its nodes -> one plugin node.

    `edges` (layer name -> EdgeIO) marks the layers that read or write INT8 codes; float I/O otherwise.
    """
    idx = GraphIndex(prepared_model)
    reps = []
    for el, ql in layers:
        node = onnx.helper.make_node(ql.op_type, [el.input_name, RUNTIME_INPUT], [el.output_name],
                                     name=el.name, domain=PLUGIN_DOMAIN)
        node.attribute.extend(make_attributes(ql, (edges or {}).get(el.name, FLOAT_EDGES)))
        reps.append(Replacement(locate_nodes(idx, el), [node],
                                description=f"{el.name}: {'+'.join(el.replaced_nodes)} -> {ql.op_type}"))
    return reps


def write_flexiq_model(prepared_model: onnx.ModelProto, layers: Sequence[tuple],
                       metadata: dict | None = None, int8_edges: bool = True,
                       workspace_edges: bool = False) -> onnx.ModelProto:
    """The FlexiQ ONNX: plugin nodes + graph input `flexiq_max_4bit_ch` int32 [L], checked by onnx.checker.

    `layers` is a list of (EligibleLayer, QuantizedLayer); layer_index values must be 0..L-1.
    `metadata` entries become metadata_props (non-string values JSON-encoded). With `int8_edges`, layers
    read only by FlexiQ layers exchange INT8 codes (graph_passes/int8_edges.py); the tensors between
    them are typed INT8 in the model's value_info. With `workspace_edges` too, an INT8 edge with one reader
    of the producer's kind carries the reader's input-pass image (a workspace edge, docs/design.md §2.8).
    """
    num_layers = check_layer_pairs(layers)
    edges = find_int8_edges(prepared_model, layers, workspace=workspace_edges) if int8_edges else {}
    reps = plugin_replacements(prepared_model, layers, edges)
    model = apply_replacements(prepared_model, reps, new_inputs=[runtime_input_info(num_layers)],
                               opset_imports={PLUGIN_DOMAIN: int(PLUGIN_VERSION)})
    mark_int8_tensors(model, [el.output_name for el, _ in layers if edges.get(el.name, FLOAT_EDGES).output])
    set_metadata(model, metadata or {})
    check_written(model, "FlexiQ model")
    candidates = sum(n.op_type in CANDIDATE_OPS for n in prepared_model.graph.node)
    n_edges = sum(e.output is not None for e in edges.values())
    n_workspace = sum(e.reader is not None for e in edges.values())
    log.info("replaced %d of %d candidates with FlexiQ plugin nodes; %d of their outputs are INT8 edges "
             "(%d workspace edges)", len(reps), candidates, n_edges, n_workspace)
    return model

