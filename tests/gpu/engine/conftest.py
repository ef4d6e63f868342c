"""Fixtures of the GPU engine tests: a converted model, its simulation ONNX and an engine for this GPU.

Everything here needs an NVIDIA GPU (sm_80+), the built plugin library, pycuda or cuda-python and
TensorRT (full TensorRT preferred: TensorRT-RTX has no sm_90 target). Tests are marked `gpu` and skip
with the reason elsewhere (tests/conftest.py); `cuda_backend` runs them once per CUDA package and
skips the package that is not installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from _utils.configs import NO_BLOCK_ROUNDING

from flexiq_trt.errors import PluginNotFoundError

RTX_TARGETS = (80, 86, 89, 120, 121)


def _device_capability() -> tuple[int, int]:
    from flexiq_trt.runtime.cuda_api import open_cuda_api

    api = open_cuda_api()
    try:
        return api.device_capability()
    finally:
        api.close()


@pytest.fixture(scope="module", params=["pycuda", "cuda-python"])
def cuda_backend(request) -> str:
    """Each CUDA implementation of runtime/cuda_api.py; skips the one whose package is missing."""
    module = "pycuda.driver" if request.param == "pycuda" else "cuda.bindings"
    pytest.importorskip(module, reason=f"{request.param} is not installed")
    return request.param


@pytest.fixture(scope="module")
def gpu_trt():
    """(TensorRT flavour, compute capability); skips on sm_75 and older or without the runtime pieces."""
    from flexiq_trt.runtime.cuda_api import CudaBackendError
    from flexiq_trt.runtime.plugin_loader import find_plugin_library
    from flexiq_trt.runtime.trt_import import TensorRTNotFoundError, import_tensorrt

    try:
        find_plugin_library()
        trt = import_tensorrt(prefer="tensorrt")
    except (PluginNotFoundError, TensorRTNotFoundError) as e:
        pytest.skip(str(e))
    try:
        major, minor = _device_capability()
    except CudaBackendError as e:
        pytest.skip(str(e))
    cc = major * 10 + minor
    if cc < 80:
        pytest.skip(f"sm_{cc}: FlexiQ kernels need sm_80 or newer")
    if trt.is_rtx and cc not in RTX_TARGETS:
        pytest.skip(f"only TensorRT-RTX is installed and it has no sm_{cc} target; install TensorRT")
    return trt, cc


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A converted conv model (dynamic batch): FlexiQ ONNX, simulation ONNX, ratio table, calibration data."""
    from _utils import models

    import flexiq_trt
    from flexiq_trt.conversion import ConvertConfig

    tmp = tmp_path_factory.mktemp("gpu_engine")
    onnx.save(models.conv_bn_relu(c_in=64, c_out=32, hw=8), tmp / "cbr.onnx")
    x = np.random.default_rng(0).normal(size=(32, 64, 8, 8)).astype(np.float32)
    np.savez(tmp / "calib.npz", x=x)
    cfg = ConvertConfig(selector="greedy", ort_baseline=False, report=False, baselines=False)
    result = flexiq_trt.convert(tmp / "cbr.onnx", calib=str(tmp / "calib.npz"), output_dir=tmp / "out", config=cfg, refine=NO_BLOCK_ROUNDING)
    return result, x


@pytest.fixture(scope="module")
def engine_path(gpu_trt, converted, tmp_path_factory) -> Path:
    """The FlexiQ ONNX built for this GPU with a dynamic batch profile 1..16."""
    from flexiq_trt.runtime.engine_builder import build_engine

    trt, cc = gpu_trt
    result, _ = converted
    out = tmp_path_factory.mktemp("engine") / "cbr.engine"
    build_engine(result.files["flexiq_onnx"], out, trt=trt, compute_capabilities=(cc,), min_batch=1, opt_batch=8,
                 max_batch=16)
    return out
