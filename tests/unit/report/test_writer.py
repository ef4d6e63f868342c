"""Report writer: intervals and n in report.md, the INT8 difference table, error bars, warnings, clean JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from flexiq_trt.report import writer
from flexiq_trt.report.intervals import METHODS, small_sample_warning
from flexiq_trt.report.metrics import MetricAccumulator, add_int8_differences


def _report(n: int, warnings: list[str] | None = None) -> dict:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(n, 4)).astype(np.float32)
    labels = ref.argmax(1)
    rows = []
    for variant, scale in (("flexiq", 1.0), ("naive", 3.0)):
        for ratio, noise in ((0.0, 0.1), (0.5, 0.4), (1.0, 1.2)):
            acc = MetricAccumulator()
            acc.update(ref, ref + rng.normal(0, noise * scale, ref.shape).astype(np.float32), labels)
            rows.append({"variant": variant, "ratio": ratio, "mac_share": ratio, **acc.summary()})
    add_int8_differences(rows)
    fp32 = MetricAccumulator()
    fp32.update(ref, ref, labels)
    return {"model": "/m/model.onnx", "selector": "greedy", "group_size": 32,
            "calibration": {"samples": 64, "source": "calib.npz", "synthetic": False},
            "eval": {"samples": n, "source": "eval.npz", "labels": True}, "intervals": METHODS,
            "layers": {"eligible": 3, "skipped": []}, "baselines": {"fp32": fp32.summary()}, "rows": rows,
            "search_log": [], "warnings": warnings or []}


def test_markdown_shows_value_interval_and_n_everywhere():
    md = writer.to_markdown(_report(150))
    table = md.split("## accuracy by ratio")[1].split("## top1_agreement")[0]
    assert "(n = 150)" in md and "| ratio | 4-bit MAC share | n | flexiq | naive |" in table
    body = [line for line in table.splitlines() if line.startswith("| 0.") or line.startswith("| 1.")]
    assert len(body) == 3 and all(line.count("[") == 2 and "| 150 |" in line for line in body)
    assert "| fp32 | 150 | 1.0000 [" in md
    assert "## Change of accuracy against INT8 (ratio 0) of the same variant" in md


def test_group_size_line_shows_the_per_layer_mix():
    report = _report(40)
    assert "group size 32," in writer.to_markdown(report)
    report.update(group_size=0, group_sizes={"32": 4, "64": 11})
    assert "group size per layer: 4 layers G=32, 11 layers G=64," in writer.to_markdown(report)


def test_difference_cells_mark_what_the_data_cannot_tell():
    row = {"vs_int8": {"accuracy": {"diff": 0.07, "low": -0.05, "high": 0.19, "significant": False}}}
    assert writer.difference(row, "accuracy") == f"+0.0700 [-0.0500, +0.1900] {writer.NOT_SIGNIFICANT}"
    row["vs_int8"]["accuracy"].update(low=0.02, significant=True)
    assert writer.difference(row, "accuracy") == "+0.0700 [+0.0200, +0.1900]"
    assert writer.difference({}, "accuracy") == "–"


def test_small_sample_warning_is_at_the_top_of_the_markdown():
    warning = small_sample_warning(13, heldout_from_calibration=True)
    md = writer.to_markdown(_report(13, [warning]))
    assert md.splitlines()[2] == f"> **Warning:** {warning}"


def test_summary_table_for_the_cli():
    text = writer.summary_table(_report(150))
    assert "accuracy n = 150, top1_agreement n = 150" in text
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert lines[0] == ("| ratio | 4-bit MAC share | accuracy | change vs INT8 | top1_agreement | change vs INT8 |")
    assert [line.split(" | ")[0] for line in lines[1:]] == ["| 0.00", "| 0.50", "| 1.00", "| fp32"]
    assert lines[1].split(" | ")[3] == "–"  # INT8 is not compared with itself
    assert lines[3].split(" | ")[3].startswith("-")  # ratio 1 (much noisier) loses accuracy vs INT8
    assert writer.summary_table(_report(150), variant="nope") == ""


def test_both_classifier_metrics_get_a_table_and_a_panel():
    md = writer.to_markdown(_report(150))
    assert "## top1_agreement by ratio" in md and "## Change of top1_agreement against INT8" in md
    assert writer.shown_metrics([{"cosine": 0.9}]) == ["cosine"]


def test_error_bars_come_from_the_intervals():
    rows = [{"accuracy": 0.5, "intervals": {"accuracy": [0.4, 0.65]}},
            {"accuracy": 0.9, "intervals": {"accuracy": [0.85, 0.93]}}]
    below, above = writer._error_bars(rows, "accuracy")
    assert below == pytest.approx([0.1, 0.05]) and above == pytest.approx([0.15, 0.03])
    assert writer._error_bars([{"accuracy": 0.5}], "accuracy") is None


def test_write_report_files(tmp_path):
    report = _report(120)
    paths = writer.write_report(report, tmp_path)
    data = json.loads(paths[0].read_text())
    assert "per_sample" not in paths[0].read_text()
    row = data["rows"][1]
    assert row["samples"] == 120 and len(row["intervals"]["accuracy"]) == 2 and "accuracy" in row["vs_int8"]
    assert data["intervals"]["confidence"] == 0.95
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
