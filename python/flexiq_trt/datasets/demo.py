"""Data for the no-argument `convert`: the shipped Fashion-MNIST model with real calibration/eval sets.

Calibration uses a spread of training images; the report is computed on the full 10k labelled
test set, which calibration never sees.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flexiq_trt.datasets import fashion_mnist
from flexiq_trt.datasets.model_zoo import load_model_path

DEMO_MODEL = "fmnist_resnet"
CALIB_SAMPLES = 512


def prepare_demo_data(folder: Path, calib: str | None, eval_data: str | None) -> tuple[str, str, str]:
    """(model path, calibration .npz, evaluation .npz), writing the .npz files into `folder` if needed."""
    model = load_model_path(DEMO_MODEL)
    folder.mkdir(parents=True, exist_ok=True)
    if calib is None:
        calib_path = folder / "fmnist_calib.npz"
        if not calib_path.exists():
            train = fashion_mnist.load("train")
            pick = np.random.default_rng(0).choice(train.images.shape[0], CALIB_SAMPLES, replace=False)
            np.savez(calib_path, input=train.images[np.sort(pick)])
        calib = str(calib_path)
    if eval_data is None:
        eval_path = folder / "fmnist_test.npz"
        if not eval_path.exists():
            test = fashion_mnist.load("test")
            np.savez(eval_path, input=test.images, labels=test.labels)
        eval_data = str(eval_path)
    return str(model), calib, eval_data
