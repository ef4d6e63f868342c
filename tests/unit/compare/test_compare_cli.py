"""`flexiq-trt compare`: the CPU comparison passes and fails with the right exit code; several ratios
give a per-ratio table; the engine comparison is wired up to the step that needs a GPU."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from flexiq_trt.cli.arg_groups import dataclass_from_args
from flexiq_trt.cli.main import build_parser, main
from flexiq_trt.errors import ConfigError
from flexiq_trt.report.compare import CompareConfig


def _args(converted, *extra: str) -> list[str]:
    result, original, heldout = converted
    return ["compare", str(original), str(result.files["sim_onnx"]), "--data", str(heldout), *extra]


def _table_rows(out: str) -> list[list[str]]:
    lines = out[out.index("Polygraphy comparison"):].splitlines()[2:]
    return [line.split() for line in lines if line.strip()]


def test_several_ratios_pass_with_a_per_ratio_table(converted, capsys) -> None:
    assert main(_args(converted, "--ratio", "0", "0.5", "1")) == 0
    rows = _table_rows(capsys.readouterr().out)
    assert [r[0] for r in rows] == ["0.00", "0.50", "1.00"]
    assert [r[2] for r in rows] == ["flexiq-sim@0", "flexiq-sim@0.5", "flexiq-sim@1"]
    assert all(r[3] == "PASS" for r in rows)
    # The vector really reaches the simulation: more 4-bit channels, larger error against FP32.
    median = [float(r[-1]) for r in rows]
    assert median[0] < median[1] < median[2]


def test_tight_tolerance_fails_with_exit_code_1(converted, capsys) -> None:
    status = main(_args(converted, "--ratio", "1", "--atol", "0", "--rtol", "0", "--check-error-stat", "max"))
    assert status == 1
    rows = _table_rows(capsys.readouterr().out)
    assert rows[0][3] == "FAIL" and rows[0][4].startswith("0/")


def test_corrupted_simulation_fails(converted, tmp_path, capsys) -> None:
    result, original, heldout = converted
    sim = onnx.load(str(result.files["sim_onnx"]))
    # Flip the sign of every float initializer that looks like a scale or bias: the math stays valid ONNX.
    flipped = 0
    for init in sim.graph.initializer:
        arr = onnx.numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.size > 1:
            init.CopyFrom(onnx.numpy_helper.from_array(-arr, init.name))
            flipped += 1
    assert flipped
    bad = tmp_path / "bad-sim.onnx"
    onnx.save(sim, bad)
    assert main(["compare", str(original), str(bad), "--data", str(heldout), "--ratio", "0.5"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_user_errors_are_one_line(converted, tmp_path, capsys) -> None:
    result, original, _ = converted
    assert main(["compare", str(original), str(result.files["sim_onnx"])]) == 1
    assert "compare needs --data" in capsys.readouterr().err
    assert main(_args(converted, "--ratio", "1.5")) == 1
    assert "ratio must be a number in" in capsys.readouterr().err
    assert main(["compare", str(original), str(original), "--data", str(converted[2])]) == 1
    assert "not a FlexiQ simulation ONNX" in capsys.readouterr().err
    assert main(_args(converted, "--engine", str(tmp_path / "missing.engine"))) == 1
    assert "missing.engine: no such engine file" in capsys.readouterr().err


def test_flags_are_generated_from_the_dataclass() -> None:
    args = build_parser().parse_args(["compare", "a.onnx", "b.onnx", "--data", "d.npz", "--ratio", "0", "0.5", "1",
                                      "--engine", "m.engine", "--check-error-stat", "max"])
    assert dataclass_from_args(CompareConfig, args) == CompareConfig(
        ratio=(0.0, 0.5, 1.0), data="d.npz", engine="m.engine", check_error_stat="max")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["compare", "a.onnx", "b.onnx", "--check-error-stat", "p95"])


def test_config_accepts_one_ratio_as_the_python_api_passes_it() -> None:
    from dataclasses import replace

    assert replace(CompareConfig(), ratio=0.25).ratio == (0.25,)
    with pytest.raises(ConfigError, match="iterations and batch_size"):
        CompareConfig(iterations=0)


# ---- the engine: built ahead of time with TensorRT-RTX, refused at the runtime step without a GPU ------------


@pytest.fixture(scope="module")
def engine(converted, tmp_path_factory):
    pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx wheels not installed")
    from flexiq_trt.errors import PluginNotFoundError
    from flexiq_trt.runtime.engine_builder import build_engine
    from flexiq_trt.runtime.plugin_loader import find_plugin_library

    try:
        find_plugin_library()
    except PluginNotFoundError as e:
        pytest.skip(f"plugin library not built: {e}")
    result, _, _ = converted
    out = tmp_path_factory.mktemp("engine") / "cbr.engine"
    build_engine(result.files["flexiq_onnx"], out, compute_capabilities=(86,), min_batch=1, opt_batch=8, max_batch=8)
    return out


@pytest.mark.rtx
@pytest.mark.plugin
def test_engine_comparison_refuses_at_the_runtime_step(converted, engine, monkeypatch, capsys) -> None:
    import polygraphy.config as pg_config

    monkeypatch.setenv("FLEXIQ_NO_GPU", "1")  # the same refusal on a machine that has a GPU
    assert main(_args(converted, "--ratio", "0", "1", "--engine", str(engine))) == 1
    err = capsys.readouterr().err
    assert "comparing the engine cbr.engine needs an NVIDIA GPU: FLEXIQ_NO_GPU is set" in err
    assert "Traceback" not in err
    # Everything before the GPU step ran: the plugin creators are in the TensorRT Polygraphy will use.
    from flexiq_trt.plugin_spec import PLUGIN_NAMESPACE, PLUGIN_OPS, PLUGIN_VERSION
    from flexiq_trt.runtime.trt_import import import_tensorrt

    assert pg_config.USE_TENSORRT_RTX is True
    registry = import_tensorrt().module.get_plugin_registry()
    assert all(registry.get_creator(op, PLUGIN_VERSION, PLUGIN_NAMESPACE) is not None for op in PLUGIN_OPS)


@pytest.mark.rtx
@pytest.mark.plugin
def test_a_file_that_is_not_an_engine_is_refused_before_the_gpu(converted, engine, tmp_path, capsys) -> None:
    fake = tmp_path / "fake.engine"
    fake.write_bytes(b"\0" * 4096)
    assert main(_args(converted, "--engine", str(fake))) == 1
    assert "not a FlexiQ engine" in capsys.readouterr().err
