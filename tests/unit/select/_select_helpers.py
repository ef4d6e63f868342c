"""Small selection problems, a cheap fitness and a self-built mask-input ONNX model for the selector tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from flexiq_trt.select.base import LayerGroups, SelectionProblem


class QuadraticFitness:
    """A cheap fitness with cross-group interactions: per-item error plus a per-layer crowding term,
    so the greedy (per-item) order is not optimal and the search has something to find."""

    def __init__(self, problem: SelectionProblem, crowding: float = 0.05, noise_seed: int | None = None):
        self.err = [np.asarray(lg.error_score, dtype=np.float64) for lg in problem.layers]
        self.crowding = crowding
        rng = np.random.default_rng(noise_seed) if noise_seed is not None else None
        self.noise = [rng.normal(0, 0.2, lg.group_count) if rng is not None else 0.0 for lg in problem.layers]
        self.calls = 0

    def __call__(self, masks: Sequence[np.ndarray]) -> float:
        self.calls += 1
        total = 0.0
        for err, noise, m in zip(self.err, self.noise, masks, strict=True):
            m = np.asarray(m, dtype=np.float64)
            total += float(np.dot(err + noise, m)) + self.crowding * float(m.sum()) ** 2
        return total


def make_problem(seed: int = 0, layers: int = 6, ladder: tuple[float, ...] = (0.25, 0.5, 0.75)) -> SelectionProblem:
    rng = np.random.default_rng(seed)
    out = []
    for li in range(layers):
        gc = int(rng.integers(2, 7))
        macs = np.full(gc, float(rng.integers(1, 5) * 1000))
        macs[-1] *= 0.5  # a padded last group has fewer real channels
        out.append(LayerGroups(name=f"layer{li}", layer_index=li, group_macs=macs,
                               error_score=rng.uniform(0.1, 2.0, gc) * macs / 1000,
                               value_range=rng.uniform(0.5, 4.0, gc),
                               weight_float=rng.normal(0, 1, (8, gc * 4)).astype(np.float32)))
    return SelectionProblem(layers=out, ladder=ladder, seed=seed)


def build_mask_model(group_counts: Sequence[int] = (2, 3), group: int = 4, classes: int = 5,
                     seed: int = 0) -> onnx.ModelProto:
    """A tiny MLP in the shape of a mask-mode simulation model: per layer a bool input
    ``flexiq_group_mask_<i>`` [G_count]; a True group's input channels are coarsened (a stand-in for
    4-bit extraction) before that layer's MatMul. Batch is dynamic."""
    rng = np.random.default_rng(seed)
    nodes, inits, inputs = [], [], []
    width = group_counts[0] * group
    inputs.append(helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", width]))
    cur = "x"
    inits.append(numpy_helper.from_array(np.array(0.25, dtype=np.float32), "step"))
    for li, gc in enumerate(group_counts):
        c_in = gc * group
        c_out = group_counts[li + 1] * group if li + 1 < len(group_counts) else classes
        mask = f"flexiq_group_mask_{li}"
        inputs.append(helper.make_tensor_value_info(mask, TensorProto.BOOL, [gc]))
        inits += [numpy_helper.from_array(np.array([gc, 1], dtype=np.int64), f"shp{li}"),
                  numpy_helper.from_array(np.array([gc, group], dtype=np.int64), f"exp{li}"),
                  numpy_helper.from_array(np.array([c_in], dtype=np.int64), f"flat{li}"),
                  numpy_helper.from_array(rng.normal(0, 0.5, (c_in, c_out)).astype(np.float32), f"w{li}")]
        nodes += [helper.make_node("Reshape", [mask, f"shp{li}"], [f"m2_{li}"]),
                  helper.make_node("Expand", [f"m2_{li}", f"exp{li}"], [f"m3_{li}"]),
                  helper.make_node("Reshape", [f"m3_{li}", f"flat{li}"], [f"mc_{li}"]),
                  helper.make_node("Div", [cur, "step"], [f"d{li}"]),
                  helper.make_node("Floor", [f"d{li}"], [f"f{li}"]),
                  helper.make_node("Mul", [f"f{li}", "step"], [f"coarse{li}"]),
                  helper.make_node("Where", [f"mc_{li}", f"coarse{li}", cur], [f"sel{li}"]),
                  helper.make_node("MatMul", [f"sel{li}", f"w{li}"], [f"mm{li}"])]
        cur = f"mm{li}"
        if li + 1 < len(group_counts):
            nodes.append(helper.make_node("Relu", [cur], [f"r{li}"]))
            cur = f"r{li}"
    nodes.append(helper.make_node("Identity", [cur], ["logits"]))
    graph = helper.make_graph(nodes, "mask_mlp", inputs,
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
