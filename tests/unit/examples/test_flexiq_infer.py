"""flexiq_infer (examples/cpp): its CPU unit tests, C++ ratio -> vector == Python's on real tables,
and the binary's exit status and messages for bad tables, engine paths and command lines.

The GPU part (engine deserialization, CUDA-graph replay) needs a TensorRT runtime and a GPU:
test_runs_an_engine_on_a_gpu is marked `gpu` and skips otherwise.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from _utils.cpp_harness import assert_harness_passed

from flexiq_trt.ratios import load_ratio_table

pytestmark = pytest.mark.plugin


def _run(exe: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("FLEXIQ_PLUGIN_LIB", "FLEXIQ_TRT_LIB")}
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_cpp_host_tests_pass(infer_host_tests_exe) -> None:
    assert_harness_passed(_run(infer_host_tests_exe), min_cases=12, min_checks=3000)


def test_cpp_host_tests_fail_for_unknown_filter(infer_host_tests_exe) -> None:
    out = _run(infer_host_tests_exe, "no_such_test_case")
    assert out.returncode == 1 and "0 test cases" in out.stdout


def _probe_ratios(table, rng: np.random.Generator) -> list[float]:
    """Ladder, a grid, random ratios, and both sides of every prefix boundary (cum[i] / cum[-1])."""
    ratios = [0.0, 1.0, 1e-300, 5e-324, *table.ladder, *np.linspace(0, 1, 401), *rng.uniform(0, 1, 200)]
    cum = np.cumsum([table.layers[li].group_macs[g] for li, g in table.order], dtype=np.float64)
    for c in cum:
        r = float(c / cum[-1])
        ratios += [r, float(np.nextafter(r, 0.0)), min(float(np.nextafter(r, 2.0)), 1.0)]
    return [float(r) for r in ratios]


@pytest.mark.parametrize("model", ["fmnist_resnet", "pplcnet_orientation"])
def test_cpp_vectors_equal_python_on_real_tables(infer_exe, real_tables, model) -> None:
    path = real_tables[model]
    table = load_ratio_table(path)
    ratios = _probe_ratios(table, np.random.default_rng(1))
    out = _run(infer_exe, "--table", str(path), "--print-vectors", "--ratios", ",".join(repr(r) for r in ratios))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == len(ratios)
    mismatches = []
    for r, line in zip(ratios, lines, strict=True):
        tokens = line.split()
        assert float(tokens[0]) == r, (line, r)
        got = np.array([int(t) for t in tokens[1:]], np.int32)
        want = table.vector(r)
        if got.shape != want.shape or not np.array_equal(got, want):
            mismatches.append((r, got.tolist(), want.tolist()))
    assert not mismatches, f"{len(mismatches)} of {len(ratios)} ratios differ, first: {mismatches[0]}"
    # The probes reach every prefix length, so every step of the ladder rule was compared.
    assert len({table.prefix_length(r) for r in ratios}) == len(table.order) + 1
    assert table.num_layers >= 10 and len(ratios) > 600


@pytest.fixture()
def good_table(real_tables, tmp_path) -> tuple[Path, dict]:
    """A copy of a real table (path, parsed JSON) and a dummy engine file beside it."""
    src = real_tables["fmnist_resnet"]
    (tmp_path / "m.engine").write_bytes(b"not an engine")
    return src, json.loads(src.read_text())


BAD_TABLES = [  # (mutation, expected message part)
    (lambda d: d.pop("order"), "required field 'order' is missing"),
    (lambda d: d["layers"][2].__setitem__("group_macs", ["x"]), "field 'layers[2].group_macs[0]' must be a number"),
    (lambda d: d.__setitem__("group_size", "32"), "field 'group_size' must be an integer, got string"),
    (lambda d: d.__setitem__("num_layers", d["num_layers"] + 1), "but 'layers' has 10 entries (L mismatch)"),
    (lambda d: d["ladder_n4"]["0.5000"].append(0), "expected L = 10 (L mismatch)"),
    (lambda d: d["order"].append([99, 0]), "is out of range [0, 9]"),
]


@pytest.mark.parametrize("case", range(len(BAD_TABLES)))
def test_malformed_table_exits_1_naming_file_and_field(infer_exe, good_table, tmp_path, case) -> None:
    _, data = good_table
    mutate, part = BAD_TABLES[case]
    mutate(data)
    bad = tmp_path / "bad.flexiq.json"
    bad.write_text(json.dumps(data))
    out = _run(infer_exe, "--engine", str(tmp_path / "m.engine"), "--table", str(bad))
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stderr.startswith(f"flexiq_infer: error: {bad}: "), out.stderr
    assert part in out.stderr, out.stderr


def test_unreadable_tables_exit_1(infer_exe, good_table, tmp_path) -> None:
    truncated = tmp_path / "trunc.flexiq.json"
    truncated.write_text(good_table[0].read_text()[:100])
    out = _run(infer_exe, "--engine", str(tmp_path / "m.engine"), "--table", str(truncated))
    assert out.returncode == 1 and f"{truncated}: not a valid JSON file" in out.stderr, out.stderr
    missing = tmp_path / "none.flexiq.json"
    out = _run(infer_exe, "--engine", str(tmp_path / "m.engine"), "--table", str(missing))
    assert out.returncode == 1 and f"{missing}: cannot open the ratio table" in out.stderr, out.stderr


def test_missing_engine_exits_1_naming_the_path(infer_exe, good_table, tmp_path) -> None:
    table, _ = good_table
    engine = tmp_path / "nowhere" / "model.engine"
    out = _run(infer_exe, "--engine", str(engine), "--table", str(table))
    assert out.returncode == 1 and f"{engine}: engine file not found" in out.stderr, out.stderr
    out = _run(infer_exe, "--engine", str(tmp_path), "--table", str(table))
    assert out.returncode == 1 and "engine path is not a regular file" in out.stderr, out.stderr


def test_bad_command_lines_exit_2(infer_exe, good_table, tmp_path) -> None:
    table, _ = good_table
    cases = [
        ((), "--table is required"),
        (("--table", str(table)), "--engine is required"),
        (("--table", str(table), "--engine", "e", "--ratios", "0.5,2"), "ratio must be a number in [0, 1], got 2"),
        (("--table", str(table), "--engine", "e", "--turbo"), "unknown argument '--turbo'"),
    ]
    for args, part in cases:
        out = _run(infer_exe, *args)
        assert out.returncode == 2 and part in out.stderr and "--help" in out.stderr, (args, out.stderr)
    out = _run(infer_exe, "--help")
    assert out.returncode == 0 and "flexiq_max_4bit_ch" in out.stdout and "--print-vectors" in out.stdout


def test_missing_tensorrt_runtime_exits_1(infer_exe, good_table, tmp_path) -> None:
    # Everything the host can check passes; then the TensorRT runtime library is looked for.
    table, _ = good_table
    out = _run(infer_exe, "--engine", str(tmp_path / "m.engine"), "--table", str(table),
               "--trt-lib", "libnvinfer_absent.so.10")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "cannot load the TensorRT runtime library 'libnvinfer_absent.so.10'" in out.stderr, out.stderr


def _tensorrt_runtime() -> str | None:
    name = os.environ.get("FLEXIQ_TRT_LIB", "libnvinfer.so.10")
    try:
        ctypes.CDLL(name)
    except OSError:
        return None
    return name


@pytest.mark.gpu
def test_runs_an_engine_on_a_gpu(infer_exe, plugin_lib, real_tables, tmp_path) -> None:
    """Full TensorRT + GPU: build the converted model's engine, run flexiq_infer over the ladder."""
    trt_lib = _tensorrt_runtime()
    if trt_lib is None:
        pytest.skip("no TensorRT runtime library (libnvinfer.so.10 or FLEXIQ_TRT_LIB) on this machine")
    from flexiq_trt.runtime.engine_builder import build_engine
    from flexiq_trt.runtime.plugin_loader import load_plugins
    from flexiq_trt.runtime.trt_import import import_tensorrt

    trt = import_tensorrt("tensorrt")  # full TensorRT: the runtime flexiq_infer is compiled for
    if trt.is_rtx:
        pytest.skip("only TensorRT-RTX is installed; flexiq_infer needs a full TensorRT 10 engine (docs/cpp.md)")
    load_plugins(trt.module, plugin_lib)
    table = real_tables["fmnist_resnet"]
    onnx_path = table.with_name(table.name.replace(".flexiq.json", ".flexiq.onnx"))
    engine = tmp_path / "m.engine"
    build_engine(onnx_path, engine, trt=trt, min_batch=1, opt_batch=8, max_batch=8)
    out = subprocess.run([str(infer_exe), "--engine", str(engine), "--table", str(table), "--plugin", str(plugin_lib),
                          "--trt-lib", trt_lib, "--iterations", "50"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [line.split() for line in out.stdout.splitlines() if re.match(r"^\s*[01]\.\d{4}\s", line)]
    assert len(rows) == 5 and len({r[-1] for r in rows}) > 1, out.stdout  # the output changes with the ratio
