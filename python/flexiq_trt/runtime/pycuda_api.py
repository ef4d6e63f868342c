"""The CudaApi implementation over pycuda (what the package's users were promised).

pycuda speaks the driver API, TensorRT the runtime API: both meet in the device's *primary*
context, which this class retains and makes current (pycuda.autoinit would create a second context
that TensorRT does not see). pycuda has no CUDA-graph calls, so capture and replay go through the
driver library pycuda itself needs (``cuStreamBeginCapture_v2`` and friends, via ctypes) on the
pycuda stream's handle.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from flexiq_trt.errors import FlexiqError
from flexiq_trt.runtime.cuda_api import PYCUDA, CudaBackendError

_CAPTURE_MODE_THREAD_LOCAL = 1  # CU_STREAM_CAPTURE_MODE_THREAD_LOCAL


class _DriverGraphs:
    """Stream capture, instantiate, launch and destroy through libcuda (CUresult 0 = success)."""

    def __init__(self) -> None:
        self.lib = ctypes.CDLL("libcuda.so.1")

    def _check(self, name: str, status: int) -> None:
        if status != 0:
            raise FlexiqError(f"{name} failed: CUresult {status}")

    def begin(self, stream: int) -> None:
        self._check("cuStreamBeginCapture_v2",
                    self.lib.cuStreamBeginCapture_v2(ctypes.c_void_p(stream), ctypes.c_int(_CAPTURE_MODE_THREAD_LOCAL)))

    def end(self, stream: int) -> tuple[int, int]:
        graph, graph_exec = ctypes.c_void_p(), ctypes.c_void_p()
        self._check("cuStreamEndCapture", self.lib.cuStreamEndCapture(ctypes.c_void_p(stream), ctypes.byref(graph)))
        self._check("cuGraphInstantiateWithFlags",
                    self.lib.cuGraphInstantiateWithFlags(ctypes.byref(graph_exec), graph, ctypes.c_ulonglong(0)))
        return int(graph.value or 0), int(graph_exec.value or 0)

    def launch(self, graph_exec: int, stream: int) -> None:
        self._check("cuGraphLaunch", self.lib.cuGraphLaunch(ctypes.c_void_p(graph_exec), ctypes.c_void_p(stream)))

    def destroy(self, graph: int, graph_exec: int) -> None:
        self._check("cuGraphExecDestroy", self.lib.cuGraphExecDestroy(ctypes.c_void_p(graph_exec)))
        self._check("cuGraphDestroy", self.lib.cuGraphDestroy(ctypes.c_void_p(graph)))


class PycudaApi:
    """Device memory, one stream, async copies and events over pycuda.driver; graphs over libcuda."""

    name = PYCUDA

    def __init__(self, device: int = 0) -> None:
        try:
            import pycuda.driver as drv
        except ImportError as e:  # also raised when the driver library is missing
            raise CudaBackendError(f"cannot import pycuda ({e}); pip install pycuda (builds against CUDA)") from e
        self.drv = drv
        try:
            drv.init()
            self.device = drv.Device(int(device))
            self.context = self.device.retain_primary_context()
            self.context.push()
            self.stream = drv.Stream()
        except drv.Error as e:
            raise FlexiqError(f"pycuda could not open GPU {device}: {e}") from e
        self._graphs = _DriverGraphs()
        self._allocs: dict[int, Any] = {}
        self._pinned: list[np.ndarray] = []
        self._events: list[Any] = []
        self._graph_handles: list[tuple[int, int]] = []

    def malloc(self, nbytes: int) -> int:
        """Device allocation (at least 1 byte); returns the address."""
        alloc = self.drv.mem_alloc(max(int(nbytes), 1))
        self._allocs[int(alloc)] = alloc
        return int(alloc)

    def free(self, ptr: int) -> None:
        """Release a device allocation made by malloc()."""
        alloc = self._allocs.pop(int(ptr), None)
        if alloc is None:
            raise FlexiqError(f"free: 0x{int(ptr):x} was not allocated by this PycudaApi")
        alloc.free()

    def pinned_array(self, count: int, dtype: np.dtype) -> np.ndarray:
        """A page-locked host array (pycuda.driver.pagelocked_empty), released by close()."""
        array = self.drv.pagelocked_empty(int(count), dtype)
        self._pinned.append(array)
        return array

    def htod_async(self, dst: int, src: np.ndarray) -> None:
        """Host -> device copy on the stream."""
        self.drv.memcpy_htod_async(int(dst), src, self.stream)

    def dtoh_async(self, dst: np.ndarray, src: int) -> None:
        """Device -> host copy on the stream."""
        self.drv.memcpy_dtoh_async(dst, int(src), self.stream)

    def dtod_async(self, dst: int, src: int, nbytes: int) -> None:
        """Device -> device copy on the stream."""
        self.drv.memcpy_dtod_async(int(dst), int(src), int(nbytes), self.stream)

    def synchronize(self) -> None:
        """Wait for the stream."""
        self.stream.synchronize()

    def stream_handle(self) -> int:
        """The CUstream as an integer (the same object cudart calls a cudaStream_t)."""
        return int(self.stream.handle)

    def event_create(self) -> Any:
        """A timing-enabled event."""
        event = self.drv.Event()
        self._events.append(event)
        return event

    def event_record(self, event: Any) -> None:
        """Record on the stream."""
        event.record(self.stream)

    def event_synchronize(self, event: Any) -> None:
        """Block until the event's work finished."""
        event.synchronize()

    def event_query(self, event: Any) -> bool:
        """True when done."""
        return bool(event.query())

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        """Milliseconds from `start` to `end`."""
        return float(end.time_since(start))

    def begin_capture(self) -> None:
        """Start capturing the stream (thread-local mode)."""
        self._graphs.begin(self.stream_handle())

    def end_capture(self) -> Any:
        """Finish the capture and instantiate the graph; returns the CUgraphExec handle."""
        graph, graph_exec = self._graphs.end(self.stream_handle())
        self._graph_handles.append((graph, graph_exec))
        return graph_exec

    def launch_graph(self, graph_exec: Any) -> None:
        """Replay on the stream."""
        self._graphs.launch(int(graph_exec), self.stream_handle())

    def device_capability(self) -> tuple[int, int]:
        """(major, minor)."""
        major, minor = self.device.compute_capability()
        return int(major), int(minor)

    def device_name(self) -> str:
        """The device's name."""
        return str(self.device.name())

    def close(self) -> None:
        """Release graphs, events, pinned arrays, allocations made here, and the primary context."""
        if self.stream is None:
            return
        self.stream.synchronize()
        for graph, graph_exec in self._graph_handles:
            self._graphs.destroy(graph, graph_exec)
        for alloc in self._allocs.values():
            alloc.free()
        for array in self._pinned:
            array.base.free()
        self._graph_handles, self._allocs, self._pinned, self._events = [], {}, [], []
        self.stream = None
        self.context.pop()
        self.context.detach()
