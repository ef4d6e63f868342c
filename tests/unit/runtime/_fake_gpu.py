"""A CPU model of the CUDA calls the runner uses, and of a TensorRT engine that reads the ratio buffer.

Copies, kernels and event records are queued on one fake stream and run only when the stream is
advanced (`advance`, `synchronize`, or a host wait on an event), which is what makes the
asynchronous-copy race observable without a GPU: an H2D copy reads its host source when it *runs*.
Each queued kernel advances a fake GPU clock by its cost, so event timings are deterministic.
"""

from __future__ import annotations

import types
from collections import deque
from collections.abc import Callable

import numpy as np

from flexiq_trt.plugin_spec import RUNTIME_INPUT


class FakeEvent:
    def __init__(self) -> None:
        self.done = True
        self.time_ms = 0.0


class FakeGraph:
    def __init__(self, ops: list) -> None:
        self.ops = ops


class FakeCuda:
    """Implements runtime.cuda_api.CudaApi on the CPU."""

    name = "fake"

    def __init__(self) -> None:
        self.memory: dict[int, bytearray] = {}
        self.queue: deque[tuple[Callable[[], None], float]] = deque()
        self.clock_ms = 0.0
        self.capturing: list | None = None
        self.closed = False
        self.host_waits = 0
        self._next_ptr = 0x1000

    # ---- stream -----------------------------------------------------------------------------------
    def enqueue(self, fn: Callable[[], None], cost_ms: float = 0.0) -> None:
        (self.capturing if self.capturing is not None else self.queue).append((fn, cost_ms))

    def advance(self, n: int = 1) -> None:
        for _ in range(min(n, len(self.queue))):
            fn, cost = self.queue.popleft()
            self.clock_ms += cost
            fn()

    def synchronize(self) -> None:
        self.advance(len(self.queue))

    def stream_handle(self) -> int:
        return 7

    # ---- memory -----------------------------------------------------------------------------------
    def malloc(self, nbytes: int) -> int:
        ptr = self._next_ptr
        self._next_ptr += max(int(nbytes), 1) + 256
        self.memory[ptr] = bytearray(max(int(nbytes), 1))
        return ptr

    def free(self, ptr: int) -> None:
        del self.memory[ptr]

    def pinned_array(self, count: int, dtype) -> np.ndarray:
        return np.zeros(int(count), dtype=dtype)

    def read(self, ptr: int, dtype, count: int) -> np.ndarray:
        return np.frombuffer(bytes(self.memory[ptr]), dtype=dtype, count=count).copy()

    def write(self, ptr: int, array: np.ndarray) -> None:
        data = np.ascontiguousarray(array).tobytes()
        self.memory[ptr][: len(data)] = data

    def htod_async(self, dst: int, src: np.ndarray) -> None:
        self.enqueue(lambda: self.write(dst, src))  # reads `src` when it runs, like the real copy

    def dtoh_async(self, dst: np.ndarray, src: int) -> None:
        def run() -> None:
            dst[...] = self.read(src, dst.dtype, dst.size).reshape(dst.shape)

        self.enqueue(run)

    def dtod_async(self, dst: int, src: int, nbytes: int) -> None:
        self.enqueue(lambda: self.memory[dst].__setitem__(slice(0, nbytes), self.memory[src][:nbytes]))

    # ---- events -----------------------------------------------------------------------------------
    def event_create(self) -> FakeEvent:
        return FakeEvent()

    def event_record(self, event: FakeEvent) -> None:
        if self.capturing is not None:
            raise RuntimeError("event_record during capture is not modelled")
        event.done = False

        def run() -> None:
            event.done, event.time_ms = True, self.clock_ms

        self.enqueue(run)

    def event_query(self, event: FakeEvent) -> bool:
        return event.done

    def event_synchronize(self, event: FakeEvent) -> None:
        self.host_waits += 1
        while not event.done:
            if not self.queue:
                raise RuntimeError("waiting on an event that was never recorded on the stream")
            self.advance(1)

    def event_elapsed_ms(self, start: FakeEvent, end: FakeEvent) -> float:
        assert start.done and end.done
        return end.time_ms - start.time_ms

    # ---- graphs -----------------------------------------------------------------------------------
    def begin_capture(self) -> None:
        self.capturing = []

    def end_capture(self) -> FakeGraph:
        graph, self.capturing = FakeGraph(self.capturing or []), None
        return graph

    def launch_graph(self, graph: FakeGraph) -> None:
        for fn, cost in graph.ops:
            self.enqueue(fn, cost)

    # ---- device -----------------------------------------------------------------------------------
    def device_capability(self) -> tuple[int, int]:
        return 8, 6

    def device_name(self) -> str:
        return "Fake GPU"

    def close(self) -> None:
        self.closed = True


