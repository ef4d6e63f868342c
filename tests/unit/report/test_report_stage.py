"""Real conversions: the report and the CLI carry n and intervals, and warn below MIN_RANKING_SAMPLES."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from _utils import models
from _utils.configs import NO_BLOCK_ROUNDING_FLAG

from flexiq_trt.report.intervals import MIN_RANKING_SAMPLES, wilson


def test_few_evaluation_samples_warn_in_the_cli_and_the_report(run_cli, tmp_path):
    onnx.save(models.residual_block(c=64, hw=8), tmp_path / "res.onnx")
    np.savez(tmp_path / "c.npz", x=np.random.default_rng(0).normal(size=(48, 64, 8, 8)).astype(np.float32))
    proc = run_cli("convert", NO_BLOCK_ROUNDING_FLAG, str(tmp_path / "res.onnx"), "--calib", str(tmp_path / "c.npz"), "-o",
                   str(tmp_path / "o"), "--selector", "greedy", "--no-ort-baseline", "--no-baselines")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "o/report.json").read_text())
    n = report["eval"]["samples"]
    assert 0 < n < MIN_RANKING_SAMPLES
    (warning,) = [w for w in report["warnings"] if "cannot rank the ratios" in w]
    assert f"only {n} evaluation samples" in warning and "--eval" in warning
    assert f"WARNING: {warning}" in proc.stderr
    assert f"> **Warning:** {warning}" in (tmp_path / "o/report.md").read_text()
    # a feature-map output: cosine and relative L2 error, each with an interval and a paired change vs INT8
    for row in report["rows"]:
        assert set(row["intervals"]) == {"cosine", "rel_l2_error"} and row["samples"] == n
        assert ("vs_int8" in row) == (row["ratio"] != 0.0)
    assert "per_sample" not in (tmp_path / "o/report.json").read_text()
    assert "change vs INT8" in proc.stdout and f"cosine n = {n}" in proc.stdout


@pytest.fixture(scope="module")
def fmnist_report(tmp_path_factory):
    from flexiq_trt.datasets import fashion_mnist

    if not (fashion_mnist.data_dir() / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST not installed: apt-get install dataset-fashion-mnist")
    from flexiq_trt.cli.main import main

    tmp = tmp_path_factory.mktemp("fm")
    train, test = fashion_mnist.load("train"), fashion_mnist.load("test")
    np.savez(tmp / "c.npz", input=train.images[:96])
    np.savez(tmp / "e.npz", input=test.images[:150], labels=test.labels[:150])
    rc = main(["convert", NO_BLOCK_ROUNDING_FLAG, "--demo", "fmnist", "--calib", str(tmp / "c.npz"), "--eval", str(tmp / "e.npz"),
               "-o", str(tmp / "o"), "--selector", "greedy", "--no-ort-baseline", "--no-measure-sensitivity"])
    assert rc == 0
    return json.loads((tmp / "o/report.json").read_text()), (tmp / "o/report.md").read_text()


def test_classifier_rows_carry_wilson_intervals_and_paired_differences(fmnist_report):
    report, md = fmnist_report
    assert report["eval"]["samples"] == 150 and not [w for w in report["warnings"] if "cannot rank" in w]
    rows = {(r["variant"], r["ratio"]): r for r in report["rows"]}
    assert {"flexiq", "naive", "plain"} <= {v for v, _ in rows}
    for (variant, ratio), row in rows.items():
        k = round(row["accuracy"] * 150)
        assert row["intervals"]["accuracy"] == pytest.approx(list(wilson(k, 150)))
        if ratio:
            d = row["vs_int8"]["top1_agreement"]
            assert d["diff"] == pytest.approx(row["top1_agreement"] - rows[(variant, 0.0)]["top1_agreement"])
            assert d["low"] <= d["diff"] <= d["high"] and d["n"] == 150
    fp32 = report["baselines"]["fp32"]
    assert fp32["top1_agreement"] == 1.0 and fp32["intervals"]["accuracy"][0] < fp32["accuracy"]
    assert report["intervals"]["confidence"] == 0.95
    assert "## Change of accuracy against INT8" in md and "(n = 150)" in md


def test_report_counts_the_int8_edges_of_the_plugin_onnx(fmnist_report):
    """The Fashion-MNIST ResNet's conv -> ReLU -> conv chains become INT8 edges, and the report says how many."""
    report, md = fmnist_report
    edges = report["layers"]["int8_edges"]
    assert edges["outputs"] >= 1 and edges["inputs"] >= edges["outputs"]
    assert f"{edges['outputs']} layer(s) write codes that {edges['inputs']} layer(s) read" in md
