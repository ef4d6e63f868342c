"""flexiq_trt: FlexiQ adaptive mixed int4/int8 quantization for TensorRT.

Pipeline: calibrate -> quantize -> select -> rewrite -> build -> run/compare. The public API mirrors
the CLI; heavy dependencies (ONNX Runtime, TensorRT) are imported only when used.
"""

from __future__ import annotations

from flexiq_trt.ratios import ratio_vector  # light: numpy only
from flexiq_trt.version import __version__

__all__ = ["__version__", "convert", "compare", "ratio_vector", "build_engine"]


def __getattr__(name: str):
    """Lazy public API (keeps `import flexiq_trt` cheap)."""
    if name in ("convert", "compare", "ConvertConfig"):
        from flexiq_trt import api

        return getattr(api, name)
    if name == "build_engine":
        from flexiq_trt.runtime.engine_builder import build_engine

        return build_engine
    raise AttributeError(f"module 'flexiq_trt' has no attribute {name!r}")
