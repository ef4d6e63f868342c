"""Fixtures that load real test material once per module."""

from __future__ import annotations

import pytest
from _datasets_helpers import require_fashion_mnist

from flexiq_trt.datasets import fashion_mnist


@pytest.fixture(scope="module")
def fmnist_test() -> fashion_mnist.LabelledImages:
    """The 10k Fashion-MNIST test set, normalised."""
    require_fashion_mnist()
    return fashion_mnist.load("test")
