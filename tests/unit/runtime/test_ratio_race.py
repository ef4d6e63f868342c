"""The set_ratio race, on a fake stream whose copies run only when it is advanced.

The former runner rewrote one pinned host array and queued an H2D copy from it; a copy that had not
run yet then carried the *next* ratio to the earlier inference. These tests show that pattern going
wrong and the ring of event-guarded slots (runtime/ratio_buffer.py) keeping each inference's ratio.
"""

from __future__ import annotations

import numpy as np
import pytest

from flexiq_trt.errors import ConfigError
from flexiq_trt.plugin_spec import RUNTIME_INPUT
from flexiq_trt.runtime.ratio_buffer import HostMax4bit, RatioStager


def _snapshot(cuda, ptr, seen: list) -> None:
    """Queue a 'kernel' that records the device vector it reads."""
    cuda.enqueue(lambda: seen.append(cuda.read(ptr, np.int32, 2).tolist()))


def test_single_host_buffer_hands_the_later_ratio_to_the_earlier_inference(cuda, table) -> None:
    # The former EngineRunner.set_ratio: HostMax4bit.set() in place, then htod_async from it.
    host = HostMax4bit(2, table, storage=cuda.pinned_array(2, np.int32))
    dev, seen = cuda.malloc(8), []
    for ratio in (0.0, 1.0):
        cuda.htod_async(dev, host.set(ratio))
        _snapshot(cuda, dev, seen)
    cuda.synchronize()
    assert seen == [[64, 32], [64, 32]], "the old pattern was expected to lose ratio 0"
    assert seen[0] != table.vector(0.0).tolist()


@pytest.mark.parametrize("slots", [1, 2, 3])
def test_stager_keeps_each_queued_inference_its_ratio(cuda, table, slots) -> None:
    stager, dev, seen = RatioStager(cuda, 2, table, slots=slots), cuda.malloc(8), []
    ratios = (0.0, 1.0, 0.5, 0.0, 1.0)
    for ratio in ratios:
        stager.copy(dev, ratio)
        _snapshot(cuda, dev, seen)
    cuda.synchronize()
    assert seen == [table.vector(r).tolist() for r in ratios]
    # The host blocks only when it comes back to a slot whose copy is still queued.
    assert stager.waits == len(ratios) - slots


def test_stager_does_not_wait_once_the_gpu_has_caught_up(cuda, table) -> None:
    stager, dev = RatioStager(cuda, 2, table, slots=2), cuda.malloc(8)
    for ratio in (0.0, 1.0, 0.5, 0.0):
        stager.copy(dev, ratio)
        cuda.synchronize()
    assert stager.waits == 0 and cuda.host_waits == 0


def test_invalid_value_leaves_every_slot_untouched(cuda, table) -> None:
    stager, dev, seen = RatioStager(cuda, 2, table, slots=1), cuda.malloc(8), []
    stager.copy(dev, 1.0)
    _snapshot(cuda, dev, seen)
    with pytest.raises(ConfigError, match=r"shape \[2\]"):
        stager.copy(dev, [1, 2, 3])
    with pytest.raises(ConfigError, match="ratio must be a number in"):
        stager.copy(dev, 1.5)
    cuda.synchronize()
    assert seen == [[64, 32]] and stager.waits == 0
    with pytest.raises(ConfigError, match="ratio_slots must be >= 1"):
        RatioStager(cuda, 2, table, slots=0)


# ---- through the real EngineRunner on the fake engine (y = x + sum(vector)) ---------------------------------


def test_runner_set_ratio_between_queued_inferences(runner, cuda, table) -> None:
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    outputs, vectors = [], []
    runner.prepare({"x": x})
    for ratio in (0.0, 1.0, 0.5, 0.0):
        vectors.append(runner.set_ratio(ratio))
        runner.enqueue()
        outputs.append(runner.fetch_outputs()["y"])
    assert cuda.queue, "nothing may have run yet: the race needs queued copies"
    cuda.synchronize()
    for y, v in zip(outputs, vectors, strict=True):
        np.testing.assert_array_equal(y, x + v.sum())
    assert [v.tolist() for v in vectors] == [table.vector(r).tolist() for r in (0.0, 1.0, 0.5, 0.0)]


def test_runner_infer_and_feed_checks(runner, cuda) -> None:
    x = np.ones((3, 4), dtype=np.float32)
    v = runner.set_ratio(1.0)
    np.testing.assert_array_equal(runner.infer({"x": x})["y"], x + v.sum())
    with pytest.raises(ConfigError, match="set_ratio"):
        runner.prepare({RUNTIME_INPUT: v})
    with pytest.raises(ConfigError, match="not an input"):
        runner.prepare({"z": x})
    with pytest.raises(ConfigError, match="outside the engine's profile"):
        runner.prepare({"x": np.ones((3, 5), dtype=np.float32)})
    assert runner.input_shape("x", 5) == (5, 4) and runner.input_dtype("x") == np.float32


def test_graph_replays_each_read_their_staged_ratio(runner, cuda, table) -> None:
    x = np.full((2, 4), 0.5, dtype=np.float32)
    runner.set_ratio(0.0)
    runner.infer({"x": x})
    runner.prepare({"x": x})
    cuda.synchronize()
    graph = runner.capture_graph(include_ratio_copy=True)
    outputs, vectors = [], []
    for ratio in (0.0, 1.0, 0.5):
        vectors.append(runner.stage_ratio(ratio))
        runner.launch_graph(graph)
        outputs.append(runner.fetch_outputs()["y"])
    cuda.synchronize()
    for y, v in zip(outputs, vectors, strict=True):
        np.testing.assert_array_equal(y, x + v.sum())
    assert runner.ratio.waits == 2  # each re-stage waited for the replay still reading the source


def test_graph_without_ratio_copy_follows_set_ratio(runner, cuda) -> None:
    x = np.zeros((1, 4), dtype=np.float32)
    runner.prepare({"x": x})
    cuda.synchronize()
    graph = runner.capture_graph(include_ratio_copy=False)
    outputs, vectors = [], []
    for ratio in (1.0, 0.0):
        vectors.append(runner.set_ratio(ratio))
        runner.launch_graph(graph)
        outputs.append(runner.fetch_outputs()["y"])
    cuda.synchronize()
    assert [float(y[0, 0]) for y in outputs] == [float(v.sum()) for v in vectors] == [96.0, 0.0]


def test_runner_releases_what_it_opened(cuda, table, fake_engine, tmp_path) -> None:
    from _fake_gpu import fake_tensorrt

    from flexiq_trt.errors import ModelError
    from flexiq_trt.runtime.engine_runner import EngineRunner

    with EngineRunner(fake_engine, ratio_table=table, plugin_lib="x.so", trt=fake_tensorrt(cuda), cuda=cuda) as r:
        r.infer({"x": np.zeros((1, 4), dtype=np.float32)})
    assert cuda.memory == {} and not cuda.closed  # buffers freed; a CudaApi passed in stays the caller's
    bad = tmp_path / "bad.engine"
    bad.write_bytes(b"not an engine")
    with pytest.raises(ModelError, match="could not deserialize"):
        EngineRunner(bad, plugin_lib="x.so", trt=fake_tensorrt(cuda), cuda=cuda)
    with pytest.raises(ModelError, match="no such engine file"):
        EngineRunner(tmp_path / "missing.engine", trt=fake_tensorrt(cuda), cuda=cuda)
