"""Shared fixtures and the hardware/tier gates for the whole suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
