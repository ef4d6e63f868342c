"""Run a FlexiQ engine on a GPU and switch its 4-bit ratio without rebuilding anything.

The ratio lives in one device buffer, the engine input ``flexiq_max_4bit_ch`` (int32 [L]); setting a
ratio is one host-to-device copy of L int32 values on the runner's stream (docs/design.md §4), so it is
ordered with the inferences around it and can be part of a captured CUDA graph. The copies'
pinned sources are a ring guarded by events (runtime/ratio_buffer.py), so a ratio change never
overwrites a source an earlier queued copy has yet to read. Needs a GPU: TensorRT (or TensorRT-RTX)
and the CUDA package (pycuda, else cuda-python; runtime/cuda_api.py) are imported when a runner is
created, never at import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flexiq_trt.errors import ConfigError, FlexiqError, ModelError
from flexiq_trt.log import get_logger
from flexiq_trt.plugin_spec import RUNTIME_INPUT
from flexiq_trt.runtime.cuda_api import CudaApi, open_cuda_api
from flexiq_trt.runtime.plugin_loader import load_plugins
from flexiq_trt.runtime.ratio_buffer import RatioStager
from flexiq_trt.runtime.trt_import import TensorRT, import_tensorrt

LOG = get_logger(__name__)


@dataclass(frozen=True)
class CapturedGraph:
    """An instantiated CUDA graph and whether its replay reads the ratio stager's graph source."""

    graph_exec: Any
    reads_ratio_source: bool


