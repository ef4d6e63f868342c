"""Engine vs simulation ONNX at each ratio, ratio switching between enqueues, CUDA-graph replay (GPU only).

Every test runs once per CUDA implementation (pycuda, cuda-python: the `cuda_backend` fixture).
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from flexiq_trt.plugin_spec import RUNTIME_INPUT

pytestmark = [pytest.mark.gpu, pytest.mark.plugin]

RATIOS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _simulate(converted, x: np.ndarray, vector: np.ndarray) -> np.ndarray:
    result, _ = converted
    sess = ort.InferenceSession(str(result.files["sim_onnx"]), providers=["CPUExecutionProvider"])
    x_name = next(i.name for i in sess.get_inputs() if i.name != RUNTIME_INPUT)
    feeds = {x_name: x, RUNTIME_INPUT: vector.astype(np.int32)}
    return sess.run(None, feeds)[0]


def _assert_matches(y: np.ndarray, ref: np.ndarray, what: str) -> None:
    # int32 accumulators are bit-exact; only the float epilogue may differ by float rounding.
    scale = float(np.abs(ref).max()) or 1.0
    diff = np.abs(y.astype(np.float64) - ref.astype(np.float64))
    assert y.shape == ref.shape, what
    assert diff.max() <= 1e-4 * scale, f"{what}: max |diff| {diff.max():.3g} vs output scale {scale:.3g}"


@pytest.fixture(scope="module")
def runner(engine_path, converted, gpu_trt, cuda_backend):
    from flexiq_trt.runtime.engine_runner import EngineRunner

    result, _ = converted
    with EngineRunner(engine_path, ratio_table=result.table, trt=gpu_trt[0], cuda=cuda_backend) as r:
        assert r.cuda.name == cuda_backend
        yield r


@pytest.mark.parametrize("ratio", RATIOS)
def test_engine_matches_simulation(runner, converted, ratio) -> None:
    _, x = converted
    batch = x[:5]
    vector = runner.set_ratio(ratio)
    y = runner.infer({runner.input_names()[0]: batch})[runner.output_names()[0]]
    _assert_matches(y, _simulate(converted, batch, vector), f"ratio {ratio}")


def test_ratio_switch_between_two_enqueues_without_rebuild(runner, converted) -> None:
    _, x = converted
    feeds = {runner.input_names()[0]: x[:8]}
    engine, context = runner.engine, runner.context
    v0 = runner.set_ratio(0.0)
    y0 = runner.infer(feeds)[runner.output_names()[0]]
    v1 = runner.set_ratio(1.0)
    y1 = runner.infer(feeds)[runner.output_names()[0]]
    assert runner.engine is engine and runner.context is context  # nothing rebuilt or re-created
    assert v1.sum() > v0.sum() == 0
    assert not np.array_equal(y0, y1), "the 4-bit ratio had no effect on the output"
    _assert_matches(y0, _simulate(converted, x[:8], v0), "ratio 0 after switch")
    _assert_matches(y1, _simulate(converted, x[:8], v1), "ratio 1 after switch")


def test_cuda_graph_replay_across_ratio_change(runner, converted) -> None:
    _, x = converted
    feeds = {runner.input_names()[0]: x[:4]}
    runner.set_ratio(0.0)
    runner.infer(feeds)  # warm-up outside the capture (weights uploaded, shapes set)
    runner.prepare(feeds)
    graph = runner.capture_graph(include_ratio_copy=True)
    out = {}
    for ratio in (0.0, 1.0, 0.5):
        vector = runner.stage_ratio(ratio)
        runner.launch_graph(graph)
        y = runner.fetch_outputs()[runner.output_names()[0]]
        runner.cuda.synchronize()
        out[ratio] = y
        _assert_matches(y, _simulate(converted, x[:4], vector), f"graph replay at ratio {ratio}")
    assert not np.array_equal(out[0.0], out[1.0])


def test_dynamic_batch_sizes(runner, converted) -> None:
    _, x = converted
    vector = runner.set_ratio(0.5)
    for batch in (1, 3, 16):
        y = runner.infer({runner.input_names()[0]: x[:batch]})[runner.output_names()[0]]
        _assert_matches(y, _simulate(converted, x[:batch], vector), f"batch {batch}")


def test_queued_ratio_switches_keep_their_order(runner, converted) -> None:
    """The set_ratio race on real hardware: no synchronization between switches and inferences."""
    _, x = converted
    feeds = {runner.input_names()[0]: x[:8]}
    runner.prepare(feeds)
    outputs, vectors = [], []
    for ratio in (0.0, 1.0, 0.5, 0.0, 1.0):
        vectors.append(runner.set_ratio(ratio))
        runner.enqueue()
        outputs.append(runner.fetch_outputs()[runner.output_names()[0]])
    runner.cuda.synchronize()
    for y, v in zip(outputs, vectors, strict=True):
        _assert_matches(y, _simulate(converted, x[:8], v), f"queued switch to {v.sum()}")


def test_bench_runs_on_the_engine(runner, converted, tmp_path) -> None:
    from flexiq_trt.runtime.bench import BenchConfig, bench_runner, format_table, latency_profile

    result, _ = converted
    config = BenchConfig(ratios=(0.0, 1.0), batch=(1, 8), iterations=20, warmup=5)
    bench = bench_runner(runner, config, result.table)
    assert len(bench.points) == 4 and all(p.mean_ms > 0 and p.p99_ms >= p.p50_ms for p in bench.points)
    print(format_table(bench))
    assert latency_profile(bench).batch_sizes == (1, 8)
