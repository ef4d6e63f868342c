"""The calibration stage's options (one frozen dataclass for the Python API and the CLI).

Fields are declared with `flexiq_trt.options.option`, from which the CLI generates its flags;
values are validated in ``__post_init__`` with errors that name the field.
"""

from __future__ import annotations

from dataclasses import dataclass

from flexiq_trt.errors import ConfigError
from flexiq_trt.options import option

# Must equal the keys of flexiq_trt.calibration.scales.THRESHOLD_METHODS (a unit test checks it);
# kept literal here so this module imports nothing heavy and has no import cycle.
CALIB_METHODS = ("mse", "percentile", "max")
IMAGE_LAYOUTS = ("auto", "NCHW", "NHWC")
CHANNEL_ORDERS = ("RGB", "BGR")
SYNTHETIC_DISTRIBUTIONS = ("normal", "uniform")


@dataclass(frozen=True)
class CalibConfig:
    """How calibration data is read and how activation scales are chosen."""

    data: str | None = option(
        None,
        "Calibration data: an .npz (arrays keyed by input name, axis 0 = samples), an .npy (single-input "
        "models), a folder of images, a data-loader script 'file.py[:func]' (default func load_data) "
        "returning feed dicts, or 'synthetic[:normal|uniform]' to opt in to random data.",
        flags=("--calib",),
    )
    batch_size: int = option(8, "Samples per calibration batch (a static batch dimension of the model wins).")
    max_samples: int | None = option(512, "Use at most this many calibration samples (None: all).")
    method: str = option("mse", "How the activation clipping threshold is chosen.", choices=CALIB_METHODS)
    percentile: float = option(99.99, "Percentile of |x| used as threshold by method 'percentile'.")
    num_bins: int = option(2048, "Bins of the streaming |x| histogram per tensor (even; memory is fixed).")
    tensors_per_pass: int = option(
        0, "Observe at most this many tensors per pass over the data (0: all in one pass); bounds memory."
    )
    synthetic_samples: int = option(32, "Number of random samples for 'synthetic' data.")
    synthetic_distribution: str = option(
        "normal",
        "Distribution of synthetic float inputs (normal: N(0,1), uniform: U[-1,1)).",
        choices=SYNTHETIC_DISTRIBUTIONS,
    )
    seed: int = option(0, "Seed for synthetic data.")
    image_size: int | None = option(None, "Center-crop size for image folders (default: the model's H/W).")
    image_resize: int | None = option(
        None, "Resize the shorter image side to this before cropping (default: size/0.875)."
    )
    image_layout: str = option(
        "auto", "Layout of the image input (auto: from the model's input shape).", choices=IMAGE_LAYOUTS
    )
    image_channel_order: str = option("RGB", "Channel order the model expects.", choices=CHANNEL_ORDERS)
    image_mean: tuple[float, ...] = option(
        (0.485, 0.456, 0.406),
        "Per-channel mean subtracted after scaling (1 value or one per channel).",
        nargs="+",
    )
    image_std: tuple[float, ...] = option(
        (0.229, 0.224, 0.225),
        "Per-channel std divided after mean subtraction (1 value or one per channel).",
        nargs="+",
    )
    image_scale: float = option(1.0 / 255.0, "Factor applied to 0..255 pixel values first.")

    def __post_init__(self) -> None:
        _check(self.batch_size >= 1, "batch_size", self.batch_size, "must be >= 1")
        _check(
            self.max_samples is None or self.max_samples >= 1, "max_samples", self.max_samples, "must be >= 1"
        )
        _check(self.method in CALIB_METHODS, "method", self.method, f"must be one of {CALIB_METHODS}")
        _check(0.0 < self.percentile <= 100.0, "percentile", self.percentile, "must be in (0, 100]")
        _check(
            self.num_bins >= 16 and self.num_bins % 2 == 0,
            "num_bins",
            self.num_bins,
            "must be even and >= 16",
        )
        _check(self.tensors_per_pass >= 0, "tensors_per_pass", self.tensors_per_pass, "must be >= 0")
        _check(self.synthetic_samples >= 1, "synthetic_samples", self.synthetic_samples, "must be >= 1")
        _check(
            self.synthetic_distribution in SYNTHETIC_DISTRIBUTIONS,
            "synthetic_distribution",
            self.synthetic_distribution,
            f"must be one of {SYNTHETIC_DISTRIBUTIONS}",
        )
        _check(self.image_size is None or self.image_size >= 1, "image_size", self.image_size, "must be >= 1")
        _check(
            self.image_resize is None or self.image_resize >= 1,
            "image_resize",
            self.image_resize,
            "must be >= 1",
        )
        _check(
            self.image_layout in IMAGE_LAYOUTS,
            "image_layout",
            self.image_layout,
            f"must be one of {IMAGE_LAYOUTS}",
        )
        _check(
            self.image_channel_order in CHANNEL_ORDERS,
            "image_channel_order",
            self.image_channel_order,
            f"must be one of {CHANNEL_ORDERS}",
        )
        _check(len(self.image_mean) >= 1, "image_mean", self.image_mean, "needs at least one value")
        _check(
            len(self.image_std) >= 1 and all(s != 0 for s in self.image_std),
            "image_std",
            self.image_std,
            "needs at least one value and no zeros",
        )
        _check(self.image_scale > 0, "image_scale", self.image_scale, "must be > 0")
        # Tuples from the CLI may arrive as lists; keep the dataclass hashable.
        object.__setattr__(self, "image_mean", tuple(float(v) for v in self.image_mean))
        object.__setattr__(self, "image_std", tuple(float(v) for v in self.image_std))


def _check(ok: bool, name: str, value: object, why: str) -> None:
    if not ok:
        raise ConfigError(f"calibration option {name}={value!r} {why}")
