"""Each validation error: the message names the file, the input and the mismatch."""

from __future__ import annotations

import numpy as np
import pytest
from _calib_models import two_input_model
from onnx import TensorProto

from flexiq_trt.calibration import open_reader
from flexiq_trt.calibration.config import CalibConfig
from flexiq_trt.calibration.model_io import input_specs
from flexiq_trt.calibration.readers import validate_feed
from flexiq_trt.errors import CalibrationDataError


def _npz(tmp_path, name="data.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return str(path)


def _script(tmp_path, body):
    path = tmp_path / "feeds.py"
    path.write_text("import numpy as np\n\ndef load_data():\n    return " + body + "\n")
    return str(path)


def test_missing_and_extra_names_in_npz(tmp_path):
    path = _npz(tmp_path, a=np.zeros((2, 4), np.float32), c=np.zeros((2, 4), np.float32))
    with pytest.raises(CalibrationDataError, match=r"data\.npz.*missing \['b'\], unknown \['c'\]"):
        open_reader(path, two_input_model(), CalibConfig())


def test_missing_and_extra_names_in_feed(tmp_path):
    path = _script(tmp_path, '[{"a": np.zeros((1, 4), np.float32), "bogus": np.zeros(1)}]')
    with pytest.raises(
        CalibrationDataError,
        match=r"feeds\.py:load_data: batch 0: missing input\(s\) \['b'\] and unknown name\(s\) \['bogus'\]",
    ):
        open_reader(path, two_input_model(), CalibConfig())


def test_wrong_rank(tmp_path, model):
    path = _npz(tmp_path, x=np.zeros((4, 3, 8), np.float32))
    with pytest.raises(
        CalibrationDataError, match=r"data\.npz: batch 0: input 'x' has shape \(4, 3, 8\) \(rank 3\).*rank 4"
    ):
        open_reader(path, model, CalibConfig())


def test_wrong_static_dim(tmp_path, model):
    path = _npz(tmp_path, x=np.zeros((4, 3, 9, 8), np.float32))
    with pytest.raises(
        CalibrationDataError, match=r"input 'x'.*dimension 2 is 9 but the model expects float32\[\?,3,8,8\]"
    ):
        open_reader(path, model, CalibConfig())


def test_int64_for_float_input(tmp_path, model):
    path = _npz(tmp_path, x=np.zeros((4, 3, 8, 8), np.int64))
    with pytest.raises(
        CalibrationDataError,
        match=r"data\.npz: batch 0: input 'x' has dtype int64 but the model expects float32",
    ):
        open_reader(path, model, CalibConfig())


def test_float64_is_cast_to_float32(tmp_path, model):
    path = _npz(tmp_path, x=np.full((2, 3, 8, 8), 0.1, np.float64))
    batch = open_reader(path, model, CalibConfig()).get_next()
    assert batch["x"].dtype == np.float32
    assert batch["x"][0, 0, 0, 0] == np.float32(0.1)


def test_integer_input_range_checked(tmp_path):
    model = two_input_model(TensorProto.INT32)
    ok = _npz(tmp_path, "ok.npz", a=np.zeros((2, 4), np.float32), b=np.ones((2, 4), np.int64))
    assert open_reader(ok, model, CalibConfig()).get_next()["b"].dtype == np.int32
    big = _npz(tmp_path, "big.npz", a=np.zeros((2, 4), np.float32), b=np.full((2, 4), 2**40, np.int64))
    with pytest.raises(
        CalibrationDataError, match="input 'b' has int64 values outside the range of the model's int32"
    ):
        open_reader(big, model, CalibConfig())


@pytest.mark.parametrize("bad, word", [(np.nan, "1 NaN and 0 Inf"), (np.inf, "0 NaN and 1 Inf")])
def test_nonfinite_values(tmp_path, model, bad, word):
    data = np.zeros((6, 3, 8, 8), np.float32)
    data[5, 1, 2, 3] = bad
    path = _npz(tmp_path, x=data)
    reader = open_reader(path, model, CalibConfig(batch_size=4))  # the bad value is in batch 1
    with pytest.raises(CalibrationDataError, match=rf"data\.npz: batch 1: input 'x' contains {word}"):
        list(reader)


def test_empty_sets(tmp_path, model):
    path = _npz(tmp_path, x=np.zeros((0, 3, 8, 8), np.float32))
    with pytest.raises(CalibrationDataError, match=r"data\.npz: the calibration set is empty"):
        open_reader(path, model, CalibConfig())
    with pytest.raises(CalibrationDataError, match=r"feeds\.py:load_data: the calibration set is empty"):
        open_reader(_script(tmp_path, "[]"), model, CalibConfig())


def test_npz_arrays_with_different_lengths(tmp_path):
    path = _npz(tmp_path, a=np.zeros((3, 4), np.float32), b=np.zeros((2, 4), np.float32))
    with pytest.raises(CalibrationDataError, match=r"different sample counts.*'a': 3, 'b': 2"):
        open_reader(path, two_input_model(), CalibConfig())


def test_not_an_npz(tmp_path, model):
    path = tmp_path / "fake.npz"
    path.write_bytes(b"garbage")
    with pytest.raises(CalibrationDataError, match=r"fake\.npz: cannot read \.npz file"):
        open_reader(str(path), model, CalibConfig())


def test_validate_feed_returns_copies(model):
    specs = input_specs(model)
    source = np.zeros((1, 3, 8, 8), np.float32)
    feed = validate_feed({"x": source}, specs, "unit", 0)
    feed["x"][:] = 5
    assert source.max() == 0
