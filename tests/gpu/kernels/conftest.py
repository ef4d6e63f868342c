"""Fixtures of the GPU kernel tests: the kernel C ABI, the CPU reference, and skip rules.

Tests here skip with a reason when the library is not built, cannot load (no CUDA runtime), or no
GPU is visible. Int4 tests also need native int4 MMA (sm_80/86/87/89) unless FLEXIQ_FORCE_INT4=1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "kernels"))  # shared ctypes bindings

from flexiq_kernel_ctypes import NATIVE_INT4_SMS, device_info, load_cpu_reference, load_kernels_capi  # noqa: E402


@pytest.fixture(scope="session")
def kernels_capi():
    """(library, (major, minor)) of the first GPU; skips without a library or a GPU."""
    lib, why = load_kernels_capi()
    if lib is None:
        pytest.skip(why)
    count, sm = device_info(lib)
    if count == 0:
        pytest.skip("no CUDA GPU visible (cudaGetDeviceCount returned 0 or failed)")
    if sm < (8, 0):
        pytest.skip(f"sm_{sm[0]}{sm[1]} has no m16n8k32 int8/int4 mma (need sm_80+)")
    return lib, sm


@pytest.fixture(scope="session")
def cpu_ref(tmp_path_factory):
    """The C++ CPU reference the GPU results are compared with."""
    lib = load_cpu_reference(tmp_path_factory.mktemp("cpu_reference"))
    if lib is None:
        pytest.skip("libflexiq_cpu_reference.so not built and no g++ to build it")
    return lib


@pytest.fixture
def int4_allowed(kernels_capi):
    """Skip int4-backend tests where int4 MMA is not native, unless FLEXIQ_FORCE_INT4=1 (emulated)."""
    _, sm = kernels_capi
    if sm not in NATIVE_INT4_SMS and os.environ.get("FLEXIQ_FORCE_INT4") != "1":
        pytest.skip(f"sm_{sm[0]}{sm[1]}: int4 mma is not native (set FLEXIQ_FORCE_INT4=1 to run it emulated)")
