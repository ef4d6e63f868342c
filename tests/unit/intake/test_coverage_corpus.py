"""Slow tier: every real model of the test material through the intake; no layer skipped for a shape.

The same corpus as benchmarks/coverage_corpus.py (whose table is docs/coverage.md). Models whose
package is missing are reported as skipped tests, not silently passed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "benchmarks"))

import coverage_corpus as cc  # noqa: E402

pytestmark = pytest.mark.slow

# Why a MatMul/Gemm may legitimately stay in float: an activation x activation product, too few
# input channels for one group, or a batched (rank > 2) weight.
LINEAR_MODEL_REASONS = ("not constant", "below one channel group", "batched MatMul weights")


def _corpus_names() -> list[str]:
    try:
        return [m.name for m in cc.corpus()]
    except Exception:  # the onnx wheel's light models missing: still run the rest
        return []


@pytest.mark.parametrize("name", _corpus_names())
def test_no_layer_skipped_for_a_shape(name):
    from flexiq_trt.intake import load_model
    from flexiq_trt.intake.stage import run_intake

    spec = next(m for m in cc.corpus() if m.name == name)
    try:
        original = load_model(spec.path())
    except Exception as e:  # a test-material package (or torch, for the export) not installed
        pytest.skip(f"{name} not available: {e}")
    result = run_intake(original, cc.first_batch(original, spec), cc.GROUP_SIZE)
    shape_skips = [f"{s.name}: {s.reason}" for s in result.skipped if cc.is_shape_reason(s)]
    assert not shape_skips, shape_skips
    linear = [f"{s.name}: {s.reason}" for s in result.skipped if s.op_type in ("MatMul", "Gemm")
              and not any(r in s.reason for r in LINEAR_MODEL_REASONS)]
    assert not linear, linear
    assert result.eligible, f"{name}: nothing eligible"
    if name == "minilm_l6":  # 6 layers x (Q, K, V, attention output, FFN in, FFN out)
        assert sum(e.op_type == "MatMul" for e in result.eligible) == 36
