"""Fixtures of the C++ example tests: the flexiq_infer binaries and ratio tables of real conversions.

The binaries are built by scripts/build_plugins.sh into build/examples/cpp (CI runs it in
scripts/setup.sh). Missing binaries skip with the reason, or fail under FLEXIQ_REQUIRE_PLUGIN=1 (CI).
"""

from __future__ import annotations

import os
from pathlib import Path

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
def real_tables(real_conversions) -> dict[str, Path]:
    """`<stem>.flexiq.json` of the real conversions (tests/conftest.py: real_conversions)."""
    return {name: files["sidecar"] for name, files in real_conversions.items()}
