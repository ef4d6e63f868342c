"""Skip gates for tests that read installed test material (scripts/install_test_material.sh)."""

from __future__ import annotations

import importlib.util

import pytest


def require_package(name: str) -> None:
    """Skip, naming the installer, when a test-material package is absent."""
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"test material '{name}' not installed: run scripts/install_test_material.sh")
