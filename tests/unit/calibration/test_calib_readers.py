"""Every calibration reader, read end to end against a real ONNX model's inputs."""

from __future__ import annotations

import numpy as np
import pytest
from _calib_models import conv_model, two_input_model
from PIL import Image

from flexiq_trt.calibration import input_specs, open_reader
from flexiq_trt.calibration.config import CalibConfig
from flexiq_trt.calibration.readers import ImageFolderReader, SyntheticReader
from flexiq_trt.errors import CalibrationDataError


def test_npz_batches_are_distinct_and_all_seen(model, indexed_npz):
    path, _ = indexed_npz
    reader = open_reader(str(path), model, CalibConfig(batch_size=6, max_samples=None))
    batches = list(reader)  # kept alive together: a reused buffer would show up as repeated values
    assert reader.num_batches() == 4
    assert [b["x"].shape[0] for b in batches] == [6, 6, 6, 2]
    seen = np.concatenate([b["x"][:, 0, 0, 0] for b in batches])
    np.testing.assert_array_equal(seen, np.arange(20, dtype=np.float32))
    for batch in batches:  # each sample is constant: no batch holds another batch's data
        assert np.all(batch["x"] == batch["x"][:, :1, :1, :1])
    batches[0]["x"][:] = -1  # mutating a returned batch must not alter the source
    assert next(iter(reader))["x"][0, 0, 0, 0] == 0


def test_get_next_rewind_and_end(model, indexed_npz):
    path, _ = indexed_npz
    reader = open_reader(str(path), model, CalibConfig(batch_size=10, max_samples=None))
    first = reader.get_next()
    second = reader.get_next()
    assert reader.get_next() is None
    assert reader.get_next() is None
    reader.rewind()
    np.testing.assert_array_equal(reader.get_next()["x"], first["x"])
    assert second["x"][0, 0, 0, 0] == 10


def test_max_samples_cuts_the_last_batch(model, indexed_npz):
    path, _ = indexed_npz
    reader = open_reader(str(path), model, CalibConfig(batch_size=6, max_samples=13))
    sizes = [b["x"].shape[0] for b in reader]
    assert sizes == [6, 6, 1]
    assert reader.samples_seen == 13


def test_static_batch_dim_wins_and_partial_batch_is_dropped(tmp_path):
    model = conv_model(batch=2)
    path = tmp_path / "five.npz"
    np.savez(path, x=np.zeros((5, 3, 8, 8), np.float32))
    reader = open_reader(str(path), model, CalibConfig(batch_size=8, max_samples=None))
    assert [b["x"].shape[0] for b in reader] == [2, 2]


def test_npy_single_input(tmp_path, model):
    path = tmp_path / "x.npy"
    data = np.random.default_rng(0).standard_normal((7, 3, 8, 8)).astype(np.float32)
    np.save(path, data)
    reader = open_reader(str(path), model, CalibConfig(batch_size=4, max_samples=None))
    np.testing.assert_array_equal(np.concatenate([b["x"] for b in reader]), data)


def test_npy_rejects_multi_input_model(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((2, 4), np.float32))
    with pytest.raises(CalibrationDataError, match=r"x\.npy.*single-input.*\['a', 'b'\]"):
        open_reader(str(path), two_input_model(), CalibConfig())


def test_npz_two_inputs(tmp_path):
    path = tmp_path / "ab.npz"
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.savez(path, a=a, b=-a)
    batches = list(open_reader(str(path), two_input_model(), CalibConfig(batch_size=2)))
    np.testing.assert_array_equal(np.concatenate([b["b"] for b in batches]), -a)


def _save_image(path, rgb, size=(8, 8)):
    Image.new("RGB", size, tuple(int(c) for c in rgb)).save(path)


def _image_config(**kwargs):
    base = dict(image_mean=(0.0,), image_std=(1.0,), batch_size=2, max_samples=None)
    base.update(kwargs)
    return CalibConfig(**base)


def test_image_folder_values_layout_and_order(tmp_path, model):
    colors = [(10, 20, 30), (40, 50, 60), (70, 80, 90)]
    (tmp_path / "imgs" / "class_a").mkdir(parents=True)
    for i, rgb in enumerate(colors):
        _save_image(tmp_path / "imgs" / "class_a" / f"{i}.png", rgb, size=(20 + i, 12))  # non-square, resized
    reader = open_reader(str(tmp_path / "imgs"), model, _image_config())
    batches = list(reader)
    assert [b["x"].shape for b in batches] == [(2, 3, 8, 8), (1, 3, 8, 8)]
    stacked = np.concatenate([b["x"] for b in batches])
    expected = np.asarray(colors, np.float32)[:, :, None, None] / 255.0
    np.testing.assert_allclose(stacked, np.broadcast_to(expected, stacked.shape), atol=1e-6)

    first_bgr = next(
        iter(open_reader(str(tmp_path / "imgs"), model, _image_config(image_channel_order="BGR")))
    )
    np.testing.assert_allclose(first_bgr["x"][0, :, 0, 0], np.array([30, 20, 10]) / 255.0, atol=1e-6)


