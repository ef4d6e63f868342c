"""A Polygraphy-style data-loader script: ``script.py`` or ``script.py:func`` (default ``load_data``).

The function takes no arguments and returns an iterable of feed dicts (a list or a generator).
It is called again on every rewind, so generators work and each pass sees fresh iterables.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from flexiq_trt.calibration.model_io import InputSpec
from flexiq_trt.calibration.readers.base import BaseReader
from flexiq_trt.errors import CalibrationDataError

DEFAULT_FUNCTION = "load_data"
_counter = itertools.count()


def split_script_spec(spec: str) -> tuple[Path, str]:
    """``'dir/loader.py:make'`` -> (Path('dir/loader.py'), 'make'); the function defaults to load_data."""
    path, sep, func = spec.rpartition(":")
    if sep and path.endswith(".py") and func.isidentifier():
        return Path(path), func
    return Path(spec), DEFAULT_FUNCTION


def load_function(path: Path, func_name: str) -> Callable[[], Iterable[Mapping[str, Any]]]:
    """Import the script as a fresh module and return its loader function."""
    if not path.is_file():
        raise CalibrationDataError(f"{path}: data-loader script not found")
    module_name = f"_flexiq_data_loader_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise CalibrationDataError(f"{path}: cannot import data-loader script")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: report any failure against the script
        del sys.modules[module_name]
        raise CalibrationDataError(f"{path}: importing the data-loader script failed: {exc!r}") from exc
    func = getattr(module, func_name, None)
    if not callable(func):
        raise CalibrationDataError(f"{path}: has no function '{func_name}' (use 'script.py:function_name')")
    return func


class ScriptReader(BaseReader):
    """Feeds produced by a user function; each feed is one batch exactly as given (copied)."""

    def __init__(self, spec: str, specs: Sequence[InputSpec], max_samples: int | None = None) -> None:
        path, func_name = split_script_spec(spec)
        super().__init__(f"{path}:{func_name}", specs, max_samples)
        self._func = load_function(path, func_name)

    def _raw_batches(self) -> Iterator[Mapping[str, Any]]:
        try:
            feeds = self._func()
        except Exception as exc:
            raise CalibrationDataError(f"{self.source}: the data-loader function raised {exc!r}") from exc
        if isinstance(feeds, Mapping) or not isinstance(feeds, Iterable):
            raise CalibrationDataError(
                f"{self.source}: must return an iterable of feed dicts, got {type(feeds).__name__}"
            )
        yield from feeds
