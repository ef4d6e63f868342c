"""Skip gates for tests that read installed test material (scripts/install_test_material.sh)."""

from __future__ import annotations

import importlib.util

import pytest

from flexiq_trt.datasets import fashion_mnist


def require_package(name: str) -> None:
    """Skip, naming the installer, when a test-material package is absent."""
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"test material '{name}' not installed: run scripts/install_test_material.sh")


def require_fashion_mnist() -> None:
    """Skip when the Debian Fashion-MNIST files are absent."""
    if not (fashion_mnist.data_dir() / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST not installed: apt-get install dataset-fashion-mnist")
