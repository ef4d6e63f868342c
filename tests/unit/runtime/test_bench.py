"""bench: statistics, table and latency profile on the fake GPU; the CLI refuses cleanly without a GPU."""

from __future__ import annotations

import numpy as np
import pytest
from _fake_gpu import kernel_cost_ms

from flexiq_trt.cli.main import build_parser, main
from flexiq_trt.errors import ConfigError
from flexiq_trt.runtime.bench import BenchConfig, bench_runner, format_table, latency_profile, latency_stats
from flexiq_trt.runtime.cuda_api import gpu_status


def test_latency_stats() -> None:
    t = np.arange(1, 101, dtype=float)
    mean, p50, p99 = latency_stats(t)
    assert mean == 50.5 and p50 == 50.5 and p99 == pytest.approx(99.01)


@pytest.mark.parametrize("graph", [False, True])
def test_bench_measures_every_point_with_events(runner, cuda, table, graph) -> None:
    config = BenchConfig(ratios=(0.0, 0.5, 1.0), batch=(1, 4), iterations=5, warmup=2, cuda_graph=graph)
    result = bench_runner(runner, config, table)
    assert [(p.batch, p.ratio) for p in result.points] == [(b, r) for b in (1, 4) for r in (0.0, 0.5, 1.0)]
    for p in result.points:
        # Without a graph the fake kernel's cost follows the ratio in the device buffer at launch; a
        # graph's kernel was captured once (the fake prices it at ratio 0): either way the events time it.
        v = table.vector(p.ratio) if not graph else np.zeros(2)
        assert p.mean_ms == pytest.approx(kernel_cost_ms(v, p.batch))
        assert p.p50_ms == pytest.approx(p.mean_ms) and p.p99_ms == pytest.approx(p.mean_ms)
        assert p.throughput == pytest.approx(p.batch * 1000 / p.mean_ms)
        assert p.achieved_ratio == pytest.approx(table.achieved_ratio(table.vector(p.ratio)))
    assert result.device == "Fake GPU" and result.cuda_backend == "fake" and result.cuda_graph is graph
    text = format_table(result)
    assert "CUDA-graph replay" in text if graph else "enqueueV3" in text
    assert len(text.splitlines()) == 2 + 6 and "samples/s" in text and "p99 ms" in text


def test_bench_profile_is_what_the_serving_controller_reads(runner, table, tmp_path) -> None:
    from flexiq_trt.serve.profile import load_latency_profile

    config = BenchConfig(ratios=(1.0, 0.0), batch=(8, 2), iterations=3, warmup=0, cuda_graph=False)
    result = bench_runner(runner, config, table)
    path = tmp_path / "profile.json"
    path.write_text(latency_profile(result).to_json())
    profile = load_latency_profile(path)
    assert profile.ratios == (0.0, 1.0) and profile.batch_sizes == (2, 8)
    for p in result.points:
        assert profile.latency(p.ratio, p.batch) == pytest.approx(p.mean_ms)
    assert profile.latency(1.0, 8) < profile.latency(0.0, 8)  # the fake's 4-bit path is faster
    assert "flexiq-trt bench" in profile.source


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="ratio must be a number in"):
        BenchConfig(ratios=(1.5,))
    with pytest.raises(ConfigError, match="batch sizes must be >= 1"):
        BenchConfig(batch=(0,))
    with pytest.raises(ConfigError, match="must not repeat"):
        BenchConfig(ratios=(0.5, 0.5))
    with pytest.raises(ConfigError, match="iterations must be >= 1"):
        BenchConfig(iterations=0)


def test_cli_flags_come_from_the_dataclass() -> None:
    args = build_parser().parse_args(["bench", "m.engine", "--ratio-table", "t.json", "--ratios", "0", "1",
                                      "--batch", "1", "8", "--no-cuda-graph", "--cuda-backend", "pycuda"])
    from flexiq_trt.cli.arg_groups import dataclass_from_args

    config = dataclass_from_args(BenchConfig, args)
    assert config == BenchConfig(ratio_table="t.json", ratios=(0.0, 1.0), batch=(1, 8), cuda_graph=False,
                                 cuda_backend="pycuda")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "m.engine", "--cuda-backend", "opencl"])


def _bench_files(tmp_path, table):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"not needed: the GPU check comes before deserialization")
    table_path = tmp_path / "m.flexiq.json"
    table_path.write_text(table.to_json())
    return str(engine), str(table_path)


def test_cli_refuses_without_a_gpu(tmp_path, table, monkeypatch, capsys) -> None:
    engine, table_path = _bench_files(tmp_path, table)
    monkeypatch.setenv("FLEXIQ_NO_GPU", "1")
    assert main(["bench", engine, "--ratio-table", table_path, "--ratios", "0", "1"]) == 1
    err = capsys.readouterr().err
    assert "flexiq-trt bench: error: flexiq-trt bench needs an NVIDIA GPU: FLEXIQ_NO_GPU is set" in err
    assert "Traceback" not in err


def test_cli_user_errors_come_before_the_gpu_check(tmp_path, table, monkeypatch, capsys) -> None:
    engine, table_path = _bench_files(tmp_path, table)
    monkeypatch.setenv("FLEXIQ_NO_GPU", "1")
    assert main(["bench", str(tmp_path / "missing.engine"), "--ratio-table", table_path]) == 1
    assert "missing.engine: no such engine file" in capsys.readouterr().err
    assert main(["bench", engine]) == 1
    assert "bench needs --ratio-table" in capsys.readouterr().err
    assert main(["bench", engine, "--ratio-table", table_path, "--ratios", "2"]) == 1
    assert "ratio must be a number in" in capsys.readouterr().err


def test_real_driver_check_on_this_machine(tmp_path, table, monkeypatch, capsys) -> None:
    monkeypatch.delenv("FLEXIQ_NO_GPU", raising=False)
    ok, why = gpu_status()
    if ok:
        pytest.skip("this machine has a GPU: the refusal is covered with FLEXIQ_NO_GPU")
    assert why
    engine, table_path = _bench_files(tmp_path, table)
    assert main(["bench", engine, "--ratio-table", table_path]) == 1
    assert f"needs an NVIDIA GPU: {why}" in capsys.readouterr().err
