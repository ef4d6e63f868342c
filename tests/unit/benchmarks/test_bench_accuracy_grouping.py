"""bench_accuracy.py's --channel-grouping / --seeds summary, on hand-made report rows (no conversion)."""

from __future__ import annotations

import importlib.util

import pytest
from conftest import REPO

spec = importlib.util.spec_from_file_location("bench_accuracy_g", REPO / "benchmarks" / "bench_accuracy.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

RATIOS = [0.0, 1.0]


def run(grouping: str, seed: int, agree: list[float], kl: list[float]) -> dict:
    rows = [{"variant": "flexiq", "ratio": r, "top1_agreement": a, "kl": k}
            for r, a, k in zip(RATIOS, agree, kl, strict=True)]
    rows.append({"variant": "plain", "ratio": 1.0, "top1_agreement": 0.0, "kl": 9.0})  # ignored: not flexiq
    return {"grouping": grouping, "seed": seed, "ratios": RATIOS, "rows": rows, "calib": 64, "group_size": 0}


RUNS = [run("max", 1, [0.9, 0.6], [0.01, 0.30]), run("rms", 1, [0.9, 0.7], [0.01, 0.20]),
        run("max", 2, [0.8, 0.7], [0.02, 0.40]), run("rms", 2, [0.8, 0.6], [0.02, 0.35])]


def test_summary_means_sds_and_paired_differences():
    s = bench.grouping_summary(RUNS)
    assert s["groupings"] == ["max", "rms"] and s["seeds"] == [1, 2]
    cell = s["cells"]["rms|kl|1.0"]
    assert cell["values"] == [0.20, 0.35]
    assert cell["mean"] == pytest.approx(0.275) and cell["sd"] == pytest.approx(0.106066, rel=1e-5)
    assert cell["diff_values"] == pytest.approx([-0.10, -0.05]) and cell["diff_mean"] == pytest.approx(-0.075)
    assert s["cells"]["rms|top1_agreement|1.0"]["diff_values"] == pytest.approx([0.1, -0.1])
    assert s["cells"]["max|kl|1.0"]["diff_values"] == [0.0, 0.0]  # the reference against itself


def test_summary_tables_print_means_and_signs():
    text = bench.summary_tables(bench.grouping_summary(RUNS))
    assert "| kl | rms | 0.015 ±0.007 | 0.275 ±0.106 |" in text
    assert "| top1_agreement | max | 85.0 ±7.1 | 65.0 ±7.1 |" in text
    assert "| kl | rms | +0.000 ±0.000 (0/0) | -0.075 ±0.035 (2/0) |" in text


def test_table_adds_seed_and_grouping_columns_only_when_they_vary():
    text = bench.table("m", RUNS)
    assert "| calib | seed | grouping | variant | 0% | 100% |" in text
    assert "| 64 | 2 | rms | flexiq | 80.0 | 60.0 |" in text
    assert "| calib | variant |" in bench.table("m", RUNS[:1])
