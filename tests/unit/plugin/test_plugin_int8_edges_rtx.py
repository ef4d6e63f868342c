"""Slow tier: INT8 edges through TensorRT-RTX's strongly typed build on a real transformer and real CNNs.

Each model is converted with default quantization (greedy selector, no report) and built for SM86/SM89;
the plugin layers TensorRT types INT8 must be exactly the ones the converter marked (docs/design.md
§2.8, "INT8 codes between layers"), and each model class must have the edges it structurally has:
MiniLM's six FFN1 -> GELU -> FFN2 pairs, ResNet-50's conv -> ReLU -> conv chains (32 of 53 layers),
EfficientNet-Lite0's one. About 4 minutes on 2 cores.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from _utils.configs import NO_BLOCK_ROUNDING

import flexiq_trt
from flexiq_trt.calibration.model_io import input_specs
from flexiq_trt.conversion import ConvertConfig
from flexiq_trt.datasets.model_zoo import load_model_path
from flexiq_trt.errors import FlexiqError
from flexiq_trt.plugin_spec import PLUGIN_OPS
from flexiq_trt.runtime.engine_builder import build_engine

pytestmark = [pytest.mark.plugin, pytest.mark.rtx, pytest.mark.slow]

EXPECTED_EDGES = {"minilm_l6": 6, "resnet50_light": 32, "efficientnet_lite0": 1}  # docs/coverage.md


def _calibration(name: str, path) -> tuple[dict[str, np.ndarray], dict]:
    """Real sentences for the encoder (and its dynamic batch x sequence profile), uniform images otherwise."""
    if name == "minilm_l6":
        from flexiq_trt.datasets import transformer_encoder as te

        feeds = te.encode_texts(te.english_sentences()[:8], te.minilm_vocab(), 32)
        profile = ((1, 8), (4, 32), (8, 128))
        return feeds, {"input_shapes": {k: profile for k in feeds}}
    spec = input_specs(path)[0]
    shape = [8] + [d or 224 for d in spec.shape[1:]]
    return {spec.name: np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32)}, {}


@pytest.mark.parametrize("name", sorted(EXPECTED_EDGES))
def test_real_model_builds_with_its_int8_edges(rtx, tmp_path, name: str) -> None:
    try:
        path = load_model_path(name)
    except FlexiqError as e:
        pytest.skip(f"test material missing ({e}); see docs/coverage.md for the extra packages")
    feeds, build_extra = _calibration(name, path)
    np.savez(tmp_path / "calib.npz", **feeds)
    cfg = ConvertConfig(selector="greedy", report=False, baselines=False, measure_sensitivity=False)
    result = flexiq_trt.convert(path, calib=str(tmp_path / "calib.npz"), output_dir=tmp_path / "out", config=cfg, refine=NO_BLOCK_ROUNDING)
    nodes = [{a.name: a.i for a in n.attribute}
             for n in onnx.load(str(result.files["flexiq_onnx"])).graph.node if n.op_type in PLUGIN_OPS]
    marked = (sum(n["output_int8"] for n in nodes), sum(n["input_int8"] for n in nodes))
    assert marked[0] == EXPECTED_EDGES[name]
    built = build_engine(result.files["flexiq_onnx"], tmp_path / f"{name}.engine", trt=rtx,
                         compute_capabilities=(86, 89), min_batch=1, opt_batch=4, max_batch=8, **build_extra)
    assert (built.int8_outputs, built.int8_inputs) == marked
    assert built.num_layers == len(nodes)
