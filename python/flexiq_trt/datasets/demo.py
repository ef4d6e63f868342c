"""Data for the no-argument `convert`: a real pretrained model with real calibration and held-out sets.

Two demos, chosen with ``--demo``:

* ``orientation`` (default): the pretrained PP-LCNet document-orientation classifier
  (datasets/orientation.py) on labelled rotations of real photos and scans. Its agreement with
  the FP32 model falls visibly as the 4-bit ratio grows, so the demo shows the trade-off FlexiQ
  serves. Calibration and evaluation come from disjoint source photos.
* ``fmnist``: the shipped Fashion-MNIST ResNet, calibrated on training images and evaluated on
  the 10k labelled test images. Its accuracy is the same at every ratio (the model is small and
  easy), which makes it a check of the machinery rather than a demonstration.

The sizes are chosen so that the default conversion (default search settings) finishes in about
two minutes on 2 cores and the evaluation set is above report/intervals.py's MIN_RANKING_SAMPLES.
The .npz files are written once into the given folder and reused. Data modules are imported
only when a demo runs, so that the CLI, which reads :class:`DemoConfig`, starts quickly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flexiq_trt.errors import ConfigError
from flexiq_trt.options import option

FMNIST_MODEL = "fmnist_resnet"
FMNIST_CALIB_SAMPLES = 512
ORIENTATION_MODEL = "pplcnet_orientation"
ORIENTATION_CALIB_CROPS = 2
"""Crops per calibration photo: 11 photos x 2 crops x 4 rotations = 88 inputs (64 fitness + 24 guard)."""
ORIENTATION_EVAL_CROPS = 2
"""Crops per held-out photo: 22 other photos x 2 crops x 4 rotations = 176 inputs."""


@dataclass(frozen=True)
class DemoConfig:
    """What `convert` runs when no model is given."""

    demo: str = option("orientation", "model and data of the no-MODEL demo: 'orientation' (pretrained "
                       "PP-LCNet on rotated real photos; shows the accuracy trade-off) or 'fmnist' (the shipped "
                       "Fashion-MNIST ResNet and its 10k test images)", choices=("orientation", "fmnist"))


def _save(path: Path, make: Callable[[], dict[str, np.ndarray]]) -> str:
    """Write `make()` to `path` unless it exists (atomic rename); returns the path."""
    if not path.exists():
        tmp = path.with_name(f".{path.stem}.tmp.npz")
        np.savez(tmp, **make())
        tmp.replace(path)
    return str(path)


def _fmnist(folder: Path) -> tuple[Path, Callable[[], str], Callable[[], str]]:
    from flexiq_trt.datasets import fashion_mnist
    from flexiq_trt.datasets.model_zoo import load_model_path

    def calib() -> str:
        def make() -> dict[str, np.ndarray]:
            train = fashion_mnist.load("train")
            pick = np.random.default_rng(0).choice(train.images.shape[0], FMNIST_CALIB_SAMPLES, replace=False)
            return {"input": train.images[np.sort(pick)]}

        return _save(folder / "fmnist_calib.npz", make)

    def heldout() -> str:
        def make() -> dict[str, np.ndarray]:
            test = fashion_mnist.load("test")
            return {"input": test.images, "labels": test.labels}

        return _save(folder / "fmnist_test.npz", make)

    return load_model_path(FMNIST_MODEL), calib, heldout


def _orientation(folder: Path) -> tuple[Path, Callable[[], str], Callable[[], str]]:
    from flexiq_trt.datasets import orientation
    from flexiq_trt.datasets.model_zoo import load_model_path

    def calib() -> str:
        def make() -> dict[str, np.ndarray]:
            return {orientation.INPUT_NAME: orientation.load("calibration", ORIENTATION_CALIB_CROPS).inputs}

        return _save(folder / f"orientation_calib_c{ORIENTATION_CALIB_CROPS}.npz", make)

    def heldout() -> str:
        def make() -> dict[str, np.ndarray]:
            data = orientation.load("heldout", ORIENTATION_EVAL_CROPS)
            return {orientation.INPUT_NAME: data.inputs, "labels": data.labels}

        return _save(folder / f"orientation_heldout_c{ORIENTATION_EVAL_CROPS}.npz", make)

    return load_model_path(ORIENTATION_MODEL), calib, heldout


DEMOS = {"orientation": _orientation, "fmnist": _fmnist}


def prepare_demo_data(folder: Path, calib: str | None, eval_data: str | None,
                      demo: str = "orientation") -> tuple[str, str, str]:
    """(model path, calibration .npz, evaluation .npz), writing the .npz files into `folder` if needed.

    A `calib` or `eval_data` given by the user is used as it is.
    """
    if demo not in DEMOS:
        raise ConfigError(f"--demo must be one of {sorted(DEMOS)}, got {demo!r}")
    folder.mkdir(parents=True, exist_ok=True)
    model, make_calib, make_eval = DEMOS[demo](folder)
    return str(model), calib if calib is not None else make_calib(), eval_data if eval_data is not None else make_eval()
