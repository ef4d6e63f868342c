"""Fashion-MNIST idx reader: format checks on hand-made files, then the real Debian files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from _datasets_helpers import require_fashion_mnist

from flexiq_trt.datasets import fashion_mnist
from flexiq_trt.errors import CalibrationDataError


def _write_idx(path: Path, data: np.ndarray, magic_type: int = 0x08) -> Path:
    header = bytes([0, 0, magic_type, data.ndim]) + struct.pack(f">{data.ndim}I", *data.shape)
    path.write_bytes(gzip.compress(header + data.astype(np.uint8).tobytes()))
    return path


def test_read_idx_parses_big_endian_header(tmp_path: Path) -> None:
    data = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    out = fashion_mnist.read_idx(_write_idx(tmp_path / "a.gz", data))
    assert out.shape == (2, 3, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, data)


def test_read_idx_rejects_wrong_element_type(tmp_path: Path) -> None:
    with pytest.raises(CalibrationDataError, match="bad magic"):
        fashion_mnist.read_idx(_write_idx(tmp_path / "f.gz", np.zeros((2, 2)), magic_type=0x0D))


def test_read_idx_rejects_truncated_data(tmp_path: Path) -> None:
    path = tmp_path / "t.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + bytes(5)))
    with pytest.raises(CalibrationDataError, match="expected 18"):
        fashion_mnist.read_idx(path)


def test_missing_files_name_the_debian_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(fashion_mnist.ENV_DIR, str(tmp_path))
    with pytest.raises(CalibrationDataError, match="dataset-fashion-mnist"):
        fashion_mnist.load("test")


def test_unknown_split_is_rejected() -> None:
    with pytest.raises(CalibrationDataError, match="'validation'"):
        fashion_mnist.load("validation")


def test_env_folder_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pixels = np.full((3, 28, 28), 255, dtype=np.uint8)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", pixels)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([0, 9, 4]))
    monkeypatch.setenv(fashion_mnist.ENV_DIR, str(tmp_path))
    data = fashion_mnist.load("test", limit=2, offset=1)
    assert data.images.shape == (2, 1, 28, 28) and data.labels.tolist() == [9, 4]
    assert data.images[0, 0, 0, 0] == pytest.approx((1.0 - fashion_mnist.MEAN) / fashion_mnist.STD)


def test_real_test_split(fmnist_test: fashion_mnist.LabelledImages) -> None:
    assert fmnist_test.images.shape == (10000, 1, 28, 28)
    assert fmnist_test.images.dtype == np.float32 and fmnist_test.labels.dtype == np.int64
    assert np.bincount(fmnist_test.labels).tolist() == [1000] * 10


def test_real_train_split_is_normalised_to_unit_scale() -> None:
    require_fashion_mnist()
    data = fashion_mnist.load("train")
    assert data.images.shape == (60000, 1, 28, 28) and set(np.unique(data.labels)) == set(range(10))
    assert abs(float(data.images.mean())) < 1e-3 and abs(float(data.images.std()) - 1.0) < 1e-3


def test_loading_is_deterministic() -> None:
    require_fashion_mnist()
    a, b = fashion_mnist.load("test", limit=50, offset=100), fashion_mnist.load("test", limit=50, offset=100)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
