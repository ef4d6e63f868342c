"""The real `convert` output (not the test generator) parses and builds with TensorRT-RTX for SM86/SM89."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from _utils import models
from _utils.configs import NO_BLOCK_ROUNDING

import flexiq_trt
from flexiq_trt.conversion import ConvertConfig
from flexiq_trt.plugin_spec import PLUGIN_OPS
from flexiq_trt.ratios import load_ratio_table
from flexiq_trt.runtime.engine_builder import build_engine

pytestmark = [pytest.mark.plugin, pytest.mark.rtx]


def _convert(tmp, name: str, model: onnx.ModelProto, calib_shape: tuple[int, ...]):
    onnx.save(model, tmp / f"{name}.onnx")
    np.savez(tmp / f"{name}_calib.npz", x=np.random.default_rng(0).normal(size=calib_shape).astype(np.float32))
    cfg = ConvertConfig(selector="greedy", ort_baseline=False, report=False, baselines=False)
    return flexiq_trt.convert(tmp / f"{name}.onnx", calib=str(tmp / f"{name}_calib.npz"), output_dir=tmp / name,
                              config=cfg, refine=NO_BLOCK_ROUNDING)


@pytest.mark.parametrize("name", ["conv_bn_relu", "mlp"])
def test_converted_model_builds_for_sm86_and_sm89(rtx, tmp_path, name) -> None:
    if name == "conv_bn_relu":  # dynamic batch "N"
        result = _convert(tmp_path, name, models.conv_bn_relu(c_in=64, c_out=32, hw=8), (24, 64, 8, 8))
    else:  # rank-3 MatMul input [1, T, K]
        result = _convert(tmp_path, name, models.mlp(k=64, hidden=96, n=40), (24, 5, 64))
    plug = onnx.load(str(result.files["flexiq_onnx"]))
    n_plugins = sum(node.op_type in PLUGIN_OPS for node in plug.graph.node)
    assert n_plugins >= 1
    built = build_engine(result.files["flexiq_onnx"], tmp_path / f"{name}.engine", trt=rtx,
                         compute_capabilities=(86, 89), min_batch=1, opt_batch=4, max_batch=8)
    assert built.num_layers == result.table.num_layers == n_plugins
    assert built.size_bytes > 10_000


def _marked_int8(path) -> tuple[int, int]:
    """(plugin nodes with output_int8, with input_int8) in a plugin ONNX."""
    nodes = [{a.name: a.i for a in n.attribute} for n in onnx.load(str(path)).graph.node if n.op_type in PLUGIN_OPS]
    return sum(n["output_int8"] for n in nodes), sum(n["input_int8"] for n in nodes)


@pytest.mark.parametrize("model_name", ["fmnist_resnet", "pplcnet_orientation"])
def test_real_pretrained_model_converts_and_builds(rtx, tmp_path, real_conversions, model_name) -> None:
    """TEST-MATERIAL models (shipped Fashion-MNIST ResNet, pretrained PP-LCNet) -> strongly typed engines for SM86/SM89.

    The conversions are the session's real ones (tests/conftest.py: real_conversions). TensorRT types
    exactly the layers the converter marked as INT8 edges INT8 (docs/design.md §2.8): the ResNet's
    conv -> ReLU -> conv chains; PP-LCNet's 1x1 convolutions meet only depthwise ones, so it has none.
    """
    files = real_conversions[model_name]
    built = build_engine(files["flexiq_onnx"], tmp_path / f"{model_name}.engine", trt=rtx,
                         compute_capabilities=(86, 89), min_batch=1, opt_batch=4, max_batch=8)
    assert built.num_layers == load_ratio_table(files["sidecar"]).num_layers >= 10
    assert (built.int8_outputs, built.int8_inputs) == _marked_int8(files["flexiq_onnx"])
    assert built.int8_outputs >= (3 if model_name == "fmnist_resnet" else 0)
