"""Polygraphy glue: a data loader that feeds the ratio vector, and scripts for `polygraphy run`.

A FlexiQ simulation or engine takes one input more than the original model, ``flexiq_max_4bit_ch``
(int32 [L]). `RatioFeeds` adds a ratio's vector to every feed; Polygraphy's Comparator drops inputs
a runner does not have, so one loader serves the original model, the simulation and the engine.

As a script for the ``polygraphy`` command line (docs/polygraphy.md), configured by environment
variables because Polygraphy calls the functions without arguments:

- ``load_data`` (``--data-loader-script``): batches of ``FLEXIQ_DATA`` (.npz keyed by input name;
  a ``labels`` array is ignored) of ``FLEXIQ_BATCH_SIZE`` (8) samples, at most ``FLEXIQ_ITERATIONS``
  (8) of them, each with the vector of ``FLEXIQ_RATIO`` (0.5) from ``FLEXIQ_RATIO_TABLE``
  (the .flexiq.json or a FlexiQ ONNX). It also registers the FlexiQ plugin creators with
  Polygraphy's TensorRT (Polygraphy builds its data loader before it deserializes an engine), since
  ``polygraphy --plugins`` only dlopens a library and this one registers through ``getCreators``.
- ``load_network`` (``--model-type trt-network-script``): registers the creators and parses
  ``FLEXIQ_ONNX`` (a <stem>.flexiq.onnx) into a network for Polygraphy to build.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from flexiq_trt.errors import CalibrationDataError, ConfigError
from flexiq_trt.plugin_spec import RUNTIME_INPUT

LABELS_KEY = "labels"


class RatioFeeds(Sequence):
    """Feed dicts with ``flexiq_max_4bit_ch`` added (a Polygraphy data loader: iterable, indexable)."""

    def __init__(self, feeds: Sequence[dict[str, np.ndarray]], vector: np.ndarray) -> None:
        vec = np.asarray(vector)
        if vec.ndim != 1 or not np.issubdtype(vec.dtype, np.integer):
            raise ConfigError(f"{RUNTIME_INPUT} must be an integer vector [L], got {vec.dtype} {list(vec.shape)}")
        self.feeds, self.vector = list(feeds), np.ascontiguousarray(vec, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.feeds)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:  # type: ignore[override]
        feed = dict(self.feeds[index])
        if RUNTIME_INPUT in feed:
            raise ConfigError(f"the data already has a {RUNTIME_INPUT!r} array; the ratio sets it")
        feed[RUNTIME_INPUT] = self.vector.copy()
        return feed


def npz_batches(path: str | Path, input_names: Sequence[str] | None, batch_size: int,
                limit: int | None = None) -> list[dict[str, np.ndarray]]:
    """Consecutive batches of an .npz (axis 0 = samples); `input_names` None = every array but labels."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationDataError(f"{path}: data file not found")
    try:
        data = np.load(path)
    except Exception as e:  # noqa: BLE001 - numpy raises several types for bad files
        raise CalibrationDataError(f"{path}: cannot read as .npz ({e})") from e
    names = list(input_names) if input_names is not None else [k for k in data.files if k != LABELS_KEY]
    missing = [n for n in names if n not in data.files]
    if missing or not names:
        raise CalibrationDataError(f"{path}: missing array(s) for input(s) {missing or names}; has {data.files}")
    arrays = {n: data[n] for n in names}
    counts = {a.shape[0] if a.ndim else 0 for a in arrays.values()}
    if len(counts) != 1 or 0 in counts:
        raise CalibrationDataError(f"{path}: inputs must have the same non-zero number of samples, got {counts}")
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    total = counts.pop()
    batches = [{n: np.ascontiguousarray(a[i:i + batch_size]) for n, a in arrays.items()}
               for i in range(0, total, batch_size)]
    return batches[:limit] if limit else batches


def _env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None or value == "":
        raise ConfigError(f"set {name} for the FlexiQ Polygraphy script (docs/polygraphy.md)")
    return value


def _env_number(name: str, default: str, kind: type) -> Any:
    text = _env(name, default)
    try:
        return kind(text)
    except ValueError as e:
        raise ConfigError(f"{name}={text!r} is not a valid {kind.__name__}") from e


def polygraphy_tensorrt() -> Any:
    """The TensorRT module Polygraphy itself uses (POLYGRAPHY_USE_TENSORRT_RTX picks TensorRT-RTX)."""
    import polygraphy.config as pg_config

    from flexiq_trt.runtime.trt_import import RTX_MODULE, import_tensorrt

    return import_tensorrt(prefer=RTX_MODULE if pg_config.USE_TENSORRT_RTX else "tensorrt")


def register_plugins() -> Path:
    """Load libflexiq_plugins.so into Polygraphy's TensorRT registry (getCreators); returns its path."""
    from flexiq_trt.runtime.plugin_loader import load_plugins

    return load_plugins(polygraphy_tensorrt().module, os.environ.get("FLEXIQ_PLUGIN_LIB") or None)


def ratio_feeds_from_env(register: bool = True) -> RatioFeeds:
    """The data loader `load_data` returns, from the FLEXIQ_* variables."""
    from flexiq_trt.ratios import check_ratio, load_ratio_table

    ratio = check_ratio(_env_number("FLEXIQ_RATIO", "0.5", float))
    table = load_ratio_table(_env("FLEXIQ_RATIO_TABLE"))
    batches = npz_batches(_env("FLEXIQ_DATA"), None, _env_number("FLEXIQ_BATCH_SIZE", "8", int),
                          _env_number("FLEXIQ_ITERATIONS", "8", int))
    if register:
        register_plugins()
    return RatioFeeds(batches, table.vector(ratio))


def load_data() -> RatioFeeds:
    """Polygraphy --data-loader-script entry point (also registers the FlexiQ creators)."""
    return ratio_feeds_from_env(register=True)


def load_network() -> tuple[Any, Any, Any]:
    """Polygraphy trt-network-script entry point: (builder, network, parser) of FLEXIQ_ONNX."""
    from polygraphy.backend.trt import util as trt_util

    from flexiq_trt.errors import ModelError

    register_plugins()
    tm = polygraphy_tensorrt().module
    onnx_path = _env("FLEXIQ_ONNX")
    logger = trt_util.get_trt_logger()  # Polygraphy's process-wide logger outlives the builder
    builder = tm.Builder(logger)
    network = builder.create_network(0)
    parser = tm.OnnxParser(network, logger)
    if not parser.parse_from_file(onnx_path):
        errors = "; ".join(str(parser.get_error(i).desc()) for i in range(parser.num_errors))
        raise ModelError(f"{onnx_path}: the TensorRT ONNX parser failed: {errors}")
    return builder, network, parser
