"""Held-out evaluation: the FP32 model against simulation models at each ratio, in ONNX Runtime."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import onnx

from flexiq_trt.calibration.feeds import FeedSet
from flexiq_trt.log import get_logger
from flexiq_trt.plugin_spec import RUNTIME_INPUT
from flexiq_trt.ratios import RatioTable
from flexiq_trt.report.metrics import MetricAccumulator

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
