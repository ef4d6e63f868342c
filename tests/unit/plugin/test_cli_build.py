"""`flexiq-trt convert` then `flexiq-trt build`, as a user runs them (subprocesses)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from _utils import models
from _utils.configs import NO_BLOCK_ROUNDING_FLAG

pytestmark = [pytest.mark.plugin, pytest.mark.rtx]


def test_convert_then_build_from_the_cli(rtx, run_cli, tmp_path) -> None:
    onnx.save(models.conv_bn_relu(c_in=64, c_out=32, hw=8), tmp_path / "m.onnx")
    np.savez(tmp_path / "c.npz", x=np.random.default_rng(0).normal(size=(16, 64, 8, 8)).astype(np.float32))
    conv = run_cli("convert", NO_BLOCK_ROUNDING_FLAG, str(tmp_path / "m.onnx"), "--calib", str(tmp_path / "c.npz"), "--selector", "greedy",
                   "--no-report", "-o", str(tmp_path / "out"))
    assert conv.returncode == 0, conv.stderr
    built = run_cli("build", str(tmp_path / "out/m.flexiq.onnx"), "-o", str(tmp_path / "m.engine"),
                    "--compute-capabilities", "80", "86", "--max-batch", "16")
    assert built.returncode == 0, built.stderr
    assert "SM 80, 86" in built.stdout and (tmp_path / "m.engine").stat().st_size > 10_000
    bad = run_cli("build", str(tmp_path / "out/m.flexiq.onnx"), "-o", str(tmp_path / "x.engine"),
                  "--min-batch", "4", "--max-batch", "2")
    assert bad.returncode == 1 and "batch range" in bad.stderr and not (tmp_path / "x.engine").exists()
