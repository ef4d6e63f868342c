"""The shipped Polygraphy data-loader/network script (runtime/polygraphy_loader.py), on the CPU.

The `polygraphy` command itself runs the script: ONNX Runtime on the original and on the simulation
with the ratio vector fed by `load_data`, and a TensorRT-RTX engine built from `load_network`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from flexiq_trt.errors import CalibrationDataError, ConfigError
from flexiq_trt.plugin_spec import RUNTIME_INPUT
from flexiq_trt.runtime import polygraphy_loader
from flexiq_trt.runtime.polygraphy_loader import RatioFeeds, npz_batches, ratio_feeds_from_env

SCRIPT = Path(polygraphy_loader.__file__)


def test_ratio_feeds_add_the_vector_to_every_batch() -> None:
    feeds = [{"x": np.zeros((2, 3), np.float32)}, {"x": np.ones((1, 3), np.float32)}]
    loader = RatioFeeds(feeds, np.array([32, 0], np.int64))
    assert len(loader) == 2 and [f["x"].shape[0] for f in loader] == [2, 1]
    for f in loader:
        assert f[RUNTIME_INPUT].dtype == np.int32 and f[RUNTIME_INPUT].tolist() == [32, 0]
    loader[0][RUNTIME_INPUT][0] = 7  # callers get copies
    assert loader[0][RUNTIME_INPUT][0] == 32
    with pytest.raises(ConfigError, match="already has"):
        RatioFeeds([{RUNTIME_INPUT: np.zeros(2, np.int32)}], np.zeros(2, np.int32))[0]
    with pytest.raises(ConfigError, match="integer vector"):
        RatioFeeds(feeds, np.array([0.5]))


def test_npz_batches(tmp_path) -> None:
    np.savez(tmp_path / "d.npz", x=np.arange(10, dtype=np.float32).reshape(5, 2), labels=np.arange(5))
    batches = npz_batches(tmp_path / "d.npz", None, 2)
    assert [sorted(b) for b in batches] == [["x"]] * 3 and [b["x"].shape[0] for b in batches] == [2, 2, 1]
    assert len(npz_batches(tmp_path / "d.npz", ["x"], 2, limit=2)) == 2
    with pytest.raises(CalibrationDataError, match=r"missing array\(s\) for input\(s\) \['y'\]"):
        npz_batches(tmp_path / "d.npz", ["y"], 2)
    with pytest.raises(CalibrationDataError, match="not found"):
        npz_batches(tmp_path / "none.npz", None, 2)


def _env(converted, ratio: str) -> dict[str, str]:
    result, _, heldout = converted
    return {"FLEXIQ_DATA": str(heldout), "FLEXIQ_RATIO_TABLE": str(result.files["sidecar"]), "FLEXIQ_RATIO": ratio,
            "FLEXIQ_BATCH_SIZE": "4", "FLEXIQ_ITERATIONS": "2"}


def test_loader_reads_its_environment(converted, monkeypatch) -> None:
    result, _, _ = converted
    for k, v in _env(converted, "0.5").items():
        monkeypatch.setenv(k, v)
    loader = ratio_feeds_from_env(register=False)
    assert len(loader) == 2 and loader[0]["x"].shape == (4, 64, 8, 8)
    assert loader[0][RUNTIME_INPUT].tolist() == result.table.vector(0.5).tolist()
    monkeypatch.setenv("FLEXIQ_RATIO", "half")
    with pytest.raises(ConfigError, match="FLEXIQ_RATIO='half' is not a valid float"):
        ratio_feeds_from_env(register=False)
    monkeypatch.delenv("FLEXIQ_RATIO_TABLE")
    monkeypatch.setenv("FLEXIQ_RATIO", "0.5")
    with pytest.raises(ConfigError, match="set FLEXIQ_RATIO_TABLE"):
        ratio_feeds_from_env(register=False)


def _polygraphy(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("polygraphy") or str(Path(sys.executable).parent / "polygraphy")
    import os

    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, **env})


@pytest.mark.rtx
@pytest.mark.plugin
def test_polygraphy_run_with_the_script_on_original_and_simulation(converted, tmp_path) -> None:
    pytest.importorskip("tensorrt_rtx")
    result, original, _ = converted
    env = _env(converted, "1.0")
    ref = _polygraphy("run", str(original), "--onnxrt", "--data-loader-script", f"{SCRIPT}:load_data",
                      "--save-outputs", "ort.json", env=env, cwd=tmp_path)
    assert ref.returncode == 0, ref.stdout + ref.stderr
    run = _polygraphy("run", str(result.files["sim_onnx"]), "--onnxrt", "--data-loader-script", f"{SCRIPT}:load_data",
                      "--load-outputs", "ort.json", "--atol", "0.1", "--rtol", "0.1", "--check-error-stat", "median",
                      env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Passed: 2/2 iterations" in run.stdout + run.stderr
    # And with a tolerance of zero the same run fails: the comparison is real.
    strict = _polygraphy("run", str(result.files["sim_onnx"]), "--onnxrt", "--data-loader-script",
                         f"{SCRIPT}:load_data", "--load-outputs", "ort.json", "--atol", "0", "--rtol", "0",
                         "--check-error-stat", "max", env=env, cwd=tmp_path)
    assert strict.returncode != 0


@pytest.mark.rtx
@pytest.mark.plugin
def test_polygraphy_builds_an_engine_from_the_network_script(converted, tmp_path) -> None:
    pytest.importorskip("tensorrt_rtx")
    from flexiq_trt.runtime.plugin_loader import find_plugin_library

    result, _, _ = converted
    env = {"POLYGRAPHY_USE_TENSORRT_RTX": "1", "FLEXIQ_ONNX": str(result.files["flexiq_onnx"]),
           "FLEXIQ_PLUGIN_LIB": str(find_plugin_library())}
    run = _polygraphy("convert", f"{SCRIPT}:load_network", "--model-type", "trt-network-script", "--convert-to", "trt",
                      "--compute-capabilities", "8.6", "--trt-min-shapes", "x:[1,64,8,8]", "--trt-opt-shapes",
                      "x:[4,64,8,8]", "--trt-max-shapes", "x:[8,64,8,8]", "-o", "pg.engine", env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    data = (tmp_path / "pg.engine").read_bytes()
    assert len(data) > 10_000 and b"FlexiQConv" in data and RUNTIME_INPUT.encode() in data
