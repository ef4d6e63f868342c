"""libflexiq_plugins.so: exports, dependencies, and loading into a real TensorRT-RTX plugin registry."""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import pytest

from flexiq_trt import plugin_spec as spec

pytestmark = pytest.mark.plugin


def _dynamic_symbols(lib) -> set[str]:
    out = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True, check=True)
    return {line.split()[-1] for line in out.stdout.splitlines() if line.strip()}


@pytest.mark.skipif(shutil.which("nm") is None, reason="binutils nm not installed")
def test_exports_only_get_creators_and_set_logger_finder(plugin_lib) -> None:
    code_symbols = {s for s in _dynamic_symbols(plugin_lib) if not s.startswith("_") or s.startswith("_Z")}
    assert code_symbols == {"getCreators", "setLoggerFinder"}


@pytest.mark.skipif(shutil.which("readelf") is None, reason="binutils readelf not installed")
def test_no_link_time_dependency_on_tensorrt(plugin_lib) -> None:
    out = subprocess.run(["readelf", "-d", str(plugin_lib)], capture_output=True, text=True, check=True).stdout
    needed = [line.split("[")[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]
    assert needed, out
    assert not [n for n in needed if "nvinfer" in n or "tensorrt" in n], needed


def test_loads_with_ctypes_and_resolves_entry_points(plugin_lib) -> None:
    lib = ctypes.CDLL(str(plugin_lib))
    assert lib.getCreators and lib.setLoggerFinder
    with pytest.raises(AttributeError):
        _ = lib.flexiqEnqueue  # kernel symbols stay hidden


@pytest.mark.rtx
def test_loads_into_tensorrt_rtx_registry(rtx) -> None:
    registry = rtx.module.get_plugin_registry()
    for op in spec.PLUGIN_OPS:
        creator = registry.get_creator(op, spec.PLUGIN_VERSION, spec.PLUGIN_NAMESPACE)
        assert creator is not None, op
        assert creator.name == op and creator.plugin_namespace == spec.PLUGIN_NAMESPACE
        names = [f.name for f in creator.field_names]
        assert names == [f.name for f in spec.fields_for(op)]
    current = int(spec.PLUGIN_VERSION)
    for other in [str(v) for v in range(1, current + 2) if v != current]:  # older nodes (1: bias [N]; 2: no
        # INT8-edge fields; 3: no workspace edges; 4: power-of-two activation steps) and newer ones find no creator
        assert registry.get_creator(spec.GEMM_OP, other, spec.PLUGIN_NAMESPACE) is None
