"""A real conversion of a small conv model (greedy selector, no report) shared by the compare tests."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from _utils.configs import NO_BLOCK_ROUNDING


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """(ConvertResult, original ONNX path, held-out .npz path) of Conv-BN-ReLU 64->32 on 8x8.

    G = 32, so the layer has two groups and the ratios 0, 0.5 and 1 are three different vectors (the
    per-layer default would give a 64-channel layer one group of 64: all or nothing).
    """
    from _utils import models

    import flexiq_trt
    from flexiq_trt.conversion import ConvertConfig
    from flexiq_trt.quantization.config import QuantConfig

    tmp = tmp_path_factory.mktemp("compare")
    onnx.save(models.conv_bn_relu(c_in=64, c_out=32, hw=8), tmp / "cbr.onnx")
    rng = np.random.default_rng(0)
    np.savez(tmp / "calib.npz", x=np.abs(rng.normal(size=(48, 64, 8, 8))).astype(np.float32))
    np.savez(tmp / "heldout.npz", x=np.abs(rng.normal(size=(20, 64, 8, 8))).astype(np.float32),
             labels=np.zeros(20, dtype=np.int64))
    cfg = ConvertConfig(selector="greedy", ort_baseline=False, report=False, baselines=False)
    result = flexiq_trt.convert(tmp / "cbr.onnx", calib=str(tmp / "calib.npz"), output_dir=tmp / "out", config=cfg,
                                quant=QuantConfig(group_size=32), refine=NO_BLOCK_ROUNDING)
    return result, tmp / "cbr.onnx", tmp / "heldout.npz"
