"""Bad input: one clear line naming the problem, exit status 1, and no files left behind."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from _utils import models
from _utils.configs import NO_BLOCK_ROUNDING_FLAG


def _assert_clean_failure(proc, out_dir, *needles):
    assert proc.returncode == 1, proc.stderr
    err_lines = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(err_lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle.lower() in err_lines[0].lower(), err_lines[0]
    assert not out_dir.exists() or not any(out_dir.iterdir()), list(out_dir.iterdir())
    assert not [p for p in out_dir.parent.iterdir() if p.name.startswith(".") and p.is_dir()
                and p.name != ".demo_data"], "temporary folder left behind"


@pytest.fixture
def res_model(tmp_path):
    onnx.save(models.residual_block(c=64, hw=8), tmp_path / "res.onnx")
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).normal(size=(16, 64, 8, 8)).astype(np.float32))
    return tmp_path


def convert(run_cli, tmp, *args):
    out = tmp / "out"
    return run_cli("convert", NO_BLOCK_ROUNDING_FLAG, *map(str, args), "-o", str(out), "--selector", "greedy", "--no-report"), out


def test_not_an_onnx_file(run_cli, tmp_path):
    (tmp_path / "m.onnx").write_text("this is not a model")
    np.savez(tmp_path / "c.npz", x=np.zeros((4, 3), np.float32))
    proc, out = convert(run_cli, tmp_path, tmp_path / "m.onnx", "--calib", tmp_path / "c.npz")
    _assert_clean_failure(proc, out, "m.onnx")


def test_truncated_file(run_cli, res_model):
    data = (res_model / "res.onnx").read_bytes()
    (res_model / "t.onnx").write_bytes(data[: len(data) // 2])
    proc, out = convert(run_cli, res_model, res_model / "t.onnx", "--calib", res_model / "calib.npz")
    _assert_clean_failure(proc, out, "t.onnx")


def test_no_eligible_layer(run_cli, tmp_path):
    onnx.save(models.depthwise_only(), tmp_path / "dw.onnx")
    m = onnx.load(str(tmp_path / "dw.onnx"))
    shape = [d.dim_value or 2 for d in m.graph.input[0].type.tensor_type.shape.dim]
    np.savez(tmp_path / "c.npz", **{m.graph.input[0].name: np.ones([8, *shape[1:]], np.float32)})
    proc, out = convert(run_cli, tmp_path, tmp_path / "dw.onnx", "--calib", tmp_path / "c.npz")
    _assert_clean_failure(proc, out, "no layer is eligible")


def test_already_quantized(run_cli, tmp_path):
    onnx.save(models.conv_integer_model(), tmp_path / "q.onnx")
    np.savez(tmp_path / "c.npz", x=np.zeros((4, 3), np.float32))
    proc, out = convert(run_cli, tmp_path, tmp_path / "q.onnx", "--calib", tmp_path / "c.npz")
    _assert_clean_failure(proc, out, "already quantized")


@pytest.mark.parametrize("arrays, needle", [
    ({"wrong_name": np.zeros((4, 64, 8, 8), np.float32)}, "x"),
    ({"x": np.zeros((4, 32, 8, 8), np.float32)}, "shape"),
    ({"x": np.zeros((4, 64, 8, 8), np.int64)}, "int64"),
    ({"x": np.zeros((0, 64, 8, 8), np.float32)}, "empty"),
])
def test_bad_calibration_data(run_cli, res_model, arrays, needle):
    np.savez(res_model / "bad.npz", **arrays)
    proc, out = convert(run_cli, res_model, res_model / "res.onnx", "--calib", res_model / "bad.npz")
    _assert_clean_failure(proc, out, "bad.npz", needle)


def test_missing_calibration_is_refused(run_cli, res_model):
    proc, out = convert(run_cli, res_model, res_model / "res.onnx")
    _assert_clean_failure(proc, out, "calibration")


def test_synthetic_needs_explicit_opt_in_and_is_flagged(run_cli, res_model):
    proc, out = convert(run_cli, res_model, res_model / "res.onnx", "--calib", "synthetic")
    _assert_clean_failure(proc, out, "synthetic")
    out2 = res_model / "out2"
    ok = run_cli("convert", NO_BLOCK_ROUNDING_FLAG, str(res_model / "res.onnx"), "--calib", "synthetic", "--allow-synthetic",
                 "--selector", "greedy", "--no-ort-baseline", "--no-baselines", "-o", str(out2))
    assert ok.returncode == 0, ok.stderr
    assert "SYNTHETIC" in (out2 / "report.md").read_text()


@pytest.mark.parametrize("ratio", ["-0.1", "1.5", "nan"])
def test_ratio_out_of_range(run_cli, res_model, ratio):
    ok = run_cli("convert", NO_BLOCK_ROUNDING_FLAG, str(res_model / "res.onnx"), "--calib", str(res_model / "calib.npz"),
                 "--selector", "greedy", "--no-report", "-o", str(res_model / "o"))
    assert ok.returncode == 0, ok.stderr
    proc = run_cli("ratio", str(res_model / "o/res.flexiq.json"), ratio)
    assert proc.returncode == 1 and "ratio must be a number in [0, 1]" in proc.stderr


def test_ladder_out_of_range(run_cli, res_model):
    proc, out = convert(run_cli, res_model, res_model / "res.onnx", "--calib", res_model / "calib.npz",
                        "--ladder", "0", "0.5", "2")
    _assert_clean_failure(proc, out, "ladder")
