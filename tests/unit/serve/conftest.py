"""A real conversion shared by the serving tests (ratio table, report.json, plugin ONNX)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from _utils import models
from _utils.configs import NO_BLOCK_ROUNDING_FLAG


@pytest.fixture(scope="session")
def converted(tmp_path_factory):
    """`flexiq-trt convert` on a small residual block with a dynamic batch axis (greedy selector)."""
    tmp = tmp_path_factory.mktemp("serve_conv")
    onnx.save(models.conv_bn_relu(c_in=64, c_out=64, hw=8, batch="N"), tmp / "cbr.onnx")
    x = np.random.default_rng(0).normal(size=(64, 64, 8, 8)).astype(np.float32)
    np.savez(tmp / "calib.npz", x=x)
    out = tmp / "out"
    proc = subprocess.run([sys.executable, "-m", "flexiq_trt", "convert", NO_BLOCK_ROUNDING_FLAG, str(tmp / "cbr.onnx"), "--calib",
                           str(tmp / "calib.npz"), "-o", str(out), "--selector", "greedy"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out
