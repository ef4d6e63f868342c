"""The shipped Fashion-MNIST ResNet and its data as .npz files, for tests that run a real conversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flexiq_trt.errors import FlexiqError


def fmnist_material(tmp: Path, calib: int, evaluate: int) -> tuple[Path, Path, Path]:
    """(model, calibration .npz of `calib` training images, labelled evaluation .npz of `evaluate` test images).

    Skips the calling test with the install command when the model or the dataset is missing.
    """
    from flexiq_trt.datasets import fashion_mnist
    from flexiq_trt.datasets.model_zoo import load_model_path

    try:
        model = load_model_path("fmnist_resnet")
        train, test = fashion_mnist.load("train", limit=calib), fashion_mnist.load("test", limit=evaluate)
    except FlexiqError as e:
        pytest.skip(f"test material missing ({e}); run scripts/install_test_material.sh")
    np.savez(tmp / "calib.npz", input=train.images)
    np.savez(tmp / "eval.npz", input=test.images, labels=test.labels)
    return Path(model), tmp / "calib.npz", tmp / "eval.npz"


def selected_state(model: Path, calib: Path, heldout: Path):
    """A ConversionState of the fmnist model run up to selection (greedy), for the post-selection stages' tests."""
    from flexiq_trt.calibration.config import CalibConfig
    from flexiq_trt.conversion import ConversionState, ConvertConfig
    from flexiq_trt.pipeline import convert as pipeline
    from flexiq_trt.quantization.config import QuantConfig
    from flexiq_trt.select.config import SearchConfig

    state = ConversionState(model, CalibConfig(data=str(calib), batch_size=64), QuantConfig(),
                            ConvertConfig(selector="greedy", eval_data=str(heldout)))
    pipeline.intake(state)
    pipeline.split_data(state)
    pipeline.calibrate_and_quantize(state)
    pipeline.select(state, SearchConfig())
    return state


def report_config(heldout: Path):
    """The ConvertConfig of the end-to-end post-selection tests: greedy, no baselines, report at 0% and 100%."""
    from flexiq_trt.conversion import ConvertConfig

    return ConvertConfig(selector="greedy", eval_data=str(heldout), baselines=False, ort_baseline=False,
                         measure_sensitivity=False, report_ratios=(0.0, 1.0))