# ---- a TensorRT module whose engine computes y = x + sum(flexiq_max_4bit_ch) ------------------------------

FEATURES = 4


def kernel_cost_ms(vector: np.ndarray, batch: int) -> float:
    """Fake execution time: more 4-bit channels run faster, larger batches slower."""
    return 1.0 + 0.1 * batch - 0.001 * float(vector.sum())


class _Context:
    def __init__(self, engine: _Engine) -> None:
        self.engine, self.shapes, self.addresses = engine, {}, {}

    def set_input_shape(self, name: str, shape) -> bool:
        if len(shape) != 2 or shape[1] != FEATURES or not 1 <= shape[0] <= 16:
            return False
        self.shapes[name] = tuple(shape)
        return True

    def set_tensor_address(self, name: str, ptr: int) -> None:
        self.addresses[name] = ptr

    def get_tensor_shape(self, name: str):
        if name == RUNTIME_INPUT:
            return (self.engine.num_layers,)
        return self.shapes.get("x", (-1, FEATURES))

    def execute_async_v3(self, stream: int) -> bool:
        cuda, L = self.engine.cuda, self.engine.num_layers
        shape = self.shapes["x"]
        addr = dict(self.addresses)  # what the kernel was launched with

        def kernel() -> None:
            x = cuda.read(addr["x"], np.float32, int(np.prod(shape))).reshape(shape)
            v = cuda.read(addr[RUNTIME_INPUT], np.int32, L)
            cuda.write(addr["y"], x + np.float32(v.sum()))

        # The cost is fixed at launch from the buffer's value then; good enough for timing tests.
        v_now = cuda.read(addr[RUNTIME_INPUT], np.int32, L) if cuda.capturing is None else np.zeros(L)
        cuda.enqueue(kernel, kernel_cost_ms(v_now, shape[0]))
        return True


class _Engine:
    def __init__(self, cuda: FakeCuda, num_layers: int) -> None:
        self.cuda, self.num_layers = cuda, num_layers
        self._tensors = {"x": ("in", np.float32, (-1, FEATURES)), RUNTIME_INPUT: ("in", np.int32, (num_layers,)),
                         "y": ("out", np.float32, (-1, FEATURES))}
        self.num_io_tensors = len(self._tensors)

    def get_tensor_name(self, i: int) -> str:
        return list(self._tensors)[i]

    def get_tensor_mode(self, name: str) -> str:
        return self._tensors[name][0]

    def get_tensor_dtype(self, name: str):
        return self._tensors[name][1]

    def get_tensor_shape(self, name: str):
        return self._tensors[name][2]

    def get_tensor_profile_shape(self, name: str, profile: int):
        return (1, FEATURES), (8, FEATURES), (16, FEATURES)

    def create_execution_context(self) -> _Context:
        return _Context(self)


def fake_tensorrt(cuda: FakeCuda, num_layers: int = 2):
    """A `runtime.trt_import.TensorRT` whose module deserializes any bytes into the fake engine."""
    from flexiq_trt.runtime.trt_import import TensorRT

    class Registry:
        def get_creator(self, *_):
            return object()  # the FlexiQ creators count as registered

    class Logger:
        WARNING = 2

        def __init__(self, level: int) -> None:
            self.level = level

    class Runtime:
        def __init__(self, logger) -> None:
            pass

        def deserialize_cuda_engine(self, data: bytes):
            return _Engine(cuda, num_layers) if data.startswith(b"FAKE") else None

    module = types.SimpleNamespace(
        Logger=Logger, Runtime=Runtime, get_plugin_registry=Registry, nptype=lambda dt: dt,
        TensorIOMode=types.SimpleNamespace(INPUT="in", OUTPUT="out"))
    return TensorRT(module=module, is_rtx=False)
