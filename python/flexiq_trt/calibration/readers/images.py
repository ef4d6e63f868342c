"""A folder of images, preprocessed with Pillow into the model's single image input.

The preprocessing is the common classification recipe, stated explicitly in one dataclass so the
report can record exactly what the model saw: resize the shorter side, center-crop, scale pixel
values, subtract mean and divide by std per channel, reorder channels and lay out as NCHW/NHWC.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flexiq_trt.calibration.config import CalibConfig
from flexiq_trt.calibration.model_io import InputSpec
from flexiq_trt.calibration.readers.base import BaseReader, resolve_batch_size, skip_partial_batch
from flexiq_trt.errors import CalibrationDataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
DEFAULT_CROP_FRACTION = 0.875  # resize to size / 0.875 then crop, as ImageNet evaluation does


@dataclass(frozen=True)
class ImagePreprocess:
    """Everything that turns an image file into one sample of the model's input."""

    size: tuple[int, int]  # (height, width) after the center crop
    resize: int  # shorter side before cropping
    layout: str  # "NCHW" or "NHWC"
    channel_order: str  # "RGB" or "BGR" (ignored for grayscale)
    grayscale: bool
    mean: tuple[float, ...]  # one value per channel, applied after scaling
    std: tuple[float, ...]
    scale: float  # applied to 0..255 pixel values first

    @classmethod
    def for_input(cls, spec: InputSpec, config: CalibConfig, source: str) -> ImagePreprocess:
        """Derive the spec from the model's image input and the config (config wins where set)."""
        if spec.rank != 4:
            raise CalibrationDataError(
                f"{source}: an image folder needs a rank-4 image input, but '{spec.name}' is {spec.describe()}"
            )
        layout = _layout(spec, config.image_layout, source)
        c_axis, h_axis, w_axis = (1, 2, 3) if layout == "NCHW" else (3, 1, 2)
        channels = spec.shape[c_axis]
        if channels not in (1, 3):
            raise CalibrationDataError(
                f"{source}: input '{spec.name}' {spec.describe()} has {channels} channels in {layout}; "
                "images give 1 (grayscale) or 3"
            )
        size = _crop_size(spec, (spec.shape[h_axis], spec.shape[w_axis]), config.image_size, source)
        resize = config.image_resize or int(round(max(size) / DEFAULT_CROP_FRACTION))
        mean = _per_channel(config.image_mean, channels, "image_mean", source)
        std = _per_channel(config.image_std, channels, "image_std", source)
        return cls(
            size, resize, layout, config.image_channel_order, channels == 1, mean, std, config.image_scale
        )

    def load(self, path: Path) -> np.ndarray:
        """One preprocessed sample (no batch axis), float32 in the model's layout."""
        from PIL import Image  # lazy: Pillow is only needed for image folders

        try:
            with Image.open(path) as image:
                image = image.convert("L" if self.grayscale else "RGB")
                image = _resize_shorter(image, self.resize)
                image = _center_crop(image, self.size)
                pixels = np.asarray(image, dtype=np.float32)
        except OSError as exc:
            raise CalibrationDataError(f"{path}: cannot read image ({exc})") from exc
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        elif self.channel_order == "BGR":
            pixels = pixels[:, :, ::-1]
        pixels = (pixels * np.float32(self.scale) - np.asarray(self.mean, np.float32)) / np.asarray(
            self.std, np.float32
        )
        if self.layout == "NCHW":
            pixels = pixels.transpose(2, 0, 1)
        return np.ascontiguousarray(pixels, dtype=np.float32)


def _layout(spec: InputSpec, requested: str, source: str) -> str:
    if requested != "auto":
        return requested
    if spec.shape[1] in (1, 3):
        return "NCHW"
    if spec.shape[3] in (1, 3):
        return "NHWC"
    raise CalibrationDataError(
        f"{source}: cannot tell the layout of input '{spec.name}' {spec.describe()}; set image_layout"
    )


def _crop_size(
    spec: InputSpec, dims: tuple[int | None, int | None], requested: int | None, source: str
) -> tuple[int, int]:
    if None not in dims:
        if requested is not None and (requested, requested) != dims:
            raise CalibrationDataError(
                f"{source}: image_size={requested} conflicts with the static input '{spec.name}' {spec.describe()}"
            )
        return (int(dims[0]), int(dims[1]))
    if requested is None:
        raise CalibrationDataError(
            f"{source}: input '{spec.name}' {spec.describe()} has dynamic height/width; set image_size"
        )
    return (requested, requested)


def _per_channel(values: tuple[float, ...], channels: int, field: str, source: str) -> tuple[float, ...]:
    if len(values) == channels:
        return tuple(values)
    if len(values) == 1:
        return tuple(values) * channels
    raise CalibrationDataError(
        f"{source}: {field} has {len(values)} values but the model's image input has {channels} channel(s)"
    )


def _resize_shorter(image, shorter: int):
    from PIL import Image

    width, height = image.size
    ratio = shorter / min(width, height)
    new_size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
    return image.resize(new_size, Image.Resampling.BILINEAR) if new_size != image.size else image


def _center_crop(image, size: tuple[int, int]):
    from PIL import Image

    height, width = size
    if image.size[0] < width or image.size[1] < height:  # resize smaller than crop: upscale to fit
        ratio = max(width / image.size[0], height / image.size[1])
        image = image.resize(
            (math.ceil(image.size[0] * ratio), math.ceil(image.size[1] * ratio)), Image.Resampling.BILINEAR
        )
    left = (image.size[0] - width) // 2
    top = (image.size[1] - height) // 2
    return image.crop((left, top, left + width, top + height))


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively, so class sub-folders work), in a stable order."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


class ImageFolderReader(BaseReader):
    """Batches of preprocessed images for a single-input image model; loads one batch at a time."""

    def __init__(self, folder: str | Path, specs: Sequence[InputSpec], config: CalibConfig) -> None:
        folder = Path(folder)
        if len(specs) != 1:
            raise CalibrationDataError(
                f"{folder}: an image folder can only feed a single-input model, but the model has inputs "
                f"{[spec.name for spec in specs]}; use an .npz or a data-loader script"
            )
        super().__init__(str(folder), specs, config.max_samples)
        self.preprocess = ImagePreprocess.for_input(specs[0], config, str(folder))
        self.batch_size = resolve_batch_size(specs, config.batch_size, str(folder))
        self.files = list_images(folder)
        if config.max_samples is not None:
            self.files = self.files[: config.max_samples]
        if not self.files:
            raise CalibrationDataError(
                f"{folder}: the calibration set is empty (no {'/'.join(IMAGE_SUFFIXES)} files)"
            )

    def num_batches(self) -> int | None:
        """Batches in one pass."""
        return math.ceil(len(self.files) / self.batch_size)

    def _raw_batches(self) -> Iterator[dict[str, np.ndarray]]:
        name = self.specs[0].name
        for start in range(0, len(self.files), self.batch_size):
            if skip_partial_batch(self.specs, len(self.files) - start, self.batch_size, self.source):
                return
            chunk = self.files[start : start + self.batch_size]
            yield {name: np.stack([self.preprocess.load(path) for path in chunk])}