class EngineRunner:
    """One engine, one execution context, device buffers per tensor and the [L] ratio buffer.

    `cuda` is a CudaApi instance (the caller keeps ownership), or a backend name ("pycuda",
    "cuda-python", "auto"; None reads FLEXIQ_CUDA_BACKEND): the choice is made here, once.
    `ratio_slots` pinned sources rotate for set_ratio (see runtime/ratio_buffer.py).
    """

    def __init__(self, engine_path: str | os.PathLike, *, ratio_table: object | None = None,
                 plugin_lib: str | None = None, trt: TensorRT | None = None,
                 cuda: CudaApi | str | None = None, ratio_slots: int = 2) -> None:
        path = Path(engine_path)
        if not path.is_file():
            raise ModelError(f"{path}: no such engine file")
        self.engine_path = path
        self.trt = trt or import_tensorrt()
        tm = self.trt.module
        load_plugins(tm, plugin_lib)
        self._owns_cuda = cuda is None or isinstance(cuda, str)
        self.cuda: CudaApi = open_cuda_api(cuda) if self._owns_cuda else cuda  # type: ignore[arg-type]
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device ptr, capacity bytes)
        self._closed = False
        try:
            self._load(path, ratio_table, ratio_slots)
        except BaseException:
            self.close()
            raise

    def _load(self, path: Path, ratio_table: object | None, ratio_slots: int) -> None:
        tm = self.trt.module
        self._logger = tm.Logger(tm.Logger.WARNING)
        self._runtime = tm.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise ModelError(f"{path}: TensorRT could not deserialize the engine (other version or GPU?)")
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise FlexiqError(f"{path}: could not create an execution context (see the TensorRT log)")
        self._names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.num_layers = self._runtime_input_length()
        self.ratio = RatioStager(self.cuda, self.num_layers, ratio_table, slots=ratio_slots)
        self._bind(RUNTIME_INPUT, self.num_layers * 4)
        self.set_ratio(np.zeros(self.num_layers, dtype=np.int32))
        LOG.info("loaded %s (L=%d, tensors %s, CUDA through %s)", path, self.num_layers, self._names, self.cuda.name)

    # ---- ratio switching -----------------------------------------------------------------------
    def set_ratio(self, value: float | np.ndarray | list[int]) -> np.ndarray:
        """Queue the copy of a ratio's (or an explicit) int32 [L] vector to the device; returns it.

        Stream-ordered: inferences queued before keep the previous ratio, those queued after get
        this one, even when nothing has run yet.
        """
        return self.ratio.copy(self._buffers[RUNTIME_INPUT][0], value)

    # ---- inference -----------------------------------------------------------------------------
    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Copy `feeds` in, run once (enqueueV3), copy every output back and synchronize."""
        self.prepare(feeds)
        self.enqueue()
        outputs = self.fetch_outputs()
        self.cuda.synchronize()
        return outputs

    def prepare(self, feeds: dict[str, np.ndarray]) -> None:
        """Set input shapes, (re)allocate buffers and queue the input copies."""
        tm = self.trt.module
        for name, array in feeds.items():
            if name == RUNTIME_INPUT:
                raise ConfigError(f"set {RUNTIME_INPUT} with set_ratio(), not as a feed")
            if name not in self._names or self.engine.get_tensor_mode(name) != tm.TensorIOMode.INPUT:
                raise ConfigError(f"{name!r} is not an input of this engine (inputs: {self.input_names()})")
            want = tm.nptype(self.engine.get_tensor_dtype(name))
            host = np.ascontiguousarray(array, dtype=want)
            if not self.context.set_input_shape(name, host.shape):
                raise ConfigError(f"input {name!r}: shape {list(host.shape)} is outside the engine's profile")
            self._bind(name, host.nbytes)
            self.cuda.htod_async(self._buffers[name][0], host)
        for name in self.output_names():
            shape = tuple(self.context.get_tensor_shape(name))
            self._bind(name, int(np.prod(shape)) * np.dtype(tm.nptype(self.engine.get_tensor_dtype(name))).itemsize)

    def enqueue(self) -> None:
        """Run the engine on the runner's stream (no copies): what a CUDA graph captures."""
        if not self.context.execute_async_v3(self.cuda.stream_handle()):
            raise FlexiqError("execute_async_v3 failed (see the TensorRT log)")

    def fetch_outputs(self) -> dict[str, np.ndarray]:
        """Queue the output copies; arrays are valid after the stream is synchronized."""
        tm = self.trt.module
        out = {}
        for name in self.output_names():
            shape = tuple(self.context.get_tensor_shape(name))
            out[name] = np.empty(shape, dtype=tm.nptype(self.engine.get_tensor_dtype(name)))
            self.cuda.dtoh_async(out[name], self._buffers[name][0])
        return out

    # ---- CUDA graphs -----------------------------------------------------------------------------
    def capture_graph(self, include_ratio_copy: bool = True) -> CapturedGraph:
        """Capture [ratio copy +] enqueue into a CUDA graph (shapes and buffers must already be set).

        Without the ratio copy, call set_ratio() before launch_graph(): stream order applies.
        """
        source = self.ratio.graph_source() if include_ratio_copy else None
        self.cuda.begin_capture()
        try:
            if source is not None:
                self.cuda.htod_async(self._buffers[RUNTIME_INPUT][0], source)
            self.enqueue()
        finally:
            graph_exec = self.cuda.end_capture()
        return CapturedGraph(graph_exec, include_ratio_copy)

    def launch_graph(self, graph: CapturedGraph) -> None:
        """Replay a captured graph; a captured ratio copy reads the vector set by `stage_ratio`."""
        self.cuda.launch_graph(graph.graph_exec)
        if graph.reads_ratio_source:
            self.ratio.graph_launched()

    def stage_ratio(self, value: float | np.ndarray | list[int]) -> np.ndarray:
        """Set the vector the next replay of a graph captured with the ratio copy will use.

        Waits (host side) only while an earlier replay has yet to read the previous vector.
        """
        return self.ratio.stage_graph(value)

    # ---- helpers ---------------------------------------------------------------------------------
    def input_names(self) -> list[str]:
        """Engine inputs other than flexiq_max_4bit_ch."""
        tm = self.trt.module
        return [n for n in self._names if self.engine.get_tensor_mode(n) == tm.TensorIOMode.INPUT and n != RUNTIME_INPUT]

    def output_names(self) -> list[str]:
        """Engine outputs."""
        tm = self.trt.module
        return [n for n in self._names if self.engine.get_tensor_mode(n) == tm.TensorIOMode.OUTPUT]

    def input_shape(self, name: str, batch: int) -> tuple[int, ...]:
        """`name`'s shape at batch size `batch`: dynamic dims other than the batch from the opt profile."""
        shape = list(self.engine.get_tensor_shape(name))
        if any(d < 0 for d in shape[1:]):
            opt = list(self.engine.get_tensor_profile_shape(name, 0)[1])
            shape = [shape[0]] + [o if d < 0 else d for d, o in zip(shape[1:], opt[1:], strict=True)]
        if shape and shape[0] < 0:
            shape[0] = int(batch)
        elif shape and shape[0] != batch:
            raise ConfigError(f"input {name!r} has a static batch {shape[0]}; batch {batch} is not possible")
        return tuple(int(d) for d in shape)

    def input_dtype(self, name: str) -> np.dtype:
        """The NumPy dtype the engine wants for input `name`."""
        return np.dtype(self.trt.module.nptype(self.engine.get_tensor_dtype(name)))

    def _runtime_input_length(self) -> int:
        if RUNTIME_INPUT not in self._names:
            raise ModelError(f"the engine has no {RUNTIME_INPUT} input: not a FlexiQ engine")
        shape = tuple(self.engine.get_tensor_shape(RUNTIME_INPUT))
        if len(shape) != 1 or shape[0] < 1:
            raise ModelError(f"{RUNTIME_INPUT} must have a static shape [L], the engine has {list(shape)}")
        return int(shape[0])

    def _bind(self, name: str, nbytes: int) -> None:
        ptr, cap = self._buffers.get(name, (0, 0))
        if nbytes > cap:
            if ptr:
                self.cuda.synchronize()
                self.cuda.free(ptr)
            ptr, cap = self.cuda.malloc(nbytes), max(nbytes, 1)
            self._buffers[name] = (ptr, cap)
        self.context.set_tensor_address(name, ptr)

    def close(self) -> None:
        """Free device buffers and, when the runner opened it, the CUDA stream and pinned memory (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.cuda.synchronize()
        for ptr, _ in self._buffers.values():
            self.cuda.free(ptr)
        self._buffers.clear()
        if self._owns_cuda:
            self.cuda.close()

    def __enter__(self) -> EngineRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
