"""The few CUDA calls the engine runner needs, behind one interface with two implementations.

``pycuda`` is what the package's users were promised; ``cuda-python`` is used where pycuda is absent.
Both need a GPU host: pycuda even needs the NVIDIA driver to *import* (docs/design.md §6), so
nothing here imports either at module import time. The implementation is chosen once, when a runner
is created (`open_cuda_api`: an argument, else env ``FLEXIQ_CUDA_BACKEND``, else pycuda when it
imports and cuda-python otherwise); no call afterwards asks again.

The interface is deliberately small: device memory, pinned host arrays, asynchronous copies on the
runner's one stream, events (ordering the reuse of pinned copy sources, and timing) and CUDA-graph
capture/replay. Every failing call raises FlexiqError naming the call.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any, Protocol, runtime_checkable

import numpy as np

from flexiq_trt.errors import ConfigError, FlexiqError

CUDA_BACKEND_ENV = "FLEXIQ_CUDA_BACKEND"
PYCUDA = "pycuda"
CUDA_PYTHON = "cuda-python"
BACKENDS = (PYCUDA, CUDA_PYTHON)
AUTO = "auto"


class GpuUnavailableError(FlexiqError):
    """The operation needs an NVIDIA GPU (driver and device) and this machine has none."""


class CudaBackendError(FlexiqError):
    """The requested CUDA Python package cannot be imported or initialised."""


@runtime_checkable
class CudaApi(Protocol):
    """What the engine runner, the ratio stager and `bench` use; one stream per instance."""

    name: str

    def malloc(self, nbytes: int) -> int:
        """Device allocation of at least one byte; returns its address."""

    def free(self, ptr: int) -> None:
        """Release a device allocation."""

    def pinned_array(self, count: int, dtype: np.dtype) -> np.ndarray:
        """A page-locked host array (copy sources that stay valid while a copy is in flight)."""

    def htod_async(self, dst: int, src: np.ndarray) -> None:
        """Queue a host -> device copy; `src` is read when the copy executes, not when queued."""

    def dtoh_async(self, dst: np.ndarray, src: int) -> None:
        """Queue a device -> host copy into a C-contiguous array."""

    def dtod_async(self, dst: int, src: int, nbytes: int) -> None:
        """Queue a device -> device copy."""

    def synchronize(self) -> None:
        """Wait until everything queued on the stream has finished."""

    def stream_handle(self) -> int:
        """The stream as an integer (what ``execute_async_v3`` takes)."""

    def event_create(self) -> Any:
        """A new event (timing enabled)."""

    def event_record(self, event: Any) -> None:
        """Record `event` at the current end of the stream."""

    def event_synchronize(self, event: Any) -> None:
        """Block the host until the work before the event's last record has finished."""

    def event_query(self, event: Any) -> bool:
        """True when the work before the event's last record has finished."""

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        """Milliseconds between two completed events."""

    def begin_capture(self) -> None:
        """Start capturing the stream into a CUDA graph."""

    def end_capture(self) -> Any:
        """Finish the capture; returns an instantiated, launchable graph."""

    def launch_graph(self, graph_exec: Any) -> None:
        """Replay a captured graph on the stream."""

    def device_capability(self) -> tuple[int, int]:
        """(major, minor) of the current device."""

    def device_name(self) -> str:
        """The current device's name, for reports."""

    def close(self) -> None:
        """Release pinned arrays, events, graphs and the stream (device buffers are the caller's)."""


def gpu_status() -> tuple[bool, str]:
    """Whether the NVIDIA driver sees at least one GPU, and why not (no package import needed).

    Asks the driver library itself (``cuInit`` + ``cuDeviceGetCount`` through ctypes), so the answer
    is the same whichever CUDA Python package is installed. ``FLEXIQ_NO_GPU`` forces "no".
    """
    if os.environ.get("FLEXIQ_NO_GPU"):
        return False, "FLEXIQ_NO_GPU is set"
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False, "no NVIDIA driver on this machine (libcuda.so.1 cannot be loaded)"
    status = lib.cuInit(0)
    if status != 0:
        return False, f"the NVIDIA driver did not initialise (cuInit returned CUresult {status})"
    count = ctypes.c_int(0)
    status = lib.cuDeviceGetCount(ctypes.byref(count))
    if status != 0 or count.value < 1:
        return False, f"the NVIDIA driver sees no GPU (cuDeviceGetCount: CUresult {status}, {count.value} devices)"
    return True, ""


def require_gpu(what: str) -> None:
    """Raise GpuUnavailableError naming `what` when no GPU is usable."""
    ok, why = gpu_status()
    if not ok:
        raise GpuUnavailableError(f"{what} needs an NVIDIA GPU: {why}")


def requested_backend(name: str | None = None) -> str:
    """The backend asked for: `name`, else env FLEXIQ_CUDA_BACKEND, else "auto"; validated."""
    choice = (name or os.environ.get(CUDA_BACKEND_ENV) or AUTO).strip().lower().replace("_", "-")
    if choice not in (*BACKENDS, AUTO):
        source = "argument" if name else CUDA_BACKEND_ENV
        raise ConfigError(f"{source}={choice!r}: the CUDA backend must be one of {', '.join((*BACKENDS, AUTO))}")
    return choice


def open_cuda_api(name: str | None = None, device: int = 0) -> CudaApi:
    """Create the CUDA implementation once: pycuda when importable (or asked for), else cuda-python.

    With "auto" an ImportError of pycuda falls through to cuda-python; an explicitly requested
    backend that cannot be imported is an error that says how to install it.
    """
    choice = requested_backend(name)
    errors: list[str] = []
    for backend in (BACKENDS if choice == AUTO else (choice,)):
        try:
            if backend == PYCUDA:
                from flexiq_trt.runtime.pycuda_api import PycudaApi

                return PycudaApi(device)
            from flexiq_trt.runtime.cuda_python_api import CudaPythonApi

            return CudaPythonApi(device)
        except CudaBackendError as e:
            errors.append(f"{backend}: {e}")
    raise CudaBackendError(
        "no CUDA Python package is usable (" + "; ".join(errors) + "); install the 'gpu' extra "
        "(pip install 'flexiq_trt[gpu]', which brings pycuda and cuda-python) on a GPU host"
    )
