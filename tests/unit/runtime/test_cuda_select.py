"""Choosing the CUDA implementation once (pycuda first, cuda-python where pycuda is absent), and the
pycuda wrapper's calls checked against a stand-in `pycuda.driver` module (no driver here)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from _fake_gpu import FakeCuda, fake_tensorrt

from flexiq_trt.errors import ConfigError
from flexiq_trt.runtime import cuda_api, cuda_python_api, pycuda_api
from flexiq_trt.runtime.cuda_api import CUDA_BACKEND_ENV, CudaApi, CudaBackendError, open_cuda_api


class _Stub:
    def __init__(self, device: int = 0) -> None:
        self.device = device


def _stubs(monkeypatch, pycuda_ok: bool = True, cuda_python_ok: bool = True) -> None:
    def make(name, ok):
        class Impl(_Stub):
            def __init__(self, device: int = 0) -> None:
                if not ok:
                    raise CudaBackendError(f"cannot import {name}")
                super().__init__(device)
                self.name = name
        return Impl

    monkeypatch.setattr(pycuda_api, "PycudaApi", make("pycuda", pycuda_ok))
    monkeypatch.setattr(cuda_python_api, "CudaPythonApi", make("cuda-python", cuda_python_ok))


def test_auto_prefers_pycuda_then_cuda_python(monkeypatch) -> None:
    monkeypatch.delenv(CUDA_BACKEND_ENV, raising=False)
    _stubs(monkeypatch)
    assert open_cuda_api().name == "pycuda"
    _stubs(monkeypatch, pycuda_ok=False)
    assert open_cuda_api().name == "cuda-python"
    _stubs(monkeypatch, pycuda_ok=False, cuda_python_ok=False)
    with pytest.raises(CudaBackendError, match=r"pycuda: cannot import pycuda; cuda-python: .*'gpu' extra"):
        open_cuda_api()


def test_argument_and_environment_choose(monkeypatch) -> None:
    _stubs(monkeypatch)
    monkeypatch.setenv(CUDA_BACKEND_ENV, "cuda_python")
    assert open_cuda_api().name == "cuda-python"
    assert open_cuda_api("pycuda").name == "pycuda"  # the argument wins over the variable
    _stubs(monkeypatch, pycuda_ok=False)
    with pytest.raises(CudaBackendError, match="pycuda: cannot import pycuda"):
        open_cuda_api("pycuda")  # asked for explicitly: no silent fallback
    monkeypatch.setenv(CUDA_BACKEND_ENV, "opencl")
    with pytest.raises(ConfigError, match="FLEXIQ_CUDA_BACKEND='opencl'.*pycuda, cuda-python, auto"):
        open_cuda_api()


def test_runner_opens_cuda_once_and_closes_it(monkeypatch, table, fake_engine) -> None:
    from flexiq_trt.runtime import engine_runner

    shared = FakeCuda()  # the fake engine computes in this fake's memory
    opened: list[tuple[FakeCuda, str | None]] = []

    def fake_open(name=None):
        opened.append((shared, name))
        return shared

    monkeypatch.setattr(engine_runner, "open_cuda_api", fake_open)
    with engine_runner.EngineRunner(fake_engine, ratio_table=table, plugin_lib="x.so",
                                    trt=fake_tensorrt(shared), cuda="cuda-python") as r:
        r.set_ratio(0.5)
        r.infer({"x": np.zeros((1, 4), dtype=np.float32)})
        r.set_ratio(1.0)
    assert opened == [(shared, "cuda-python")] and shared.closed  # opened once, by name, and closed
    assert isinstance(shared, CudaApi)


# ---- PycudaApi against a stand-in pycuda.driver --------------------------------------------------------------


class _HostAlloc(bytearray):
    freed = False

    def free(self) -> None:
        self.freed = True


def _fake_pycuda(log: list):
    drv = types.ModuleType("pycuda.driver")

    class Error(Exception):
        pass

    class Context:
        def push(self):
            log.append("push")

        def pop(self):
            log.append("pop")

        def detach(self):
            log.append("detach")

    class Device:
        def __init__(self, n):
            log.append(f"device {n}")

        def retain_primary_context(self):
            log.append("retain_primary_context")
            return Context()

        def compute_capability(self):
            return (8, 9)

        def name(self):
            return "Stand-in GPU"

    class Stream:
        handle = 0xABC

        def synchronize(self):
            log.append("stream.synchronize")

    class Alloc:
        def __init__(self, n):
            self.n = n

        def __int__(self):
            return 0x5000

        def free(self):
            log.append("free")

    class Event:
        def __init__(self, t=0.0):
            self.t = t

        def record(self, stream):
            log.append(("record", stream.handle))

        def time_since(self, other):
            return 2.5

    drv.Error, drv.Device, drv.Stream, drv.Event = Error, Device, Stream, Event
    drv.init = lambda: log.append("init")
    drv.mem_alloc = Alloc
    drv.pagelocked_empty = lambda n, dtype: np.ndarray((n,), dtype, buffer=_HostAlloc(n * np.dtype(dtype).itemsize))
    drv.memcpy_htod_async = lambda dst, src, stream: log.append(("htod", dst, src.nbytes, stream.handle))
    drv.memcpy_dtoh_async = lambda dst, src, stream: log.append(("dtoh", src, dst.nbytes, stream.handle))
    drv.memcpy_dtod_async = lambda dst, src, n, stream: log.append(("dtod", dst, src, n, stream.handle))
    package = types.ModuleType("pycuda")
    package.driver = drv
    return package, drv


def test_pycuda_api_uses_the_primary_context_and_its_stream(monkeypatch) -> None:
    log: list = []
    package, drv = _fake_pycuda(log)
    monkeypatch.setitem(sys.modules, "pycuda", package)
    monkeypatch.setitem(sys.modules, "pycuda.driver", drv)
    monkeypatch.setattr(pycuda_api, "_DriverGraphs", lambda: None)  # libcuda is not here
    api = pycuda_api.PycudaApi(0)
    assert log[:4] == ["init", "device 0", "retain_primary_context", "push"]  # not pycuda.autoinit's own context
    assert isinstance(api, CudaApi) and api.stream_handle() == 0xABC
    ptr = api.malloc(16)
    pinned = api.pinned_array(4, np.int32)
    api.htod_async(ptr, pinned)
    api.dtoh_async(np.zeros(3, np.float32), ptr)
    api.dtod_async(ptr, ptr, 8)
    assert ("htod", ptr, 16, 0xABC) in log and ("dtoh", ptr, 12, 0xABC) in log and ("dtod", ptr, ptr, 8, 0xABC) in log
    start, end = api.event_create(), api.event_create()
    api.event_record(start)
    assert ("record", 0xABC) in log and api.event_elapsed_ms(start, end) == 2.5
    assert api.device_capability() == (8, 9) and api.device_name() == "Stand-in GPU"
    api.free(ptr)
    with pytest.raises(cuda_api.FlexiqError, match="was not allocated by this PycudaApi"):
        api.free(ptr)
    api.close()
    assert pinned.base.freed and log[-2:] == ["pop", "detach"]
    api.close()  # idempotent


def test_missing_packages_name_the_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pycuda", None)
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    with pytest.raises(CudaBackendError, match="pip install pycuda"):
        pycuda_api.PycudaApi()
    for name in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(CudaBackendError, match="pip install cuda-python"):
        cuda_python_api.CudaPythonApi()
