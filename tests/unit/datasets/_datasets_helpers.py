"""Skip gates for tests that read installed test material (scripts/install_test_material.sh)."""

from __future__ import annotations

import pytest
from _utils.material import require_package  # noqa: F401  (the gate these tests import from here)

from flexiq_trt.datasets import fashion_mnist


def require_fashion_mnist() -> None:
    """Skip when the Debian Fashion-MNIST files are absent."""
    if not (fashion_mnist.data_dir() / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST not installed: apt-get install dataset-fashion-mnist")
