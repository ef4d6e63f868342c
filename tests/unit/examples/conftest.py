"""Fixtures of the C++ example tests: the flexiq_infer binaries and ratio tables of real conversions.

The binaries are built by scripts/build_plugins.sh into build/examples/cpp (CI runs it in
scripts/setup.sh). Missing binaries skip with the reason, or fail under FLEXIQ_REQUIRE_PLUGIN=1 (CI).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]


def _build_dir() -> Path:
    return Path(os.environ.get("FLEXIQ_BUILD_DIR", REPO / "build"))


def _binary(name: str) -> Path:
    exe = _build_dir() / "examples" / "cpp" / name
    if not exe.is_file():
        reason = f"{exe} not built (scripts/build_plugins.sh builds it; needs nlohmann-json3-dev)"
        if os.environ.get("FLEXIQ_REQUIRE_PLUGIN") == "1":
            pytest.fail(f"{reason} (FLEXIQ_REQUIRE_PLUGIN=1)")
        pytest.skip(reason)
    return exe


@pytest.fixture(scope="session")
def infer_exe() -> Path:
    """build/examples/cpp/flexiq_infer."""
    return _binary("flexiq_infer")


@pytest.fixture(scope="session")
def infer_host_tests_exe() -> Path:
    """build/examples/cpp/flexiq_infer_host_tests."""
    return _binary("flexiq_infer_host_tests")


@pytest.fixture(scope="session")
def real_tables(tmp_path_factory) -> dict[str, Path]:
    """`<stem>.flexiq.json` of real converted models (greedy selector, no report: ~10 s on 2 cores).

    The shipped Fashion-MNIST ResNet (10 layers) and the pretrained PP-LCNet orientation classifier
    (18 layers, 163 channel groups), calibrated on seeded uniform inputs: the table's structure and
    MACs are real, which is what the ratio -> vector rule reads.
    """
    import flexiq_trt
    from flexiq_trt.calibration.model_io import input_specs
    from flexiq_trt.datasets.model_zoo import load_model_path
    from flexiq_trt.errors import FlexiqError

    root = tmp_path_factory.mktemp("real_tables")
    tables = {}
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
        tables[name] = Path(result.files["sidecar"])
    return tables
