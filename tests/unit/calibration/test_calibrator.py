"""The calibrator on a tiny conv model: statistics equal NumPy over the real activations."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from _calib_models import two_input_model

from flexiq_trt.calibration import CalibrationResult, Calibrator, calibrate, open_reader, run_model
from flexiq_trt.calibration.config import CalibConfig
from flexiq_trt.calibration.model_io import input_specs
from flexiq_trt.calibration.readers import NpzReader
from flexiq_trt.errors import FlexiqInternalError, ModelError


@pytest.fixture
def data(tmp_path):
    x = np.random.default_rng(11).standard_normal((10, 3, 8, 8)).astype(np.float32)
    path = tmp_path / "x.npz"
    np.savez(path, x=x)
    return str(path), x


def _reference(model, x):
    """All activations at once, straight from ONNX Runtime (only affordable in a test)."""
    from flexiq_trt.calibration import create_session

    session = create_session(model, ["conv_out", "relu_out"])
    conv, relu = session.run(["conv_out", "relu_out"], {"x": x})
    return conv, relu


def test_statistics_match_numpy(model, data):
    path, x = data
    config = CalibConfig(batch_size=4, method="max", max_samples=None)
    result = calibrate(
        model, open_reader(path, model, config), ["conv_out", "relu_out"], config, {"conv_out": 1}
    )
    conv, relu = _reference(model, x)
    assert (result.num_samples, result.num_batches, result.synthetic) == (10, 3, False)
    conv_cal = result["conv_out"]
    assert conv_cal.range.min == float(conv.min()) and conv_cal.range.max == float(conv.max())
    assert conv_cal.threshold_signed == float(np.abs(conv).max())
    assert conv_cal.scale() == pytest.approx(float(np.abs(conv).max()) / 127, rel=1e-6)
    assert conv_cal.threshold_unsigned is None  # negatives were seen
    np.testing.assert_allclose(conv_cal.channels.absmax, np.abs(conv).max(axis=(0, 2, 3)), rtol=1e-6)
    relu_cal = result["relu_out"]
    assert relu_cal.range.nonnegative and relu_cal.channels is None
    assert result.scale("relu_out", signed=False) == pytest.approx(float(relu.max()) / 255, rel=1e-6)
    assert relu_cal.histogram.total == relu.size
    assert relu_cal.histogram.zeros == int((relu == 0).sum())


def test_mse_and_percentile_from_the_same_collection(model, data):
    path, x = data
    cal = Calibrator(model, CalibConfig(batch_size=3, percentile=99.0))
    cal.attach("conv_out")
    cal.collect(open_reader(path, model, CalibConfig(batch_size=3)))
    conv, _ = _reference(model, x)
    absmax = float(np.abs(conv).max())
    mse = cal.compute("mse")["conv_out"]
    pct = cal.compute("percentile")["conv_out"]
    assert 0 < mse.threshold_signed <= absmax
    assert abs(pct.threshold_signed - np.percentile(np.abs(conv), 99.0)) <= pct.histogram.bin_width
    assert cal.compute().method == "mse"


class _Recorder:
    """A user observer: remembers the first value of each batch and counts batches."""

    def __init__(self):
        self.firsts = []

    def update(self, array):
        self.firsts.append(float(array.reshape(-1)[0]))

    def result(self):
        return tuple(self.firsts)


def test_custom_observer_sees_every_batch_once(model, tmp_path):
    x = np.broadcast_to(np.arange(6, dtype=np.float32)[:, None, None, None], (6, 3, 8, 8)).copy()
    path = tmp_path / "idx.npz"
    np.savez(path, x=x)
    cal = Calibrator(model, CalibConfig(batch_size=2))
    recorder = _Recorder()
    cal.attach("x", observers={"firsts": recorder})  # a graph input can be observed too
    cal.collect(open_reader(str(path), model, CalibConfig(batch_size=2)))
    assert cal.compute()["x"].extra["firsts"] == (0.0, 2.0, 4.0)


def test_tensors_per_pass_gives_the_same_result(model, data):
    path, _ = data
    results = []
    for per_pass in (0, 1):
        config = CalibConfig(batch_size=4, tensors_per_pass=per_pass)
        results.append(
            calibrate(model, open_reader(path, model, config), ["conv_out", "relu_out", "y"], config)
        )
    for name in ("conv_out", "relu_out", "y"):
        assert results[0][name].threshold_signed == results[1][name].threshold_signed
        np.testing.assert_array_equal(results[0][name].histogram.counts, results[1][name].histogram.counts)
    assert results[1].num_samples == 10 and results[1].num_batches == 3


def test_synthetic_flag_reaches_the_result(model):
    config = CalibConfig(synthetic_samples=4, batch_size=2)
    result = calibrate(model, open_reader("synthetic", model, config), ["relu_out"], config)
    assert result.synthetic and result.source == "synthetic:normal"


def test_result_round_trip(model, data, tmp_path):
    path, _ = data
    result = calibrate(
        model, open_reader(path, model), ["conv_out", "relu_out"], channel_axes={"conv_out": 1}
    )
    result.save(tmp_path / "calib.json")
    loaded = CalibrationResult.load(tmp_path / "calib.json")
    for name in result:
        assert loaded.scale(name) == result.scale(name)
        np.testing.assert_array_equal(loaded[name].histogram.counts, result[name].histogram.counts)
    np.testing.assert_array_equal(loaded["conv_out"].channels.max, result["conv_out"].channels.max)
    assert loaded.scale("relu_out", signed=False) == result.scale("relu_out", signed=False)
    with pytest.raises(FlexiqInternalError, match="unsigned scale requested.*negative"):
        loaded["conv_out"].scale(signed=False)


def test_lifecycle_and_name_errors(model, data):
    path, _ = data
    cal = Calibrator(model)
    with pytest.raises(FlexiqInternalError, match="compute\\(\\) before collect"):
        cal.compute()
    with pytest.raises(FlexiqInternalError, match="no tensor attached"):
        cal.collect(open_reader(path, model))
    cal.attach("W")
    with pytest.raises(ModelError, match=r"no tensor\(s\) named \['W'\].*initializers"):
        cal.collect(open_reader(path, model))
    other = Calibrator(model)
    other.attach("nope")
    with pytest.raises(ModelError, match=r"tiny_conv.*\['nope'\]"):
        other.collect(open_reader(path, model))
    done = Calibrator(model)
    done.attach("y")
    done.collect(open_reader(path, model))
    with pytest.raises(FlexiqInternalError, match="after collect"):
        done.attach("relu_out")


def test_run_model_yields_final_outputs_per_batch(model, data):
    path, x = data
    reader = open_reader(path, model, CalibConfig(batch_size=4))
    outputs = list(run_model(model, reader))
    assert [o["y"].shape[0] for o in outputs] == [4, 4, 2]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(
        np.concatenate([o["y"] for o in outputs]), session.run(["y"], {"x": x})[0], rtol=1e-5
    )
    assert [o.name for o in model.graph.output] == ["y"]  # the caller's model is left unchanged


def test_run_model_with_extra_feeds(tmp_path):
    model = two_input_model()
    path = tmp_path / "a.npz"
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.savez(path, a=a)
    reader = NpzReader(path, [s for s in input_specs(model) if s.name == "a"], batch_size=2)
    (out,) = list(run_model(model, reader, extra_feeds={"b": np.ones((2, 4), np.float32)}))
    np.testing.assert_array_equal(out["y"], a + 1)
