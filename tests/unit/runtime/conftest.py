"""Fixtures of the runtime tests: the fake CUDA/TensorRT pair, a two-layer ratio table, a runner on them."""

from __future__ import annotations

import pytest
from _fake_gpu import FakeCuda, fake_tensorrt

from flexiq_trt.ratios import LayerEntry, RatioTable


def two_layer_table() -> RatioTable:
    layers = [LayerEntry("a", "FlexiQConv", 0, 40, 64, 100.0, [60.0, 40.0]),
              LayerEntry("b", "FlexiQGemm", 1, 32, 32, 50.0, [50.0])]
    return RatioTable(32, layers, [(1, 0), (0, 0), (0, 1)], [0.0, 0.5, 1.0])


@pytest.fixture
def table() -> RatioTable:
    return two_layer_table()


@pytest.fixture
def cuda() -> FakeCuda:
    return FakeCuda()


@pytest.fixture
def fake_engine(tmp_path):
    path = tmp_path / "fake.engine"
    path.write_bytes(b"FAKE engine")
    return path


@pytest.fixture
def runner(cuda, table, fake_engine):
    from flexiq_trt.runtime.engine_runner import EngineRunner

    with EngineRunner(fake_engine, ratio_table=table, plugin_lib="unused.so", trt=fake_tensorrt(cuda),
                      cuda=cuda) as r:
        cuda.synchronize()
        yield r
