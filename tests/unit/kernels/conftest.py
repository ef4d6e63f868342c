"""Fixtures of the CPU kernel tests: the C++ CPU reference library (built on demand with g++) and the
kernels' C API library (built by scripts/build_plugins.sh)."""

from __future__ import annotations

import os

import pytest
from flexiq_kernel_ctypes import load_cpu_reference, load_kernels_capi


@pytest.fixture(scope="session")
def cpu_ref(tmp_path_factory):
    """libflexiq_cpu_reference.so loaded with ctypes (skips when no C++ compiler and no prebuilt library)."""
    lib = load_cpu_reference(tmp_path_factory.mktemp("cpu_reference"))
    if lib is None:
        pytest.skip("libflexiq_cpu_reference.so not built and no g++ to build it "
                    "(set FLEXIQ_CPU_REFERENCE_LIB or run plugins/reference/build_standalone.sh)")
    return lib


@pytest.fixture(scope="session")
def capi():
    """libflexiq_kernels_capi.so loaded with ctypes (skips when not built, fails under FLEXIQ_REQUIRE_PLUGIN=1)."""
    lib, why = load_kernels_capi()
    if lib is None:
        if os.environ.get("FLEXIQ_REQUIRE_PLUGIN") == "1":
            pytest.fail(f"{why} (FLEXIQ_REQUIRE_PLUGIN=1)")
        pytest.skip(why)
    return lib
