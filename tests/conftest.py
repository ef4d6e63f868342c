"""Shared fixtures and the hardware/tier gates for the whole suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _utils.configs import NO_BLOCK_ROUNDING

REPO = Path(__file__).resolve().parents[1]


def gpu_available() -> tuple[bool, str]:
    """Whether a CUDA GPU with a driver is visible, and why not."""
    if os.environ.get("FLEXIQ_NO_GPU"):
        return False, "FLEXIQ_NO_GPU is set"
    if shutil.which("nvidia-smi") is None:
        return False, "no NVIDIA driver on this machine (nvidia-smi not found)"
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"nvidia-smi failed: {e}"
    if out.returncode != 0 or "GPU" not in out.stdout:
        return False, "nvidia-smi lists no GPU"
    return True, ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    has_gpu, why = gpu_available()
    slow_on = os.environ.get("FLEXIQ_SLOW") == "1" or "slow" in (config.getoption("-m") or "")
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(pytest.mark.skip(reason=f"GPU test: {why}"))
        if "slow" in item.keywords and not slow_on:
            item.add_marker(pytest.mark.skip(reason="slow tier: run with FLEXIQ_SLOW=1 or -m slow"))


@pytest.fixture
def run_cli(tmp_path: Path):
    """Run `python -m flexiq_trt ...` in a subprocess; returns the CompletedProcess."""

    def _run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "flexiq_trt", *args], capture_output=True, text=True,
                              timeout=timeout, cwd=tmp_path)

    return _run


@pytest.fixture(scope="session")
def real_conversions(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """Artifacts of real conversions, by model: the shipped Fashion-MNIST ResNet (10 layers) and the
    pretrained PP-LCNet orientation classifier (18 layers, 163 channel groups).

    Greedy selector, no report, seeded uniform calibration inputs (~10 s each on 2 cores): the layer
    structure, MACs and plugin fields are real, which is what the ratio table, the C++ app and the
    plugin-field fuzzer read. Made once per session for every test that needs them.
    """
    import numpy as np

    import flexiq_trt
    from flexiq_trt.calibration.model_io import input_specs
    from flexiq_trt.datasets.model_zoo import load_model_path
    from flexiq_trt.errors import FlexiqError

    root = tmp_path_factory.mktemp("real_conversions")
    out = {}
    for name in ("fmnist_resnet", "pplcnet_orientation"):
        try:
            path = load_model_path(name)
        except FlexiqError as e:
            pytest.skip(f"test material missing ({e}); run scripts/install_test_material.sh")
        spec = input_specs(path)[0]
        shape = [16] + [d or 224 for d in spec.shape[1:]]
        calib = root / f"{name}_calib.npz"
        np.savez(calib, **{spec.name: np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32)})
        cfg = flexiq_trt.ConvertConfig(selector="greedy", report=False, baselines=False)
        result = flexiq_trt.convert(path, calib=str(calib), output_dir=root / name, config=cfg, refine=NO_BLOCK_ROUNDING)
        out[name] = {kind: Path(f) for kind, f in result.files.items()}
    return out
