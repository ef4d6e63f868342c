"""Metric accumulation: per-sample values, intervals on every figure, paired differences vs INT8, JSON safety."""

from __future__ import annotations

import json

import numpy as np
import pytest

from flexiq_trt.report.metrics import (
    PER_SAMPLE_KEY,
    MetricAccumulator,
    SampleValues,
    add_int8_differences,
    without_per_sample,
)


def _logits(n: int = 120, classes: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(n, classes)).astype(np.float32)
    labels = np.where(rng.random(n) < 0.7, ref.argmax(1), rng.integers(0, classes, n))
    return ref, labels


def _summary(ref, cand, labels=None, batch=32) -> dict:
    acc = MetricAccumulator()
    for s in range(0, ref.shape[0], batch):
        acc.update(ref[s:s + batch], cand[s:s + batch], None if labels is None else labels[s:s + batch])
    return acc.summary()


def test_figures_match_their_definitions_and_carry_n_and_intervals():
    ref, labels = _logits()
    cand = ref + np.random.default_rng(1).normal(0, 0.6, ref.shape).astype(np.float32)
    s = _summary(ref, cand, labels)
    agree = (ref.argmax(1) == cand.argmax(1)).mean()
    assert s["samples"] == s["labelled"] == 120
    assert s["top1_agreement"] == pytest.approx(agree)
    assert s["accuracy"] == pytest.approx((cand.argmax(1) == labels).mean())
    assert s["fp32_accuracy"] == pytest.approx((ref.argmax(1) == labels).mean())
    r, c = ref.astype(np.float64), cand.astype(np.float64)
    cos = (r * c).sum(1) / (np.linalg.norm(r, axis=1) * np.linalg.norm(c, axis=1))
    assert s["cosine"] == pytest.approx(cos.mean())
    assert s["rel_l2_error"] == pytest.approx(np.linalg.norm(r - c) / np.linalg.norm(r))
    for metric in ("top1_agreement", "accuracy", "fp32_accuracy", "cosine", "kl", "rel_l2_error"):
        lo, hi = s["intervals"][metric]
        assert lo <= s[metric] <= hi and hi > lo, metric
    assert isinstance(s[PER_SAMPLE_KEY], SampleValues) and s[PER_SAMPLE_KEY].agree.shape == (120,)


def test_non_classifier_gets_cosine_and_l2_only():
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(40, 3, 5, 5)).astype(np.float32)
    s = _summary(ref, ref * 1.01)
    assert s["top1_agreement"] is None and s["kl"] is None and s["accuracy"] is None
    assert set(s["intervals"]) == {"cosine", "rel_l2_error"}


def test_no_labels_no_accuracy():
    ref, _ = _logits(50)
    s = _summary(ref, ref)
    assert s["accuracy"] is None and "accuracy" not in s["intervals"] and s["top1_agreement"] == 1.0
    assert s["intervals"]["top1_agreement"][1] == 1.0


def _rows(n: int = 200) -> list[dict]:
    ref, labels = _logits(n, seed=3)
    rng = np.random.default_rng(4)
    rows = []
    for ratio, noise in ((0.0, 0.05), (0.5, 0.3), (1.0, 1.5)):
        s = _summary(ref, ref + rng.normal(0, noise, ref.shape).astype(np.float32), labels)
        rows.append({"variant": "flexiq", "ratio": ratio, "mac_share": ratio, **s})
    return rows


def test_each_ratio_is_compared_with_int8_of_the_same_variant():
    rows = _rows()
    add_int8_differences(rows)
    assert "vs_int8" not in rows[0]
    for r in rows[1:]:
        d = r["vs_int8"]["accuracy"]
        assert d["diff"] == pytest.approx(r["accuracy"] - rows[0]["accuracy"])
        assert d["low"] <= d["diff"] <= d["high"] and d["n"] == 200
        assert set(r["vs_int8"]) == {"accuracy", "top1_agreement", "cosine", "kl", "rel_l2_error"}
    heavy = rows[2]["vs_int8"]
    assert heavy["top1_agreement"]["better"] is False and heavy["kl"]["better"] is False
    assert heavy["rel_l2_error"]["diff"] > 0 and heavy["rel_l2_error"]["significant"]


def test_report_without_per_sample_values_is_json():
    rows = _rows(60)
    add_int8_differences(rows)
    with pytest.raises(TypeError):
        json.dumps({"rows": rows}, default=float)
    clean = without_per_sample({"rows": rows, "baselines": {"fp32": rows[0]}})
    text = json.dumps(clean, default=float)
    assert PER_SAMPLE_KEY not in text and "vs_int8" in text
    assert PER_SAMPLE_KEY in rows[0]  # the input is not modified
