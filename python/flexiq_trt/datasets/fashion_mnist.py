"""Fashion-MNIST from the Debian ``dataset-fashion-mnist`` package, read without any download.

The files are the original idx format: a big-endian header (magic, then one uint32 per
dimension) followed by uint8 data, gzip-compressed. Images are normalised exactly as the
shipped ``fmnist_resnet.onnx`` was trained (see :data:`MEAN`, :data:`STD`), so the arrays feed
that model directly.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flexiq_trt.errors import CalibrationDataError

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV_DIR = "FLEXIQ_FASHION_MNIST_DIR"
INSTALL_HINT = (
    "install it with `apt-get install dataset-fashion-mnist` (or scripts/install_test_material.sh), "
    f"or point {ENV_DIR} at a folder holding the four *-ubyte.gz files"
)
MEAN = 0.2860
"""Mean of the training pixels scaled to [0, 1]; subtracted before dividing by :data:`STD`."""
STD = 0.3530
"""Standard deviation of the training pixels scaled to [0, 1]."""
CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

_FILES = {
    ("train", "images"): "train-images-idx3-ubyte.gz",
    ("train", "labels"): "train-labels-idx1-ubyte.gz",
    ("test", "images"): "t10k-images-idx3-ubyte.gz",
    ("test", "labels"): "t10k-labels-idx1-ubyte.gz",
}
_IDX_UBYTE = 0x08


@dataclass(frozen=True)
class LabelledImages:
    """Normalised float32 images ``[N, 1, 28, 28]`` and int64 labels ``[N]`` in 0..9."""

    images: np.ndarray
    labels: np.ndarray


def data_dir() -> Path:
    """The folder read from: ``$FLEXIQ_FASHION_MNIST_DIR`` if set, else the Debian location."""
    return Path(os.environ.get(ENV_DIR, DEFAULT_DIR))


def read_idx(path: Path) -> np.ndarray:
    """Read one gzip-compressed idx file of unsigned bytes into an array of its stored shape."""
    try:
        raw = gzip.open(path, "rb").read()
    except FileNotFoundError as exc:
        raise CalibrationDataError(f"Fashion-MNIST file {path} not found: {INSTALL_HINT}") from exc
    except (OSError, EOFError) as exc:
        raise CalibrationDataError(f"{path}: not a readable gzip file ({exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UBYTE:
        raise CalibrationDataError(f"{path}: not an idx file of unsigned bytes (bad magic {raw[:4]!r})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise CalibrationDataError(f"{path}: {len(raw)} bytes, expected {expected} for shape {shape}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def normalize(pixels: np.ndarray) -> np.ndarray:
    """uint8 ``[N, 28, 28]`` pixels to the model's float32 ``[N, 1, 28, 28]`` input."""
    scaled = pixels.astype(np.float32) / np.float32(255.0)
    return ((scaled - np.float32(MEAN)) / np.float32(STD))[:, None, :, :]


def load_raw(split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """uint8 images ``[N, 28, 28]`` and uint8 labels ``[N]`` of ``split`` ('train' or 'test')."""
    if split not in ("train", "test"):
        raise CalibrationDataError(f"Fashion-MNIST split must be 'train' or 'test', got {split!r}")
    images = read_idx(data_dir() / _FILES[(split, "images")])
    labels = read_idx(data_dir() / _FILES[(split, "labels")])
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise CalibrationDataError(
            f"Fashion-MNIST {split}: images {images.shape} and labels {labels.shape} do not match"
        )
    return images, labels


def load(split: str = "test", limit: int | None = None, offset: int = 0) -> LabelledImages:
    """Normalised images and labels of ``split``, samples ``offset : offset + limit`` in file order."""
    images, labels = load_raw(split)
    stop = None if limit is None else offset + limit
    return LabelledImages(normalize(images[offset:stop]), labels[offset:stop].astype(np.int64))
