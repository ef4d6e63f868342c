"""The few CUDA runtime calls the engine runner needs, from cuda-python.

Imported lazily and only on GPU hosts. cuda-python (not pycuda, which builds from source and needs a
driver to import, docs/design.md §6) because it also gives CUDA-graph capture. Every failing call raises FlexiqError naming the call.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from flexiq_trt.errors import FlexiqError


def _load_cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError:
            return None
    return cudart


class CudaApi:
    """Device memory, a stream, async copies and graph capture over cuda-python's cudart."""

    def __init__(self) -> None:
        self.cudart = _load_cudart()
        if self.cudart is None:
            raise FlexiqError("the engine runner needs cuda-python (pip install cuda-python) on a GPU host")
        self.stream = self._call("cudaStreamCreate")
        self._pinned: list[int] = []

    def _call(self, name: str, *args: Any) -> Any:
        out = getattr(self.cudart, name)(*args)
        err, rest = (out[0], out[1:]) if isinstance(out, tuple) else (out, ())
        if int(err) != 0:
            raise FlexiqError(f"{name} failed: {err}")
        return rest[0] if len(rest) == 1 else (rest or None)

    def malloc(self, nbytes: int) -> int:
        """Device allocation (at least 1 byte); returns the address."""
        return int(self._call("cudaMalloc", max(int(nbytes), 1)))

    def free(self, ptr: int) -> None:
        """Release a device allocation."""
        self._call("cudaFree", ptr)

    def pinned_array(self, count: int, dtype: np.dtype) -> np.ndarray:
        """A page-locked host array (a captured graph's copy source must not be pageable)."""
        nbytes = max(int(count) * np.dtype(dtype).itemsize, 1)
        ptr = int(self._call("cudaMallocHost", nbytes))
        self._pinned.append(ptr)
        raw = (ctypes.c_byte * nbytes).from_address(ptr)
        return np.frombuffer(raw, dtype=dtype, count=int(count))

    def free_pinned(self) -> None:
        """Release every pinned array (their numpy views must not be used afterwards)."""
        for ptr in self._pinned:
            self._call("cudaFreeHost", ptr)
        self._pinned.clear()

    def htod_async(self, dst: int, src: np.ndarray) -> None:
        """Host -> device copy of a C-contiguous array on the runner's stream."""
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._call("cudaMemcpyAsync", dst, src.ctypes.data, src.nbytes, kind, self.stream)

    def dtoh_async(self, dst: np.ndarray, src: int) -> None:
        """Device -> host copy into a C-contiguous array on the runner's stream."""
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._call("cudaMemcpyAsync", dst.ctypes.data, src, dst.nbytes, kind, self.stream)

    def synchronize(self) -> None:
        """Wait for the runner's stream."""
        self._call("cudaStreamSynchronize", self.stream)

    def stream_handle(self) -> int:
        """The stream as an integer handle (what execute_async_v3 takes)."""
        return int(self.stream) if not hasattr(self.stream, "getPtr") else int(self.stream.getPtr())

    def begin_capture(self) -> None:
        """Start capturing the runner's stream into a CUDA graph."""
        mode = self.cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        self._call("cudaStreamBeginCapture", self.stream, mode)

    def end_capture(self) -> Any:
        """Finish the capture; returns an instantiated, launchable graph."""
        graph = self._call("cudaStreamEndCapture", self.stream)
        return self._call("cudaGraphInstantiate", graph, 0)

    def launch_graph(self, graph_exec: Any) -> None:
        """Replay a captured graph on the runner's stream."""
        self._call("cudaGraphLaunch", graph_exec, self.stream)

    def device_capability(self) -> tuple[int, int]:
        """(major, minor) of the current device."""
        dev = self._call("cudaGetDevice")
        prop = self._call("cudaGetDeviceProperties", dev)
        return int(prop.major), int(prop.minor)

