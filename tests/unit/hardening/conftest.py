"""Fixtures of the C++ hardening tests: the sanitizer tree build-asan and real converted models.

scripts/build_plugins.sh --hardening builds build-asan (ASan + UBSan, Clang when available; CI runs
it in scripts/setup.sh). Missing binaries skip with the reason, or fail under FLEXIQ_REQUIRE_PLUGIN=1.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]


def asan_dir() -> Path:
    """The sanitizer build tree (FLEXIQ_ASAN_BUILD_DIR, default build-asan/)."""
    return Path(os.environ.get("FLEXIQ_ASAN_BUILD_DIR", REPO / "build-asan"))


def _missing(reason: str) -> None:
    if os.environ.get("FLEXIQ_REQUIRE_PLUGIN") == "1":
        pytest.fail(f"{reason} (FLEXIQ_REQUIRE_PLUGIN=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def asan_binary():
    """Returns the path of a binary in build-asan, given its path inside the tree."""

    def _get(rel: str) -> Path:
        exe = asan_dir() / rel
        if not exe.is_file():
            _missing(f"{exe} not built (scripts/build_plugins.sh --hardening builds it)")
        return exe

    return _get


@pytest.fixture(scope="session")
def asan_cache() -> dict[str, str]:
    """build-asan/CMakeCache.txt as name -> value (compiler, sanitizer flags, fuzz engine)."""
    cache = asan_dir() / "CMakeCache.txt"
    if not cache.is_file():
        _missing(f"{cache} missing (scripts/build_plugins.sh --hardening configures it)")
    out = {}
    for line in cache.read_text().splitlines():
        if ":" in line and "=" in line and not line.startswith(("#", "//")):
            key, value = line.split("=", 1)
            out[key.split(":", 1)[0]] = value
    return out


@pytest.fixture(scope="session")
def real_plugin_models(tmp_path_factory) -> list[Path]:
    """`<stem>.flexiq.onnx` of real conversions (shipped Fashion-MNIST ResNet, pretrained PP-LCNet;
    greedy selector, no report, seeded uniform calibration: ~10 s on 2 cores)."""
    import flexiq_trt
    from flexiq_trt.calibration.model_io import input_specs
    from flexiq_trt.datasets.model_zoo import load_model_path
    from flexiq_trt.errors import FlexiqError

    root = tmp_path_factory.mktemp("real_models")
    models = []
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
        result = flexiq_trt.convert(path, calib=str(calib), output_dir=root / name, config=cfg)
        models.append(Path(result.files["flexiq_onnx"]))
    return models
