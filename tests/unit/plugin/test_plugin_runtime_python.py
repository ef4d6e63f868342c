"""flexiq_trt.runtime helpers that need no TensorRT: library search, parser symlink, ratio buffer, node checks."""

from __future__ import annotations

import os
import types

import numpy as np
import pytest
from _flexiq_models import conv_gemm_model
from onnx import helper

from flexiq_trt.errors import ConfigError, FlexiqError, ModelError, PluginFieldError, PluginNotFoundError
from flexiq_trt.ratios import LayerEntry, RatioTable
from flexiq_trt.runtime import plugin_loader, trt_import
from flexiq_trt.runtime.node_check import check_plugin_nodes
from flexiq_trt.runtime.ratio_buffer import HostMax4bit, max4bit_vector
from flexiq_trt.runtime.stderr_capture import capture_fd2

# ---- plugin library search ----------------------------------------------------------------------------


def test_env_variable_wins(tmp_path, monkeypatch) -> None:
    lib = tmp_path / "custom.so"
    lib.write_bytes(b"\x7fELF")
    monkeypatch.setenv(plugin_loader.PLUGIN_LIB_ENV, str(lib))
    assert plugin_loader.find_plugin_library() == lib.resolve()


def test_env_variable_naming_nothing_is_an_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(plugin_loader.PLUGIN_LIB_ENV, str(tmp_path / "missing.so"))
    with pytest.raises(PluginNotFoundError, match="FLEXIQ_PLUGIN_LIB=.*missing.so does not name a file"):
        plugin_loader.find_plugin_library()


def test_package_dir_before_build_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(plugin_loader.PLUGIN_LIB_ENV, raising=False)
    monkeypatch.setattr(plugin_loader, "_PACKAGE_DIR", tmp_path / "pkg")
    monkeypatch.setattr(plugin_loader, "_REPO_DIR", tmp_path / "repo")
    for d in ("pkg/lib", "repo/build/plugins"):
        (tmp_path / d).mkdir(parents=True)
        (tmp_path / d / plugin_loader.PLUGIN_LIB_NAME).write_bytes(b"x")
    assert plugin_loader.find_plugin_library() == (tmp_path / "pkg/lib" / plugin_loader.PLUGIN_LIB_NAME).resolve()
    (tmp_path / "pkg/lib" / plugin_loader.PLUGIN_LIB_NAME).unlink()
    assert plugin_loader.find_plugin_library().parent.name == "plugins"


