"""Intervals: Wilson and bootstrap coverage, paired differences, reproducibility, the small-sample warning."""

from __future__ import annotations

import numpy as np
import pytest

from flexiq_trt.report import intervals


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (10, 10, 0.7225, 1.0), (92, 100, 0.8500, 0.9589)])
def test_wilson_matches_hand_computed_values(k, n, low, high):
    lo, hi = intervals.wilson(k, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_wilson_rejects_impossible_counts_and_is_none_without_samples():
    assert intervals.wilson(0, 0) is None
    with pytest.raises(ValueError, match="11 successes out of 10"):
        intervals.wilson(11, 10)


def test_wilson_covers_the_true_proportion_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    p, n, trials = 0.3, 60, 4000
    hits = 0
    for k in rng.binomial(n, p, size=trials):
        lo, hi = intervals.wilson(int(k), n)
        hits += lo <= p <= hi
    assert 0.93 <= hits / trials <= 0.975


def test_bootstrap_mean_covers_the_true_mean():
    rng = np.random.default_rng(2)
    hits = 0
    trials = 200
    for t in range(trials):
        lo, hi = intervals.bootstrap_mean(rng.normal(1.0, 2.0, size=80), resamples=400, seed=t)
        hits += lo <= 1.0 <= hi
    assert 0.89 <= hits / trials <= 0.99


def test_bootstrap_is_reproducible_and_narrows_with_more_samples():
    rng = np.random.default_rng(3)
    small, large = rng.normal(size=20), rng.normal(size=2000)
    assert intervals.bootstrap_mean(small) == intervals.bootstrap_mean(small)
    w_small = np.subtract(*intervals.bootstrap_mean(small)[::-1])
    w_large = np.subtract(*intervals.bootstrap_mean(large)[::-1])
    assert w_large < w_small / 5
    assert intervals.bootstrap_mean(np.zeros(0)) is None


def test_bootstrap_in_chunks_handles_many_samples(monkeypatch):
    monkeypatch.setattr(intervals, "_CHUNK_ELEMENTS", 10_000)  # forces 1 resample per chunk below
    values = np.random.default_rng(4).normal(size=20_000)
    lo, hi = intervals.bootstrap_mean(values, resamples=50)
    assert lo < values.mean() < hi and hi - lo < 0.1


def test_rel_l2_interval_contains_the_point_estimate():
    rng = np.random.default_rng(5)
    num, den = rng.uniform(0, 0.01, 300), rng.uniform(0.5, 1.5, 300)
    lo, hi = intervals.bootstrap_rel_l2(num, den)
    assert lo < np.sqrt(num.sum() / den.sum()) < hi


def test_paired_difference_resolves_what_separate_intervals_cannot():
    """Two models that differ on 6 of 200 shared samples: separate Wilson intervals overlap, the paired one does not."""
    base = np.random.default_rng(6).random(200) < 0.6
    better = base.copy()
    better[np.flatnonzero(~base)[:6]] = True
    lo_b, hi_b = intervals.wilson(int(base.sum()), 200)
    lo_a, hi_a = intervals.wilson(int(better.sum()), 200)
    assert lo_a < hi_b  # overlapping: separately, the two cannot be ranked
    d = intervals.paired_mean_difference("accuracy", better, base)
    assert d.diff == pytest.approx(6 / 200) and d.low > 0 and d.significant and d.better is True
    assert d.to_dict()["n"] == 200


def test_paired_difference_spanning_zero_claims_nothing():
    rng = np.random.default_rng(7)
    a, b = rng.random(13) < 0.9, rng.random(13) < 0.85
    d = intervals.paired_mean_difference("top1_agreement", a, b)
    assert d.low <= 0 <= d.high and not d.significant and d.better is None
    same = intervals.paired_mean_difference("cosine", a, a)
    assert (same.diff, same.low, same.high) == (0.0, 0.0, 0.0) and same.better is None


def test_lower_is_better_metrics_read_the_sign_the_other_way():
    a = np.full(50, 0.1) + np.random.default_rng(8).normal(0, 1e-3, 50)
    d = intervals.paired_mean_difference("kl", a, a + 0.05)
    assert d.diff < 0 and d.better is True


def test_paired_rel_l2_difference():
    rng = np.random.default_rng(9)
    den = rng.uniform(0.5, 1.5, 100)
    small, large = rng.uniform(0, 1e-3, 100), rng.uniform(1e-2, 2e-2, 100)
    d = intervals.paired_rel_l2_difference((small, den), (large, den))
    assert d.diff == pytest.approx(np.sqrt(small.sum() / den.sum()) - np.sqrt(large.sum() / den.sum()))
    assert d.high < 0 and d.better is True


def test_paired_difference_needs_equal_sample_counts():
    with pytest.raises(ValueError, match="10 vs 9 samples"):
        intervals.paired_mean_difference("cosine", np.ones(10), np.ones(9))


def test_small_sample_warning_names_the_count_and_suggests_eval():
    msg = intervals.small_sample_warning(13, heldout_from_calibration=True)
    assert "13" in msg and "--eval" in msg and "calibration" in msg and "cannot rank" in msg
    assert intervals.small_sample_warning(intervals.MIN_RANKING_SAMPLES, True) is None
    assert "--eval data" in intervals.small_sample_warning(99, heldout_from_calibration=False)