def test_image_mean_std_and_nhwc(tmp_path):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["img"], ["y"])],
        "nhwc",
        [helper.make_tensor_value_info("img", TensorProto.FLOAT, ["N", 6, 6, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6, 6, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    folder = tmp_path / "imgs"
    folder.mkdir()
    _save_image(folder / "a.png", (255, 0, 51), size=(6, 6))
    config = CalibConfig(image_mean=(0.5, 0.5, 0.5), image_std=(0.5, 0.25, 0.1), max_samples=None)
    reader = open_reader(str(folder), model, config)
    assert reader.preprocess.layout == "NHWC"
    sample = reader.get_next()["img"]
    assert sample.shape == (1, 6, 6, 3)
    np.testing.assert_allclose(
        sample[0, 3, 3], [(1 - 0.5) / 0.5, (0 - 0.5) / 0.25, (0.2 - 0.5) / 0.1], atol=1e-5
    )


def test_image_grayscale_and_mean_length_error(tmp_path):
    model = conv_model(channels=1)
    folder = tmp_path / "gray"
    folder.mkdir()
    Image.new("L", (8, 8), 128).save(folder / "g.png")
    sample = open_reader(str(folder), model, _image_config()).get_next()["x"]
    assert sample.shape == (1, 1, 8, 8)
    np.testing.assert_allclose(sample, 128 / 255.0, atol=1e-6)
    with pytest.raises(CalibrationDataError, match="image_mean has 3 values.*1 channel"):
        open_reader(str(folder), model, CalibConfig())  # ImageNet defaults have 3 values


def test_image_errors(tmp_path, model):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CalibrationDataError, match="empty.*empty"):
        open_reader(str(empty), model, _image_config())
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(CalibrationDataError, match=r"bad\.jpg: cannot read image"):
        open_reader(str(broken), model, _image_config())
    with pytest.raises(CalibrationDataError, match="single-input"):
        ImageFolderReader(broken, input_specs(two_input_model()), _image_config())


def test_image_dynamic_size_needs_image_size(tmp_path):
    model = conv_model(size="H")  # symbolic spatial dims
    folder = tmp_path / "imgs"
    folder.mkdir()
    _save_image(folder / "a.png", (1, 2, 3), size=(30, 20))
    with pytest.raises(CalibrationDataError, match="dynamic height/width; set image_size"):
        open_reader(str(folder), model, _image_config())
    sample = open_reader(str(folder), model, _image_config(image_size=12)).get_next()["x"]
    assert sample.shape == (1, 3, 12, 12)


SCRIPT = """
import numpy as np

def load_data():
    for i in range(3):
        yield {"x": np.full((2, 3, 8, 8), i, dtype=np.float32)}

def other():
    return [{"x": np.full((1, 3, 8, 8), 7, dtype=np.float32)}]

def not_dicts():
    return [np.zeros((1, 3, 8, 8), np.float32)]

def raises():
    raise RuntimeError("boom")
"""


def test_script_reader_default_and_named_function(tmp_path, model):
    script = tmp_path / "loader.py"
    script.write_text(SCRIPT)
    reader = open_reader(str(script), model, CalibConfig(max_samples=None))
    for _ in range(2):  # a generator function is called again on each pass
        values = [float(b["x"][0, 0, 0, 0]) for b in reader]
        assert values == [0.0, 1.0, 2.0]
    named = open_reader(f"{script}:other", model, CalibConfig())
    assert float(named.get_next()["x"][0, 0, 0, 0]) == 7.0
    limited = open_reader(str(script), model, CalibConfig(max_samples=3))
    assert [b["x"].shape[0] for b in limited] == [2, 1]


def test_script_reader_errors(tmp_path, model):
    script = tmp_path / "loader.py"
    script.write_text(SCRIPT)
    with pytest.raises(CalibrationDataError, match="has no function 'missing'"):
        open_reader(f"{script}:missing", model, CalibConfig())
    with pytest.raises(CalibrationDataError, match="loader.py:not_dicts: batch 0: expected a dict"):
        open_reader(f"{script}:not_dicts", model, CalibConfig())
    with pytest.raises(CalibrationDataError, match="raised RuntimeError"):
        open_reader(f"{script}:raises", model, CalibConfig())
    broken = tmp_path / "broken.py"
    broken.write_text("import does_not_exist_anywhere\n")
    with pytest.raises(CalibrationDataError, match="broken.py: importing the data-loader script failed"):
        open_reader(str(broken), model, CalibConfig())


def test_synthetic_is_opt_in_flagged_and_seeded(model):
    with pytest.raises(CalibrationDataError, match="no calibration data given.*'synthetic'"):
        open_reader(None, model, CalibConfig())
    reader = open_reader("synthetic", model, CalibConfig(batch_size=4, synthetic_samples=10))
    assert isinstance(reader, SyntheticReader) and reader.synthetic
    first = [b["x"].copy() for b in reader]
    again = [b["x"] for b in reader]
    assert [b.shape[0] for b in first] == [4, 4, 2]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])
    values = np.concatenate(
        [b["x"] for b in open_reader("synthetic:uniform", model, CalibConfig(synthetic_samples=8))]
    )
    assert values.min() >= -1.0 and values.max() < 1.0


def test_synthetic_needs_static_sample_dims():
    with pytest.raises(CalibrationDataError, match="input 'x'.*dynamic dimension"):
        open_reader("synthetic", conv_model(size="H"), CalibConfig())


def test_dispatch_errors(tmp_path, model):
    with pytest.raises(CalibrationDataError, match="nothere.npz: calibration data not found"):
        open_reader(str(tmp_path / "nothere.npz"), model, CalibConfig())
    odd = tmp_path / "data.csv"
    odd.write_text("1,2,3\n")
    with pytest.raises(CalibrationDataError, match="data.csv: unsupported calibration data"):
        open_reader(str(odd), model, CalibConfig())


def test_open_reader_accepts_model_path_and_config_data(model_file, indexed_npz):
    path, _ = indexed_npz
    reader = open_reader(None, model_file, CalibConfig(data=str(path), batch_size=5))
    assert reader.num_batches() == 4
