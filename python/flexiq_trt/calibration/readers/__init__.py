"""Calibration readers and :func:`open_reader`, which picks one from a data spec string.

Spec forms: ``data.npz``, ``data.npy``, ``images/`` (a folder), ``loader.py[:func]`` and
``synthetic[:normal|uniform]`` (explicit opt-in to random data). Readers are chosen through a
small registry of (predicate, factory) pairs, so new sources add an entry instead of an elif.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from flexiq_trt.calibration.config import CalibConfig
from flexiq_trt.calibration.model_io import InputSpec, ModelLike, input_specs, model_label
from flexiq_trt.calibration.readers.arrays import NpyReader, NpzReader
from flexiq_trt.calibration.readers.base import (
    BaseReader,
    CalibrationReader,
    Feed,
    batch_length,
    resolve_batch_size,
)
from flexiq_trt.calibration.readers.images import ImageFolderReader, ImagePreprocess
from flexiq_trt.calibration.readers.script import ScriptReader, split_script_spec
from flexiq_trt.calibration.readers.synthetic import SyntheticReader
from flexiq_trt.calibration.readers.validate import validate_feed
from flexiq_trt.errors import CalibrationDataError
from flexiq_trt.log import get_logger

__all__ = [
    "BaseReader",
    "CalibrationReader",
    "Feed",
    "ImageFolderReader",
    "ImagePreprocess",
    "NpyReader",
    "NpzReader",
    "ScriptReader",
    "SyntheticReader",
    "batch_length",
    "open_reader",
    "validate_feed",
]

_log = get_logger(__name__)
SYNTHETIC_PREFIX = "synthetic"

Factory = Callable[[str, Sequence[InputSpec], CalibConfig], BaseReader]


def _is_synthetic(spec: str) -> bool:
    return spec == SYNTHETIC_PREFIX or spec.startswith(SYNTHETIC_PREFIX + ":")


def _synthetic(spec: str, specs: Sequence[InputSpec], config: CalibConfig) -> BaseReader:
    _, _, distribution = spec.partition(":")
    samples = (
        config.synthetic_samples
        if config.max_samples is None
        else min(config.synthetic_samples, config.max_samples)
    )
    return SyntheticReader(
        specs, samples, config.batch_size, distribution or config.synthetic_distribution, config.seed
    )


def _npz(spec: str, specs: Sequence[InputSpec], config: CalibConfig) -> BaseReader:
    return NpzReader(spec, specs, resolve_batch_size(specs, config.batch_size, spec), config.max_samples)


def _npy(spec: str, specs: Sequence[InputSpec], config: CalibConfig) -> BaseReader:
    return NpyReader(spec, specs, resolve_batch_size(specs, config.batch_size, spec), config.max_samples)


def _script(spec: str, specs: Sequence[InputSpec], config: CalibConfig) -> BaseReader:
    return ScriptReader(spec, specs, config.max_samples)


def _images(spec: str, specs: Sequence[InputSpec], config: CalibConfig) -> BaseReader:
    return ImageFolderReader(spec, specs, config)


# (name, matches(spec), factory), tried in order.
READERS: list[tuple[str, Callable[[str], bool], Factory]] = [
    ("synthetic", _is_synthetic, _synthetic),
    ("npz", lambda s: s.lower().endswith(".npz"), _npz),
    ("npy", lambda s: s.lower().endswith(".npy"), _npy),
    ("script", lambda s: split_script_spec(s)[0].suffix == ".py", _script),
    ("images", lambda s: Path(s).is_dir(), _images),
]


def open_reader(spec: str | None, model: ModelLike, config: CalibConfig | None = None) -> BaseReader:
    """Open the calibration data described by ``spec`` (``None``: ``config.data``) for ``model``.

    The reader is checked against the model right away (its first batch is read and validated),
    so a wrong file fails here with a message naming the file, input and mismatch.
    """
    config = config or CalibConfig()
    spec = spec if spec is not None else config.data
    if not spec:
        raise CalibrationDataError(
            f"{model_label(model)}: no calibration data given; pass an .npz/.npy file, an image folder or a "
            "loader script, or 'synthetic' to opt in to random data (poor accuracy)"
        )
    specs = input_specs(model)
    if not specs:
        raise CalibrationDataError(f"{model_label(model)}: the model has no inputs to calibrate")
    reader = _dispatch(spec, specs, config)
    if reader.get_next() is None:  # pragma: no cover - BaseReader raises on empty sets first
        raise CalibrationDataError(f"{spec}: the calibration set is empty")
    reader.rewind()
    _log.info("calibration data: %s (%s batches)", reader.source, reader.num_batches() or "?")
    return reader


def _dispatch(spec: str, specs: Sequence[InputSpec], config: CalibConfig) -> BaseReader:
    for _name, matches, factory in READERS:
        if matches(spec):
            if not _is_synthetic(spec) and not Path(split_script_spec(spec)[0]).exists():
                raise CalibrationDataError(f"{spec}: calibration data not found")
            return factory(spec, specs, config)
    if not Path(spec).exists():
        raise CalibrationDataError(f"{spec}: calibration data not found")
    raise CalibrationDataError(
        f"{spec}: unsupported calibration data (expected .npz, .npy, a folder of images, a .py loader "
        "script or 'synthetic')"
    )
