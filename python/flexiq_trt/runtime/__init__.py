"""Runtime: find/load the plugin library, build engines (TensorRT-RTX ahead of time or TensorRT), run them.

Heavy dependencies (tensorrt, tensorrt_rtx, cuda-python) are imported only inside the functions that
need them, so ``import flexiq_trt.runtime`` works on any machine.
"""

from flexiq_trt.runtime.plugin_loader import ensure_rtx_parser_symlink, find_plugin_library, load_plugins

__all__ = ["ensure_rtx_parser_symlink", "find_plugin_library", "load_plugins"]
