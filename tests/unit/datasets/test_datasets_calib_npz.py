"""Calibration .npz files are keyed by the model's input names and round-trip exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from flexiq_trt.datasets import calib_npz
from flexiq_trt.errors import CalibrationDataError


def _model(tmp_path: Path, inputs: list[str]) -> Path:
    values = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 4]) for n in inputs]
    nodes = [helper.make_node("Identity", [n], [f"{n}_out"]) for n in inputs]
    outputs = [helper.make_tensor_value_info(f"{n}_out", TensorProto.FLOAT, ["N", 4]) for n in inputs]
    weight = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    graph = helper.make_graph(nodes, "g", values + [helper.make_tensor_value_info("w", TensorProto.FLOAT, [1])],
                              outputs, [weight])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def test_input_names_skip_initializers(tmp_path: Path) -> None:
    assert calib_npz.model_input_names(_model(tmp_path, ["a", "b"])) == ["a", "b"]


def test_write_for_model_keys_by_input_name(tmp_path: Path) -> None:
    samples = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    out = calib_npz.write_for_model(_model(tmp_path, ["pixels"]), tmp_path / "sub" / "c.npz", samples)
    with np.load(out) as data:
        assert list(data.keys()) == ["pixels"]
        np.testing.assert_array_equal(data["pixels"], samples)


def test_multi_input_model_needs_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(CalibrationDataError, match=r"\['a', 'b'\]"):
        calib_npz.write_for_model(_model(tmp_path, ["a", "b"]), tmp_path / "c.npz", np.zeros((2, 4)))


def test_mismatched_sample_counts_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(CalibrationDataError, match="sample axis"):
        calib_npz.write_calibration_npz(tmp_path / "c.npz", {"a": np.zeros((2, 4)), "b": np.zeros((3, 4))})


def test_empty_mapping_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(CalibrationDataError, match="no arrays"):
        calib_npz.write_calibration_npz(tmp_path / "c.npz", {})
