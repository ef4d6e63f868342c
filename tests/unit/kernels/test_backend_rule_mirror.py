"""The static model prices what the runner runs: benchmarks/perfmodel/kernels.py's INT8_BACKEND_LAYERS (which
layers run the int8 backend on an arch whose own backend is int4) agrees with the library's backend rule
(flexiqSelectLayerBackend, plugins/kernels/flexiqLauncher.cpp), on a CPU."""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
from perfmodel import hardware, kernels  # noqa: E402

BACKEND_CODES = {"int4": 4, "int8": 5}  # kFLEXIQ_BACKEND_INT4_PIPELINED / INT8_PIPELINED


@pytest.fixture(scope="module")
def select_layer_backend(capi):
    lib = capi
    if not hasattr(lib, "flexiqCapiSelectLayerBackend"):
        pytest.skip("stale libflexiq_kernels_capi.so without flexiqCapiSelectLayerBackend (rebuild it)")
    fn = lib.flexiqCapiSelectLayerBackend
    fn.argtypes, fn.restype = [ctypes.c_int32] * 3, ctypes.c_int32
    return fn


@pytest.mark.parametrize("arch", sorted(hardware.ARCHS))
@pytest.mark.parametrize("group_size", [32, 64])
def test_perf_model_backend_matches_the_runner(select_layer_backend, monkeypatch, arch, group_size):
    monkeypatch.delenv("FLEXIQ_FORCE_INT4", raising=False)
    major, minor = int(arch[3:-1]), int(arch[-1])
    want = BACKEND_CODES[kernels.runner_backend(arch, group_size)]
    assert select_layer_backend(major, minor, group_size) == want


def test_choose_prices_the_int8_backend_only_on_sm80_g32():
    assert kernels.runner_backend("sm_80", 32) == "int8"
    assert {kernels.runner_backend(a, g) for a in ("sm_80", "sm_86", "sm_89") for g in (32, 64)
            if (a, g) != ("sm_80", 32)} == {"int4"}
    assert kernels.runner_backend(None, 32) == "int4"  # no arch: the device's backend, as before
