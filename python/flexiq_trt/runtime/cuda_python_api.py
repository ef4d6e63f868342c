"""The CudaApi implementation over cuda-python's runtime bindings (``cuda.bindings.runtime``).

Used where pycuda is absent. TensorRT works in the runtime API's primary context, which is what
these calls use too, so no context handling is needed.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from flexiq_trt.errors import FlexiqError
from flexiq_trt.runtime.cuda_api import CUDA_PYTHON, CudaBackendError


def _load_cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError as e:
            raise CudaBackendError(f"cannot import cuda-python ({e}); pip install cuda-python") from e
    return cudart


class CudaPythonApi:
    """Device memory, one stream, async copies, events and graph capture over cudart."""

    name = CUDA_PYTHON

    def __init__(self, device: int = 0) -> None:
        self.cudart = _load_cudart()
        self._call("cudaSetDevice", int(device))
        self.stream = self._call("cudaStreamCreate")
        self._pinned: list[int] = []
        self._events: list[Any] = []
        self._graphs: list[tuple[Any, Any]] = []

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
        """A page-locked host array, freed by close()."""
        nbytes = max(int(count) * np.dtype(dtype).itemsize, 1)
        ptr = int(self._call("cudaMallocHost", nbytes))
        self._pinned.append(ptr)
        raw = (ctypes.c_byte * nbytes).from_address(ptr)
        return np.frombuffer(raw, dtype=dtype, count=int(count))

    def htod_async(self, dst: int, src: np.ndarray) -> None:
        """Host -> device copy of a C-contiguous array on the stream."""
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._call("cudaMemcpyAsync", dst, src.ctypes.data, src.nbytes, kind, self.stream)

    def dtoh_async(self, dst: np.ndarray, src: int) -> None:
        """Device -> host copy into a C-contiguous array on the stream."""
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._call("cudaMemcpyAsync", dst.ctypes.data, src, dst.nbytes, kind, self.stream)

    def dtod_async(self, dst: int, src: int, nbytes: int) -> None:
        """Device -> device copy on the stream."""
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToDevice
        self._call("cudaMemcpyAsync", dst, src, int(nbytes), kind, self.stream)

    def synchronize(self) -> None:
        """Wait for the stream."""
        self._call("cudaStreamSynchronize", self.stream)

    def stream_handle(self) -> int:
        """The stream as an integer handle."""
        return int(self.stream.getPtr()) if hasattr(self.stream, "getPtr") else int(self.stream)

    def event_create(self) -> Any:
        """A timing-enabled event, destroyed by close()."""
        event = self._call("cudaEventCreate")
        self._events.append(event)
        return event

    def event_record(self, event: Any) -> None:
        """Record on the stream."""
        self._call("cudaEventRecord", event, self.stream)

    def event_synchronize(self, event: Any) -> None:
        """Block until the event's work finished."""
        self._call("cudaEventSynchronize", event)

    def event_query(self, event: Any) -> bool:
        """True when done (cudaErrorNotReady means not yet)."""
        err = self.cudart.cudaEventQuery(event)
        err = err[0] if isinstance(err, tuple) else err
        if err == self.cudart.cudaError_t.cudaErrorNotReady:
            return False
        if int(err) != 0:
            raise FlexiqError(f"cudaEventQuery failed: {err}")
        return True

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        """Milliseconds between two completed events."""
        return float(self._call("cudaEventElapsedTime", start, end))

    def begin_capture(self) -> None:
        """Start capturing the stream (thread-local mode)."""
        mode = self.cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        self._call("cudaStreamBeginCapture", self.stream, mode)

    def end_capture(self) -> Any:
        """Finish the capture and instantiate the graph."""
        graph = self._call("cudaStreamEndCapture", self.stream)
        graph_exec = self._call("cudaGraphInstantiate", graph, 0)
        self._graphs.append((graph, graph_exec))
        return graph_exec

    def launch_graph(self, graph_exec: Any) -> None:
        """Replay on the stream."""
        self._call("cudaGraphLaunch", graph_exec, self.stream)

    def device_capability(self) -> tuple[int, int]:
        """(major, minor) of the current device."""
        prop = self._call("cudaGetDeviceProperties", self._call("cudaGetDevice"))
        return int(prop.major), int(prop.minor)

    def device_name(self) -> str:
        """The current device's name."""
        prop = self._call("cudaGetDeviceProperties", self._call("cudaGetDevice"))
        name = prop.name
        return (name.decode(errors="replace") if isinstance(name, bytes) else str(name)).rstrip("\x00")

    def close(self) -> None:
        """Release graphs, events, pinned arrays and the stream (their views must not be used afterwards)."""
        if self.stream is None:
            return
        self.synchronize()
        for graph, graph_exec in self._graphs:
            self._call("cudaGraphExecDestroy", graph_exec)
            self._call("cudaGraphDestroy", graph)
        for event in self._events:
            self._call("cudaEventDestroy", event)
        for ptr in self._pinned:
            self._call("cudaFreeHost", ptr)
        self._graphs, self._events, self._pinned = [], [], []
        self._call("cudaStreamDestroy", self.stream)
        self.stream = None
