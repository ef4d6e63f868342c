"""Fold the shape subgraphs of a model whose graph-input shapes are fixed (an analysis copy only).

Exported models compute reshape targets at run time: ``Shape -> Gather -> Unsqueeze -> Concat ->
Reshape`` (PyTorch), or ``Shape -> Slice -> Concat`` (Paddle, tf2onnx). ONNX shape inference with
data propagation resolves many of these chains, not all (it gives up on symbolic arithmetic and
leaves ``unk__N`` dims). Once the input shapes are fixed, every ``Shape`` output is a constant, so
onnx-graphsurgeon's folding (``fold_shapes=True``) turns the chains into constants and a second
inference pass gets static shapes downstream.

The folded copy holds one input size; it answers "what shape does this tensor have at the
calibration shapes" and is never written as an artifact (those keep the model's dynamic axes).
"""

from __future__ import annotations

import logging

import onnx

log = logging.getLogger("flexiq_trt.graph_passes")

_PROTOBUF_LIMIT = 2**31 - 1


def fold_shape_subgraphs(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy with shape subgraphs folded into constants and shapes re-inferred (data propagation).

    `model` should have static graph-input shapes and inferred value_info; where folding or
    inference fails, the partially folded model is returned and the failure is logged.
    """
    import onnx_graphsurgeon as gs

    if model.ByteSize() >= _PROTOBUF_LIMIT:
        log.warning("model over 2 GiB: shape subgraphs are not folded")
        return model
    try:
        graph = gs.import_onnx(model)
        graph.fold_constants(fold_shapes=True, error_ok=True)
        graph.cleanup(remove_unused_graph_inputs=False)
        folded = gs.export_onnx(graph, do_type_check=False)
    except Exception as e:  # graphsurgeon raises assorted errors on exotic graphs; folding is best effort
        log.warning("folding shape subgraphs failed (%s); using shape inference alone", e)
        return model
    folded.ir_version = model.ir_version
    del folded.graph.value_info[:]
    try:
        return onnx.shape_inference.infer_shapes(folded, data_prop=True)
    except Exception as e:  # inference errors on exotic ops must not stop conversion
        log.warning("shape inference after folding failed (%s)", e)
        return folded
