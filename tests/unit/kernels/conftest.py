"""Fixtures of the CPU kernel tests: the C++ CPU reference library, built on demand with g++."""

from __future__ import annotations

import pytest
from flexiq_kernel_ctypes import load_cpu_reference


@pytest.fixture(scope="session")
def cpu_ref(tmp_path_factory):
    """libflexiq_cpu_reference.so loaded with ctypes (skips when no C++ compiler and no prebuilt library)."""
    lib = load_cpu_reference(tmp_path_factory.mktemp("cpu_reference"))
    if lib is None:
        pytest.skip("libflexiq_cpu_reference.so not built and no g++ to build it "
                    "(set FLEXIQ_CPU_REFERENCE_LIB or run plugins/reference/build_standalone.sh)")
    return lib
