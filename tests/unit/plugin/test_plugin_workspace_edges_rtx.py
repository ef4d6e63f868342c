"""Workspace edges (docs/design.md §2.8) through TensorRT-RTX's strongly typed builder for SM86/SM89.

Real `convert` output with `workspace_edges=True`: the shipped Fashion-MNIST ResNet (conv -> ReLU -> conv
chains, one reader each) and a two-layer MLP on a rank-3 input (gemm -> gemm, [1, T, X] edge). TensorRT
must accept the plugins' shapes (producer output [B, P, Q, X] / [..., X], reader input of the same X),
type exactly the marked tensors INT8, and build. Not executed (no GPU in CI).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from _utils import models
from _utils.configs import NO_BLOCK_ROUNDING

import flexiq_trt
from flexiq_trt.calibration.model_io import input_specs
from flexiq_trt.conversion import ConvertConfig
from flexiq_trt.datasets.model_zoo import load_model_path
from flexiq_trt.errors import FlexiqError
from flexiq_trt.plugin_spec import PLUGIN_OPS, EdgeKind
from flexiq_trt.runtime.engine_builder import build_engine

pytestmark = [pytest.mark.plugin, pytest.mark.rtx]


def _convert(tmp, name: str, path, calib: np.ndarray, input_name: str):
    np.savez(tmp / f"{name}_calib.npz", **{input_name: calib})
    cfg = ConvertConfig(selector="greedy", ort_baseline=False, report=False, baselines=False, workspace_edges=True)
    return flexiq_trt.convert(path, calib=str(tmp / f"{name}_calib.npz"), output_dir=tmp / name, config=cfg, refine=NO_BLOCK_ROUNDING)


def _edge_kinds(path) -> list[tuple[int, int]]:
    """(input_int8, output_int8) of every plugin node."""
    out = []
    for n in onnx.load(str(path)).graph.node:
        if n.op_type in PLUGIN_OPS:
            a = {x.name: x.i for x in n.attribute}
            out.append((a["input_int8"], a["output_int8"]))
    return out


@pytest.mark.parametrize("name", ["fmnist_resnet", "mlp"])
def test_converted_model_with_workspace_edges_builds_for_sm86_and_sm89(rtx, tmp_path, name) -> None:
    if name == "mlp":
        path = tmp_path / "mlp.onnx"
        onnx.save(models.mlp(k=64, hidden=96, n=40), path)
        calib = np.random.default_rng(0).normal(size=(24, 5, 64)).astype(np.float32)
        input_name = "x"
    else:
        try:
            path = load_model_path(name)
        except FlexiqError as e:
            pytest.skip(f"test material missing ({e}); run scripts/install_test_material.sh")
        spec = input_specs(path)[0]
        calib = np.random.default_rng(0).uniform(0, 1, [16] + [d or 224 for d in spec.shape[1:]]).astype(np.float32)
        input_name = spec.name
    result = _convert(tmp_path, name, path, calib, input_name)
    kinds = _edge_kinds(result.files["flexiq_onnx"])
    workspace = sum(o == EdgeKind.WORKSPACE for _, o in kinds)
    assert workspace >= 1 and workspace == sum(i == EdgeKind.WORKSPACE for i, _ in kinds)
    marked = (sum(o > 0 for _, o in kinds), sum(i > 0 for i, _ in kinds))
    built = build_engine(result.files["flexiq_onnx"], tmp_path / f"{name}.engine", trt=rtx,
                         compute_capabilities=(86, 89), min_batch=1, opt_batch=4, max_batch=8)
    assert built.num_layers == len(kinds)
    assert (built.int8_outputs, built.int8_inputs) == marked
    assert built.size_bytes > 10_000
    print(f"{name}: {len(kinds)} plugin layers, {workspace} workspace edges, INT8 out/in {marked}, "
          f"engine {built.size_bytes} bytes")
