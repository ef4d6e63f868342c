"""Held-out evaluation: the FP32 model against simulation models at each ratio, in ONNX Runtime.

The report evaluates the float-exact simulation (`write_simulation_model(..., float_exact=True)`,
the variant the search's evaluator runs): its int32 accumulators equal the ConvInteger artifact's
by construction (graph_passes/simulate_layers.py, `float_exact_chunk`), and ONNX Runtime runs it
faster (float Conv/MatMul kernels, no int8 casts; figures in docs/architecture.md, "Simulation vs
speed"). `check_artifact` holds the written artifact to it on a sample, so a report never rests
on a model that differs from the shipped one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import onnx

from flexiq_trt.calibration.feeds import FeedSet
from flexiq_trt.errors import FlexiqInternalError
from flexiq_trt.log import get_logger
from flexiq_trt.plugin_spec import RUNTIME_INPUT
from flexiq_trt.ratios import RatioTable
from flexiq_trt.report.metrics import MetricAccumulator

ARTIFACT_CHECK_SAMPLES = 8

_log = get_logger(__name__)


def session(model: onnx.ModelProto | bytes | str):
    """A CPU ONNX Runtime session (all cores, sequential execution, no graph rewrites that change numerics)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    src = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def run_outputs(sess, feeds: FeedSet, extra: dict[str, np.ndarray] | None = None) -> list[np.ndarray]:
    """First output of `sess` for every batch."""
    names = {i.name for i in sess.get_inputs()}
    out = []
    for batch in feeds.batches:
        feed = {k: v for k, v in batch.items() if k in names}
        if extra:
            feed.update(extra)
        out.append(sess.run(None, feed)[0])
    return out


def score(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray], feeds: FeedSet) -> dict:
    """Metrics of `candidate` batches against `reference` batches (labels from `feeds`)."""
    acc = MetricAccumulator()
    start = 0
    for r, c in zip(reference, candidate, strict=True):
        lab = None if feeds.labels is None else feeds.labels[start:start + r.shape[0]]
        acc.update(r, c, lab)
        start += r.shape[0]
    return acc.summary()


def evaluate_variants(fp32_outputs: list[np.ndarray], variants: dict[str, onnx.ModelProto], table: RatioTable,
                      ratios: Sequence[float], feeds: FeedSet) -> list[dict]:
    """One row per (variant, ratio): the achieved 4-bit MAC share and the metrics vs FP32."""
    rows = []
    for name, model in variants.items():
        sess = session(model)
        for r in ratios:
            t0 = time.perf_counter()
            vec = table.vector(r)
            outs = run_outputs(sess, feeds, {RUNTIME_INPUT: vec})
            row = {"variant": name, "ratio": float(r), "mac_share": table.achieved_ratio(vec),
                   **score(fp32_outputs, outs, feeds)}
            rows.append(row)
            _log.info("evaluated %s at ratio %.2f in %.1fs: %s", name, r, time.perf_counter() - t0,
                      {k: row[k] for k in ("top1_agreement", "accuracy", "cosine") if row.get(k) is not None})
    return rows


def check_artifact(artifact: str, evaluated: onnx.ModelProto, table: RatioTable, ratios: Sequence[float],
                   feeds: FeedSet, samples: int = ARTIFACT_CHECK_SAMPLES) -> dict:
    """Run the written simulation ONNX and the model the report evaluates on `samples` inputs; outputs must be identical.

    Ratios: 0, the report ratios and 1 (every layer's 8-bit and 4-bit paths). Raises
    FlexiqInternalError naming the file, ratio and output on the first difference.
    """
    if not feeds.batches:
        return {"samples": 0, "ratios": [], "identical": True}
    first = feeds.batches[0]
    sample = {k: v[:samples] for k, v in first.items()}
    n = int(next(iter(sample.values())).shape[0])
    ship, fast = session(artifact), session(evaluated)
    names = {i.name for i in ship.get_inputs()}
    checked = sorted({0.0, 1.0, *(float(r) for r in ratios)})
    t0 = time.perf_counter()
    for r in checked:
        feed = {k: v for k, v in sample.items() if k in names}
        feed[RUNTIME_INPUT] = table.vector(r)
        want, got = ship.run(None, feed), fast.run(None, feed)
        for out, a, b in zip(ship.get_outputs(), want, got, strict=True):
            if a.shape != b.shape or not np.array_equal(a, b):
                diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.shape == b.shape \
                    else float("nan")
                raise FlexiqInternalError(
                    f"{artifact}: output {out.name!r} at ratio {r:.2f} differs from the float-exact simulation the "
                    f"report evaluates (max |diff| {diff:.3g} on {n} samples); the report would not describe the "
                    "shipped model")
    _log.info("simulation artifact identical to the evaluated float-exact model on %d samples at %d ratios (%.1fs)",
              n, len(checked), time.perf_counter() - t0)
    return {"samples": n, "ratios": checked, "identical": True}
