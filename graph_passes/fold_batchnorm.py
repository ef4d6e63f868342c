"""Fold Conv -> BatchNormalization (inference form) into the convolution's weight and bias.

Only when the conv's output feeds nothing but the BN (and is not a graph output), and every
operand is constant; the folded conv writes the BN's output tensor, so consumers are untouched.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from .graph_index import GraphIndex, attr
from .rewrite import Replacement


def find_batchnorm_folds(model: onnx.ModelProto) -> list[Replacement]:
    """One Replacement per foldable Conv -> BatchNormalization pair."""
    idx = GraphIndex(model)
    reps: list[Replacement] = []
    for ci, conv in enumerate(idx.nodes):
        if conv.op_type != "Conv" or conv.domain not in ("", "ai.onnx") or len(conv.input) < 2:
            continue
        bn = idx.single_consumer(conv.output[0])
        if bn is None or bn.op_type != "BatchNormalization" or len(bn.output) != 1 or bn.input[0] != conv.output[0]:
            continue
        if attr(bn, "training_mode", 0):
            continue
        w = idx.value(conv.input[1])
        params = [idx.value(x) for x in bn.input[1:5]]
        has_bias = len(conv.input) > 2 and conv.input[2] != ""
        b = idx.value(conv.input[2]) if has_bias else None
        if w is None or any(p is None for p in params) or (has_bias and b is None):
            continue
        gamma, beta, mean, var = (p.astype(np.float64).reshape(-1) for p in params)
        eps = float(attr(bn, "epsilon", 1e-5))
        scale = gamma / np.sqrt(var + eps)
        w2 = (w.astype(np.float64) * scale.reshape((-1,) + (1,) * (w.ndim - 1))).astype(w.dtype)
        b0 = np.zeros_like(mean) if b is None else b.astype(np.float64).reshape(-1)
        b2 = ((b0 - mean) * scale + beta).astype(w.dtype)
        out = bn.output[0]
        w_name, b_name = f"{out}__bnfold_weight", f"{out}__bnfold_bias"
        new = onnx.NodeProto()
        new.CopyFrom(conv)
        del new.input[:]
        new.input.extend([conv.input[0], w_name, b_name])
        del new.output[:]
        new.output.append(out)
        reps.append(Replacement(
            old_nodes=[ci, idx.producer[out]], new_nodes=[new],
            new_initializers=[numpy_helper.from_array(w2, w_name), numpy_helper.from_array(b2, b_name)],
            description=f"fold BatchNormalization {bn.name!r} into Conv {conv.name!r}"))
    return reps
