"""Fixtures of the benchmark-tool tests: the perfmodel package and the built kernel library's SASS."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "benchmarks"))

from perfmodel import kernels, sass  # noqa: E402


def _missing(reason: str):
    if os.environ.get("FLEXIQ_REQUIRE_PLUGIN") == "1":
        pytest.fail(f"{reason} (FLEXIQ_REQUIRE_PLUGIN=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def capi_library() -> Path:
    """The built libflexiq_kernels_capi.so (FLEXIQ_KERNELS_CAPI_LIB or build/)."""
    lib = Path(os.environ.get("FLEXIQ_KERNELS_CAPI_LIB", kernels.DEFAULT_LIBRARY))
    if not lib.is_file():
        _missing(f"{lib} not built (bash scripts/build_plugins.sh)")
    if sass.find_cuobjdump() is None:
        _missing("cuobjdump not found (pip install nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm)")
    return lib


@pytest.fixture(scope="session")
def sm86_kernels(capi_library):
    """(int4/int8 GemmKernel by backend, notes) of the sm_86 SASS; disassembled once per session."""
    return kernels.gemm_kernels(capi_library, "sm_86")
