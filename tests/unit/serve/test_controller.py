"""Latency profiles, accuracy tables and the slack-based controller (pure Python, deterministic)."""

from __future__ import annotations

import json

import pytest

from flexiq_trt.errors import ConfigError, ModelError
from flexiq_trt.serve.accuracy import AccuracyTable, load_report_accuracy
from flexiq_trt.serve.controller import (
    ControllerConfig,
    QueueState,
    SlackController,
    pareto_candidates,
)
from flexiq_trt.serve.profile import (
    PUBLISHED_VIT_B_BATCH16_MS,
    LatencyProfile,
    load_latency_profile,
    published_profile,
)

ACC = AccuracyTable((0.0, 0.25, 0.5, 0.75, 1.0), (0.90, 0.89, 0.88, 0.86, 0.80), "accuracy", "test")


def test_published_profile_matches_the_paper_at_batch_16_and_is_affine_in_batch():
    prof = published_profile(16, overhead_ms=1.5)
    for r, ms in PUBLISHED_VIT_B_BATCH16_MS.items():
        assert prof.latency(r, 16) == pytest.approx(ms)
        assert prof.latency(r, 1) == pytest.approx(1.5 + (ms - 1.5) / 16)
        assert prof.latency(r, 9) - prof.latency(r, 8) == pytest.approx(prof.latency(r, 2) - prof.latency(r, 1))
    assert prof.latency(0.25, 16) == pytest.approx((12.24 + 10.17) / 2)  # linear in ratio between points
    assert "published figures" in prof.label and "modelled" in prof.label
    with pytest.raises(ConfigError, match="batch 17"):
        prof.latency(0.0, 17)


def test_profile_round_trip_and_flat_records(tmp_path):
    prof = published_profile(4)
    (tmp_path / "p.json").write_text(prof.to_json())
    assert load_latency_profile(tmp_path / "p.json") == prof
    records = [{"ratio": r, "batch_size": b, "median_ms": 1.0 + b * (1.5 - r)} for r in (0.0, 1.0) for b in (1, 8)]
    (tmp_path / "bench.json").write_text(json.dumps({"label": "runner on X", "results": records}))
    loaded = load_latency_profile(tmp_path / "bench.json")
    assert loaded.label == "runner on X" and loaded.batch_sizes == (1, 8)
    assert loaded.latency(0.0, 8) == pytest.approx(13.0) and loaded.latency(1.0, 4) == pytest.approx(1 + 0.5 * 4)


def test_profile_errors_name_the_problem(tmp_path):
    (tmp_path / "holes.json").write_text(json.dumps([{"ratio": 0, "batch": 1, "latency_ms": 1},
                                                     {"ratio": 1, "batch": 2, "latency_ms": 1}]))
    with pytest.raises(ModelError, match="missing"):
        load_latency_profile(tmp_path / "holes.json")
    (tmp_path / "bad.json").write_text(json.dumps([{"ratio": 0, "latency_ms": 1}]))
    with pytest.raises(ModelError, match="record 0.*batch"):
        load_latency_profile(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="positive"):
        LatencyProfile((0.0,), (1,), ((-1.0,),), "neg")
    with pytest.raises(ModelError, match="no such"):
        load_latency_profile(tmp_path / "absent.json")


def test_accuracy_from_a_real_report(converted):
    acc = load_report_accuracy(converted / "report.json", "cosine")
    assert acc.ratios == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert all(0 < v <= 1 for v in acc.values) and acc.values[0] >= acc.values[-1]
    with pytest.raises(ModelError, match="missing|numeric"):
        load_report_accuracy(converted / "report.json", "no_such_metric")


def test_pareto_drops_dominated_ratios():
    prof = published_profile(16)
    bumpy = AccuracyTable((0.0, 0.5, 1.0), (0.90, 0.91, 0.80), "accuracy")
    # 0% is slower and less accurate than 50%: never worth running.
    assert pareto_candidates((0.0, 0.5, 1.0), prof, bumpy) == [0.5, 1.0]
    assert pareto_candidates((0.0, 0.25, 0.5, 0.75, 1.0), prof, ACC) == [0.0, 0.25, 0.5, 0.75, 1.0]


def _state(now, oldest, batch=16, backlog=()):
    return QueueState(now, [oldest] * batch, list(backlog), 16)


def test_controller_picks_most_accurate_feasible_and_steps_down_at_once():
    prof = published_profile(16)
    ctl = SlackController(prof, ACC, ControllerConfig(slo_ms=20, safety_ms=0))
    assert ctl.decide(_state(0, 0)).ratio == 0.0  # 12.24 ms fits in 20
    # The oldest request already waited 8 ms: 0% (12.24) would finish at 20.24 > 20, 25% (11.2) fits.
    d = ctl.decide(_state(108, 100))
    assert d.ratio == 0.25 and d.feasible and d.slack_ms >= 0
    # A backlog of 16 behind the batch: the batch and then the backlog at 100% (8.67 ms) must both fit.
    assert ctl.decide(_state(200, 200, backlog=[200] * 16)).ratio == 0.25  # 11.2 + 8.67 <= 20 < 12.24 + 8.67
    d = ctl.decide(_state(200, 200, backlog=[198] * 16))  # backlog waited 2 ms: only 8.67 + 8.67 fits in 18
    assert d.ratio == 1.0 and d.feasible
    # Nothing fits: the fastest ratio, flagged infeasible.
    d = ctl.decide(_state(300, 250))
    assert d.ratio == 1.0 and not d.feasible


def test_hysteresis_steps_up_one_level_after_the_hold_and_does_not_flap():
    prof = published_profile(16)
    cfg = ControllerConfig(slo_ms=20, safety_ms=0, upgrade_margin_ms=2.0, upgrade_hold_ms=100)
    ctl = SlackController(prof, ACC, cfg)
    assert ctl.decide(_state(0, -11)).ratio == 1.0  # 11 ms waited: only 100% (8.67) fits
    ratios = [ctl.decide(_state(t, t)).ratio for t in range(10, 500, 10)]  # relaxed: every ratio has slack
    assert ratios[:9] == [1.0] * 9  # held for 100 ms before the first step up
    steps = [b for a, b in zip(ratios, ratios[1:], strict=False) if a != b]
    assert steps == [0.75, 0.5, 0.25, 0.0]  # one level at a time, never back down while relaxed
    # Slack just below the margin at the next level: no step up however long it lasts.
    ctl.reset()
    ctl.decide(_state(0, -11))
    tight = [ctl.decide(_state(t, t - 20 + 9.42 + 1.0)).ratio for t in range(10, 1000, 10)]
    assert set(tight) == {1.0}


def test_controller_is_deterministic():
    prof = published_profile(16)
    seq = [_state(t, t - (t * 7 % 13), batch=1 + t % 16) for t in range(0, 3000, 5)]
    runs = []
    for _ in range(2):
        ctl = SlackController(prof, ACC, ControllerConfig(slo_ms=20))
        runs.append([ctl.decide(s) for s in seq])
    assert runs[0] == runs[1] and len({d.ratio for d in runs[0]}) > 1


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="slo_ms"):
        ControllerConfig(slo_ms=0)
    with pytest.raises(ConfigError, match="ratios"):
        ControllerConfig(ratios=(1.5,))
