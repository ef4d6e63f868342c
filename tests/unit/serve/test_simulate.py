"""The discrete-event simulation: batching semantics, traces, and the issue's acceptance figures."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from flexiq_trt.serve.accuracy import load_report_accuracy
from flexiq_trt.serve.controller import ControllerConfig, FixedRatio
from flexiq_trt.serve.profile import LatencyProfile, published_profile
from flexiq_trt.serve.simulate import SimConfig, run_comparison, simulate, summarize
from flexiq_trt.serve.traces import Trace, TraceConfig, generate_trace


def test_dynamic_batching_follows_the_batcher_rules():
    flat = LatencyProfile((0.0, 1.0), (1, 2), ((10.0, 10.0), (10.0, 10.0)), "flat")
    trace = Trace("hand", TraceConfig(duration_s=1), np.array([0.0, 1.0, 2.0, 50.0]), lambda t: t)
    res = simulate(trace, FixedRatio(0.0), flat, SimConfig(max_batch=2, max_queue_delay_ms=5))
    # [0, 1] start when the batch is full (t=1); 2 is alone when the worker frees (t=11, waited > 5 ms);
    # 50 waits the full queue delay (t=55).
    assert res.batch_start_ms.tolist() == [1.0, 11.0, 55.0]
    assert res.batch_size.tolist() == [2, 1, 1]
    assert res.latency_ms.tolist() == [11.0, 10.0, 19.0, 15.0]
    s = summarize(res, 15.0, [])  # 15 ms met exactly counts
    assert s.slo_attainment == 0.75 and s.requests == 4


def test_traces_regenerate_from_the_seed_and_follow_their_rates():
    cfg = TraceConfig(duration_s=60, seed=3)
    a, b = generate_trace("bursty", cfg), generate_trace("bursty", cfg)
    assert np.array_equal(a.arrivals_ms, b.arrivals_ms) and a.bursts == b.bursts and a.bursts
    assert not np.array_equal(a.arrivals_ms, generate_trace("bursty", TraceConfig(duration_s=60, seed=4)).arrivals_ms)
    t = a.arrivals_ms / 1000
    inside = np.zeros(len(t), bool)
    for start, end in a.bursts:
        inside |= (t >= start) & (t < end)
    burst_time = sum(e - s for s, e in a.bursts)
    assert inside.sum() / burst_time == pytest.approx(cfg.burst_rate, rel=0.1)
    assert (~inside).sum() / (60 - burst_time) == pytest.approx(cfg.base_rate, rel=0.1)
    spike = generate_trace("spike", cfg)
    assert np.all(np.diff(spike.arrivals_ms) >= 0)


@pytest.mark.parametrize("kind", ["bursty", "diurnal", "spike"])
def test_controller_meets_the_acceptance_on_bursty_traces(converted, kind):
    """Issue 12: where fixed 0% meets the SLO for <= 80%, the controller meets it for >= 99% and is more
    accurate than every fixed ratio that also reaches 99% (published latency, a real conversion's accuracy)."""
    accuracy = load_report_accuracy(converted / "report.json", "cosine")
    ctl = ControllerConfig(slo_ms=50)
    rows = run_comparison([generate_trace(kind, TraceConfig())], published_profile(16), accuracy, ctl, SimConfig())
    by = {r.policy: r for r in rows}
    metric = accuracy.metric
    assert by["fixed 0%"].slo_attainment <= 0.80
    assert by["controller"].slo_attainment >= 0.99
    assert by["oracle (lookahead)"].slo_attainment >= 0.99
    good_fixed = [r for name, r in by.items() if name.startswith("fixed") and r.slo_attainment >= 0.99]
    assert good_fixed  # fixed 100% keeps up, so the comparison is not vacuous
    for r in good_fixed:
        assert by["controller"].mean_accuracy[metric] > r.mean_accuracy[metric]


def test_serve_sim_cli_writes_table_plots_and_results(converted, tmp_path):
    out = tmp_path / "sim"
    proc = subprocess.run([sys.executable, "-m", "flexiq_trt", "serve-sim", "--report", str(converted / "report.json"),
                           "--metric", "cosine", "--also-metric", "rel_l2_error", "--traces", "spike",
                           "--trace-duration-s", "30", "--trace-spike-at-s", "10", "--slo-ms", "50", "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "| spike | controller |" in proc.stdout and "published figures" in proc.stdout
    assert (out / "serving_spike.png").stat().st_size > 10_000
    results = json.loads((out / "results.json").read_text())
    assert results["traces"][0]["spike_at_s"] == 10 and len(results["rows"]) == 5
    assert set(results["rows"][0]["mean_accuracy"]) == {"cosine", "rel_l2_error"}


def test_serve_sim_cli_reports_a_bad_profile(converted, tmp_path):
    (tmp_path / "p.json").write_text("{}")
    proc = subprocess.run([sys.executable, "-m", "flexiq_trt", "serve-sim", "--report", str(converted / "report.json"),
                           "--profile", str(tmp_path / "p.json")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "p.json" in proc.stderr and "latency records" in proc.stderr
