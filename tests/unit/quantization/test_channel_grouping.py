"""QuantConfig.channel_grouping: which calibrated per-channel statistic cuts a layer's channels into groups.

A two-layer model whose input channels are built so that the maximum, the RMS and the 99th
percentile of |x| sort them differently; the pipeline's own stages calibrate it (pass 1 over several
batches) and convert it with `p99`.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from _utils import models as M
from _utils.ort_run import tensor_values
from onnx import helper

from flexiq_trt.calibration.config import CalibConfig
from flexiq_trt.conversion import ConversionState, ConvertConfig
from flexiq_trt.errors import ConfigError
from flexiq_trt.pipeline import convert as pipe
from flexiq_trt.quantization.config import CHANNEL_GROUPING, QuantConfig
from flexiq_trt.quantization.stage import base_orders, grouping_magnitude
from flexiq_trt.quantization.weights import base_channel_order

C_IN = 64


def two_layer_model() -> onnx.ModelProto:
    """Conv 1x1 (64 -> 64) -> Relu -> Conv 1x1 (64 -> 8)."""
    rng = np.random.default_rng(11)
    inits = [("w0", (rng.standard_normal((C_IN, C_IN, 1, 1)) / 8).astype(np.float32)),
             ("b0", (0.1 * rng.standard_normal(C_IN)).astype(np.float32)),
             ("w1", (rng.standard_normal((8, C_IN, 1, 1)) / 8).astype(np.float32)),
             ("b1", np.zeros(8, np.float32))]
    nodes = [helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], name="conv0"),
             helper.make_node("Relu", ["c0"], ["r0"], name="relu0"),
             helper.make_node("Conv", ["r0", "w1", "b1"], ["y"], name="conv1")]
    return M.make_model(nodes, [M.vinfo("x", ["N", C_IN, 4, 4])], [M.vinfo("y", None)], inits)


def calibration_input(n: int = 40) -> np.ndarray:
    """Channel scales 0.1..4; every second channel also has one rare value far above its scale."""
    rng = np.random.default_rng(0)
    scale = np.linspace(0.1, 4.0, C_IN, dtype=np.float32)
    x = rng.standard_normal((n, C_IN, 4, 4)).astype(np.float32) * scale.reshape(1, -1, 1, 1)
    x[0, ::2, 0, 0] = 30.0 * np.linspace(1.0, 0.2, C_IN // 2)  # maxima in reverse order of the scales
    return x


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The pipeline's stages up to the written artifacts, grouping by the 99th percentile."""
    from flexiq_trt.select.config import SearchConfig

    tmp = tmp_path_factory.mktemp("grouping")
    onnx.save(two_layer_model(), tmp / "m.onnx")
    np.savez(tmp / "calib.npz", x=calibration_input())
    state = ConversionState(tmp / "m.onnx", CalibConfig(data=str(tmp / "calib.npz"), batch_size=8),
                            QuantConfig(channel_grouping="p99"),
                            ConvertConfig(selector="greedy", ort_baseline=False, output_dir=str(tmp / "out")))
    pipe.intake(state)
    pipe.split_data(state)
    pipe.calibrate_and_quantize(state)
    pipe.select(state, SearchConfig())
    pipe.rewrite(state, Path(tempfile.mkdtemp(dir=tmp)))
    return state


def layer_inputs(state) -> list[np.ndarray]:
    """Every FlexiQ layer's FP32 input over all calibration batches, float64 [rows, C] (channels last)."""
    names = [rec.eligible.input_name for rec in state.quantized]
    parts: list[list[np.ndarray]] = [[] for _ in names]
    for batch in state.calib_feeds.batches:
        values = tensor_values(state.prepared, batch, names)
        for part, name in zip(parts, names, strict=True):
            part.append(np.moveaxis(values[name], 1, -1).reshape(-1, C_IN).astype(np.float64))
    return [np.concatenate(p) for p in parts]


def test_pass_one_statistics_match_numpy(converted):
    assert len(converted.calib_feeds.batches) >= 3  # the statistics are accumulated over batches
    for rec, x in zip(converted.quantized, layer_inputs(converted), strict=True):
        cl = rec.calibrated
        np.testing.assert_array_equal(cl.channel_range, np.abs(x).max(axis=0))
        np.testing.assert_allclose(cl.channel_rms, np.sqrt(np.mean(x ** 2, axis=0)), rtol=1e-9)
        np.testing.assert_allclose(cl.channel_p99, np.percentile(np.abs(x), 99.0, axis=0), rtol=1 / 16)
        assert cl.channel_rms.dtype == cl.channel_p99.dtype == np.float64


def test_each_option_sorts_by_its_statistic(converted):
    calibrated = [rec.calibrated for rec in converted.quantized]
    orders = {}
    for grouping in CHANNEL_GROUPING:
        orders[grouping] = base_orders(calibrated, QuantConfig(channel_grouping=grouping))
        for cl, order in zip(calibrated, orders[grouping], strict=True):
            key = {"max": cl.channel_range, "rms": cl.channel_rms, "p99": cl.channel_p99}[grouping]
            assert grouping_magnitude(cl, grouping) is key
            assert order.tolist() == np.argsort(key, kind="stable").tolist()  # C_IN = 64: no padding
            assert np.all(np.diff(key[order]) >= 0)
    first = [o[0].tolist() for o in orders.values()]  # the graph input's channels
    assert first[0] != first[1] and first[0] != first[2]  # the rare values move channels under max only
    assert [o.tolist() for o in orders["p99"]] == [rec.base_order.tolist() for rec in converted.quantized]


def test_padding_stays_last():
    order = base_channel_order(np.array([3.0, 1.0, 2.0]), 32)
    assert order.tolist()[:3] == [1, 2, 0] and order.tolist()[3:] == list(range(3, 32))


def test_sidecar_records_the_grouping(converted):
    written = json.loads(Path(converted.files["sidecar"]).read_text())
    assert written["extra"]["quant"]["channel_grouping"] == "p99"


def test_bad_option_and_default():
    assert QuantConfig().channel_grouping in CHANNEL_GROUPING
    with pytest.raises(ConfigError, match="channel_grouping must be one of .*'mean'"):
        QuantConfig(channel_grouping="mean")


def test_default_grouping_skips_the_magnitude_histograms(tmp_path):
    """Grouping by the maximum gathers no RMS/percentile (6 KiB of counters per channel); asking a
    layer calibrated that way for another statistic is a loud internal error, not a silent max."""
    from flexiq_trt.errors import FlexiqInternalError

    onnx.save(two_layer_model(), tmp_path / "m.onnx")
    np.savez(tmp_path / "calib.npz", x=calibration_input())
    state = ConversionState(tmp_path / "m.onnx", CalibConfig(data=str(tmp_path / "calib.npz"), batch_size=8),
                            QuantConfig(), ConvertConfig(ort_baseline=False, output_dir=str(tmp_path / "out")))
    pipe.intake(state)
    pipe.split_data(state)
    pipe.calibrate_and_quantize(state)
    cl = state.quantized[0].calibrated
    assert cl.channel_rms is None and cl.channel_p99 is None
    assert grouping_magnitude(cl, "max") is cl.channel_range
    with pytest.raises(FlexiqInternalError, match="channel_grouping='p99' needs calibration pass 1"):
        grouping_magnitude(cl, "p99")
