"""Fixtures for the calibration tests."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from _calib_models import conv_model


@pytest.fixture
def model() -> onnx.ModelProto:
    return conv_model()


@pytest.fixture
def model_file(tmp_path, model):
    path = tmp_path / "tiny_conv.onnx"
    onnx.save(model, str(path))
    return path


@pytest.fixture
def indexed_npz(tmp_path):
    """20 samples where every value of sample i equals i, so each batch's identity is visible."""
    data = np.broadcast_to(np.arange(20, dtype=np.float32)[:, None, None, None], (20, 3, 8, 8)).copy()
    path = tmp_path / "calib.npz"
    np.savez(path, x=data)
    return path, data
