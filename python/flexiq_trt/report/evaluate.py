"""Held-out evaluation: the FP32 model against simulation models at each ratio, in ONNX Runtime.

The report evaluates the float-exact simulation (`write_simulation_model(..., float_exact=True)`,
the variant the search's evaluator runs and, by default, the written artifact): its int32
accumulators equal those of the ConvInteger/MatMulInteger form by construction
(graph_passes/simulate_layers.py, `float_exact_bounds`), and ONNX Runtime runs it faster (float
Conv/MatMul kernels, no int8 casts; figures in docs/architecture.md, "Decisions" (simulation vs speed)).
`check_artifact` holds the written artifact to it on a sample, so a report never rests on a model
that differs from the shipped one, and to the integer-operator form, so the float arithmetic is
checked against an independent one on every conversion.
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


INTEGER_OPS = frozenset({"ConvInteger", "MatMulInteger"})


def check_artifact(artifact: str, evaluated: onnx.ModelProto, table: RatioTable, ratios: Sequence[float],
                   feeds: FeedSet, samples: int = ARTIFACT_CHECK_SAMPLES, *,
                   integer: onnx.ModelProto | None = None) -> dict:
    """Run the written simulation ONNX against the model the report evaluates and an independent form; outputs must be identical.

    The report evaluates the float-exact graph. An artifact written with the integer operators is
    itself the independent form. A float-exact artifact (the default) is the same construction as
    the evaluated model, so it is also compared with `integer` (the same layers written with
    ConvInteger/MatMulInteger, required then): bit-exactness of the float arithmetic stays tested on
    every conversion. Ratios: 0, the report ratios and 1 (every layer's 8-bit and 4-bit paths).
    Raises FlexiqInternalError naming the file, the form, the ratio and the output on the first difference.
    """
    if not feeds.batches:
        return {"samples": 0, "ratios": [], "identical": True, "compared_with": []}
    first = feeds.batches[0]
    sample = {k: v[:samples] for k, v in first.items()}
    n = int(next(iter(sample.values())).shape[0])
    shipped_integer = any(node.op_type in INTEGER_OPS for node in onnx.load(artifact).graph.node)
    others = {"the float-exact simulation the report evaluates": evaluated}
    if not shipped_integer:
        if integer is None:
            raise FlexiqInternalError(f"{artifact} uses float-exact arithmetic: check_artifact needs the "
                                      "integer-operator form to compare it with")
        others["the ConvInteger/MatMulInteger form"] = integer
    ship = session(artifact)
    sessions = {name: session(model) for name, model in others.items()}
    names = {i.name for i in ship.get_inputs()}
    checked = sorted({0.0, 1.0, *(float(r) for r in ratios)})
    t0 = time.perf_counter()
    for r in checked:
        feed = {k: v for k, v in sample.items() if k in names}
        feed[RUNTIME_INPUT] = table.vector(r)
        want = ship.run(None, feed)
        for form, sess in sessions.items():
            got = sess.run(None, feed)
            for out, a, b in zip(ship.get_outputs(), want, got, strict=True):
                if a.shape != b.shape or not np.array_equal(a, b):
                    diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) \
                        if a.shape == b.shape else float("nan")
                    raise FlexiqInternalError(
                        f"{artifact}: output {out.name!r} at ratio {r:.2f} differs from {form} (max |diff| "
                        f"{diff:.3g} on {n} samples); the report would not describe the shipped model")
    forms = ["float-exact (evaluated)"] + (["integer operators"] if not shipped_integer else [])
    _log.info("simulation artifact (%s) identical to %s on %d samples at %d ratios (%.1fs)",
              "integer operators" if shipped_integer else "float-exact", " and ".join(forms), n, len(checked),
              time.perf_counter() - t0)
    return {"samples": n, "ratios": checked, "identical": True,
            "artifact": "integer" if shipped_integer else "float-exact", "compared_with": forms}