def test_not_found_lists_every_place_and_the_remedy(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(plugin_loader.PLUGIN_LIB_ENV, raising=False)
    monkeypatch.setattr(plugin_loader, "_PACKAGE_DIR", tmp_path / "pkg")
    monkeypatch.setattr(plugin_loader, "_REPO_DIR", tmp_path / "repo")
    with pytest.raises(PluginNotFoundError) as info:
        plugin_loader.find_plugin_library()
    text = str(info.value)
    assert str(tmp_path / "pkg") in text and str(tmp_path / "repo") in text
    assert "scripts/build_plugins.sh" in text and "FLEXIQ_PLUGIN_LIB" in text


def test_load_plugins_reports_missing_creators(tmp_path) -> None:
    class Registry:
        def get_creator(self, *_):
            return None

        def load_library(self, path):
            return object()

    fake = types.SimpleNamespace(get_plugin_registry=Registry)
    with pytest.raises(PluginNotFoundError, match=r"no creator for \['FlexiQConv', 'FlexiQGemm'\]"):
        plugin_loader.load_plugins(fake, tmp_path / "lib.so")


# ---- TensorRT-RTX parser symlink (docs/design.md §6) -----------------------------------------------------------


def _fake_libs(monkeypatch, folder):
    spec = types.SimpleNamespace(submodule_search_locations=[str(folder)])
    real = trt_import.importlib.util.find_spec
    monkeypatch.setattr(trt_import.importlib.util, "find_spec",
                        lambda name: spec if name == trt_import.RTX_LIBS_PACKAGE else real(name))


def test_symlink_is_created_once_and_relative(tmp_path, monkeypatch) -> None:
    (tmp_path / "libtensorrt_rtx.so.1").write_bytes(b"elf")
    _fake_libs(monkeypatch, tmp_path)
    link = trt_import.ensure_rtx_parser_symlink()
    assert link == tmp_path / "libtensorrt_rtx.so"
    assert os.readlink(link) == "libtensorrt_rtx.so.1" and link.read_bytes() == b"elf"
    assert trt_import.ensure_rtx_parser_symlink() == link  # idempotent


def test_dangling_symlink_is_replaced(tmp_path, monkeypatch) -> None:
    (tmp_path / "libtensorrt_rtx.so.1").write_bytes(b"elf")
    os.symlink("libtensorrt_rtx.so.0", tmp_path / "libtensorrt_rtx.so")
    _fake_libs(monkeypatch, tmp_path)
    link = trt_import.ensure_rtx_parser_symlink()
    assert os.readlink(link) == "libtensorrt_rtx.so.1"


def test_incomplete_install_is_an_error(tmp_path, monkeypatch) -> None:
    _fake_libs(monkeypatch, tmp_path)
    with pytest.raises(FlexiqError, match="libtensorrt_rtx.so.1 does not exist"):
        trt_import.ensure_rtx_parser_symlink()


def test_no_rtx_install_returns_none(monkeypatch) -> None:
    real = trt_import.importlib.util.find_spec
    monkeypatch.setattr(trt_import.importlib.util, "find_spec",
                        lambda name: None if name == trt_import.RTX_LIBS_PACKAGE else real(name))
    assert trt_import.ensure_rtx_parser_symlink() is None


@pytest.mark.rtx
def test_real_rtx_install_has_the_symlink() -> None:
    pytest.importorskip("tensorrt_rtx_libs")
    link = trt_import.ensure_rtx_parser_symlink()
    assert link is not None and link.resolve().name == "libtensorrt_rtx.so.1"


def test_import_tensorrt_names_both_flavours_when_missing(monkeypatch) -> None:
    def fail(name):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(trt_import.importlib, "import_module", fail)
    with pytest.raises(trt_import.TensorRTNotFoundError, match="tensorrt_rtx: .*tensorrt: .*rtx"):
        trt_import.import_tensorrt()


# ---- ratio buffer ---------------------------------------------------------------------------------------


def _table() -> RatioTable:
    layers = [LayerEntry("a", "FlexiQConv", 0, 40, 64, 100.0, [60.0, 40.0]),
              LayerEntry("b", "FlexiQGemm", 1, 32, 32, 50.0, [50.0])]
    return RatioTable(32, layers, [(1, 0), (0, 0), (0, 1)], [0.0, 0.5, 1.0])


def test_vector_from_ratio_matches_the_table() -> None:
    table = _table()
    for ratio in (0.0, 0.3, 0.5, 1.0):
        v = max4bit_vector(ratio, 2, table)
        assert v.dtype == np.int32 and v.flags.c_contiguous
        np.testing.assert_array_equal(v, table.vector(ratio))
    np.testing.assert_array_equal(max4bit_vector(1.0, 2, table), [64, 32])


def test_vector_validation() -> None:
    with pytest.raises(ConfigError, match="needs the model's ratio table"):
        max4bit_vector(0.5, 2)
    with pytest.raises(ConfigError, match=r"shape \[2\], got \[3\]"):
        max4bit_vector([0, 32, 64], 2)
    with pytest.raises(ConfigError, match="integers"):
        max4bit_vector(np.array([0.5, 1.0]), 2)
    with pytest.raises(ConfigError, match=r"\[0, 2\^31\)"):
        max4bit_vector([-32, 0], 2)
    with pytest.raises(ConfigError, match="L=2 layers but the engine's flexiq_max_4bit_ch has 3"):
        max4bit_vector(0.5, 3, _table())
    with pytest.raises(ConfigError, match="ratio must be a number in"):
        max4bit_vector(1.5, 2, _table())


def test_host_buffer_is_updated_in_place() -> None:
    storage = np.full(2, 7, dtype=np.int32)
    buf = HostMax4bit(2, _table(), storage=storage)
    assert buf.array is storage and storage.tolist() == [0, 0]
    buf.set(1.0)
    assert storage.tolist() == [64, 32]
    buf.set([32, 0])
    assert storage.tolist() == [32, 0]
    with pytest.raises(ConfigError, match="storage must be int32"):
        HostMax4bit(3, storage=storage)


# ---- node pre-check ---------------------------------------------------------------------------------------


def test_node_check_accepts_a_valid_model() -> None:
    assert check_plugin_nodes(conv_gemm_model()) == 2


def test_node_check_rejects_int32_overflow_in_ints() -> None:
    model = conv_gemm_model(conv_replace={"pads": helper.make_attribute("pads", [0, 0, 0, 2**31])})
    with pytest.raises(PluginFieldError, match=r"flexiq_conv_0.*'pads' = 2147483648 does not fit int32"):
        check_plugin_nodes(model, "m.onnx")


# ---- stderr capture ---------------------------------------------------------------------------------------


def test_capture_fd2_sees_native_writes_and_passes_them_on(capfd) -> None:
    with capture_fd2() as captured:
        os.write(2, b"[flexiq ERROR] createPlugin: field 'x'\nother line\n")
    assert captured.plugin_lines() == ["[flexiq ERROR] createPlugin: field 'x'"]
    assert "other line" in capfd.readouterr().err


def test_engine_runner_imports_without_a_gpu_and_checks_the_path(tmp_path) -> None:
    from flexiq_trt.runtime import engine_runner

    assert hasattr(engine_runner, "EngineRunner")
    pytest.importorskip("tensorrt_rtx")
    try:
        plugin_loader.find_plugin_library()
    except PluginNotFoundError:
        pytest.skip("plugin library not built")
    with pytest.raises(ModelError, match="no such engine file"):
        engine_runner.EngineRunner(tmp_path / "missing.engine")
