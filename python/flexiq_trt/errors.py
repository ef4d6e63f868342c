"""Exception family: user-facing errors are FlexiqError, bugs are FlexiqInternalError.

The CLI prints a FlexiqError as one line (exit 1) and lets anything else keep its traceback.
"""

from __future__ import annotations


class FlexiqError(Exception):
    """A problem with the user's input or environment; the message names the file/node/field."""


class ConfigError(FlexiqError):
    """An option or configuration value is out of range or inconsistent."""


class ModelError(FlexiqError):
    """The ONNX model cannot be read (not ONNX, truncated, invalid)."""


class UnsupportedModelError(ModelError):
    """The model is valid ONNX but cannot be converted (e.g. already quantized, nothing eligible)."""


class CalibrationDataError(FlexiqError):
    """Calibration data is missing, empty, or does not match the model's inputs."""


class PluginNotFoundError(FlexiqError):
    """The compiled plugin/kernel library could not be located."""


class PluginFieldError(FlexiqError):
    """A FlexiQ plugin node carries a missing, mistyped or out-of-range field."""


class FlexiqInternalError(RuntimeError):
    """An invariant of flexiq_trt itself was violated (a bug): keep the traceback."""
