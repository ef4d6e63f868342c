"""benchmarks/gpu_check.py on a machine without a GPU: the dry run and the clean refusal."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO

SCRIPT = REPO / "scripts" / "gpu_check.sh"


def _run(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHON=sys.executable, CUDA_VISIBLE_DEVICES="", **(env_extra or {}))
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)


def test_dry_run_prints_plan_and_estimate_within_8_minutes():
    proc = _run("--dry-run", "--skip-tests")
    assert proc.returncode == 0, proc.stderr
    for step in ("startup", "spot_check", "timing", "ratio_switch", "total"):
        assert step in proc.stdout
    total = next(line for line in proc.stdout.splitlines() if line.strip().startswith("total"))
    assert 0 < float(total.split()[1]) <= 480


def test_refuses_cleanly_without_gpu(tmp_path):
    proc = _run("--skip-tests", env_extra={"OUT": str(tmp_path / "out")})
    assert proc.returncode == 2
    assert "gpu_check: refused:" in proc.stderr and "Traceback" not in proc.stderr
    assert "total" in proc.stdout  # the estimate is printed before anything runs
    assert not (tmp_path / "out" / "gpu_check.json").exists()


def test_plan_estimate_scales_with_iterations():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import gpu_check
    small = sum(p.estimate_s for p in gpu_check.make_plan(gpu_check.CheckConfig(skip_tests=True, iters=10)))
    large = sum(p.estimate_s for p in gpu_check.make_plan(gpu_check.CheckConfig(skip_tests=True, iters=500)))
    assert large > small


def test_layers_are_checked_at_the_converters_group_size():
    """By default each timed layer runs at the G the converter would give it; 32 or 64 force one G."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = gpu_check  # dataclasses resolve their module by name
    spec.loader.exec_module(gpu_check)
    from flexiq_trt.plugin_spec import auto_group_size

    layers = gpu_check.BENCH_LAYERS
    by_default = {lay.name: gpu_check.layer_g(gpu_check.CheckConfig(), lay) for lay in layers}
    assert by_default == {lay.name: auto_group_size(lay.in_channels) for lay in layers}
    assert 64 in by_default.values()
    assert {gpu_check.layer_g(gpu_check.CheckConfig(group_size=32), lay) for lay in layers} == {32}
