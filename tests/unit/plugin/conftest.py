"""Fixtures of the plugin tests: the built plugin library, TensorRT-RTX, and a build folder.

The library is built by scripts/build_plugins.sh (CI runs it in scripts/setup.sh). Tests that need it
skip with the reason when it is missing, unless FLEXIQ_REQUIRE_PLUGIN=1 (CI), where they fail.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flexiq_trt.errors import PluginNotFoundError

REPO = Path(__file__).resolve().parents[3]


def _missing(reason: str) -> None:
    if os.environ.get("FLEXIQ_REQUIRE_PLUGIN") == "1":
        pytest.fail(f"{reason} (FLEXIQ_REQUIRE_PLUGIN=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def plugin_lib() -> Path:
    """Path of libflexiq_plugins.so (FLEXIQ_PLUGIN_LIB, package dir or build/)."""
    from flexiq_trt.runtime.plugin_loader import find_plugin_library

    try:
        return find_plugin_library()
    except PluginNotFoundError as e:
        _missing(f"plugin library not built: {e}")
        raise  # unreachable: _missing raises


@pytest.fixture(scope="session")
def host_tests_exe(plugin_lib: Path) -> Path:
    """The C++ host test executable built beside the library."""
    exe = plugin_lib.parent.parent / "tests" / "cpp" / "host" / "flexiq_host_tests"
    if not exe.is_file():
        _missing(f"{exe} not built (FLEXIQ_BUILD_TESTS=ON builds it)")
    return exe


@pytest.fixture(scope="session")
def rtx(plugin_lib: Path):
    """TensorRT-RTX (parser symlink ensured) with the FlexiQ plugins loaded."""
    pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx wheels not installed (pip install 'flexiq_trt[rtx]')")
    from flexiq_trt.runtime.plugin_loader import load_plugins
    from flexiq_trt.runtime.trt_import import import_tensorrt

    trt = import_tensorrt("tensorrt_rtx")
    assert trt.is_rtx
    load_plugins(trt.module, plugin_lib)
    return trt
