"""Accuracy metrics of a quantized model against its FP32 original, accumulated batch by batch.

Classifier-like outputs (`[B, C]`, C > 1) get top-1 agreement, KL divergence of the softmax and,
when labels are given, labelled accuracy; every output also gets cosine similarity and relative
L2 error, which is what non-classifiers (detectors, feature maps) are judged by.

Every figure comes with its sample count and a confidence interval (report/intervals.py), and
the accumulator keeps the per-sample values (:class:`SampleValues`) so that two models scored on
the same samples can be compared with a paired interval. That is 7 float64/bool values per
sample: about 5 MB for 100k samples, which is the scale this is meant for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flexiq_trt.report import intervals

PER_SAMPLE_KEY = "per_sample"
"""Key of the :class:`SampleValues` in a summary dict; not JSON, dropped before a report is written."""


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row softmax in float64; rows that already are probability vectors pass through unchanged."""
    x = logits.astype(np.float64)
    if np.all(x >= 0) and np.allclose(x.sum(axis=-1), 1.0, atol=1e-3):
        return x
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def is_classifier_output(shape: tuple[int, ...]) -> bool:
    """`[B, C]` with more than one class (also `[B, C, 1, 1]`)."""
    dims = [d for d in shape[1:] if d != 1]
    return len(dims) == 1 and dims[0] > 1


@dataclass(frozen=True)
class SampleValues:
    """Per-sample metric values of one (reference, candidate) comparison, in sample order.

    `kl`/`agree` are None for non-classifiers; `correct`/`correct_ref` are None without labels
    and cover only the labelled batches otherwise.
    """

    cosine: np.ndarray
    err_num: np.ndarray
    err_den: np.ndarray
    kl: np.ndarray | None = None
    agree: np.ndarray | None = None
    correct: np.ndarray | None = None
    correct_ref: np.ndarray | None = None

    def values(self, metric: str) -> np.ndarray | None:
        """The per-sample values whose mean is `metric` (None where it does not apply)."""
        return {"cosine": self.cosine, "kl": self.kl, "top1_agreement": self.agree, "accuracy": self.correct,
                "fp32_accuracy": self.correct_ref}.get(metric)


def _cat(parts: list[np.ndarray]) -> np.ndarray | None:
    return np.concatenate(parts) if parts else None


@dataclass
class MetricAccumulator:
    """Streams (reference, candidate[, labels]) batches of the first model output into summary metrics."""

    classifier: bool | None = None
    _parts: dict[str, list[np.ndarray]] = field(default_factory=dict)
    samples: int = 0
    labelled: int = 0

    def _add(self, key: str, values: np.ndarray) -> None:
        self._parts.setdefault(key, []).append(values)

    def update(self, ref: np.ndarray, cand: np.ndarray, labels: np.ndarray | None = None) -> None:
        """Fold one batch in (axis 0 = samples)."""
        b = ref.shape[0]
        if self.classifier is None:
            self.classifier = is_classifier_output(ref.shape)
        r = ref.reshape(b, -1).astype(np.float64)
        c = cand.reshape(b, -1).astype(np.float64)
        num = (r * c).sum(axis=1)
        den = np.linalg.norm(r, axis=1) * np.linalg.norm(c, axis=1)
        self._add("cosine", np.where(den > 0, num / np.maximum(den, 1e-300), 1.0))
        self._add("err_num", ((r - c) ** 2).sum(axis=1))
        self._add("err_den", (r ** 2).sum(axis=1))
        if self.classifier:
            pr, pc = softmax(r), softmax(c)
            self._add("kl", (pr * (np.log(pr + 1e-12) - np.log(pc + 1e-12))).sum(axis=1))
            top_r, top_c = r.argmax(axis=1), c.argmax(axis=1)
            self._add("agree", top_r == top_c)
            if labels is not None:
                lab = np.asarray(labels).reshape(-1)
                self._add("correct", top_c == lab)
                self._add("correct_ref", top_r == lab)
                self.labelled += b
        self.samples += b

    def sample_values(self) -> SampleValues:
        """Everything accumulated so far, per sample."""
        p, empty = self._parts, np.zeros(0)
        return SampleValues(
            cosine=_cat(p.get("cosine", [])) if "cosine" in p else empty,
            err_num=_cat(p.get("err_num", [])) if "err_num" in p else empty,
            err_den=_cat(p.get("err_den", [])) if "err_den" in p else empty,
            kl=_cat(p.get("kl", [])), agree=_cat(p.get("agree", [])),
            correct=_cat(p.get("correct", [])), correct_ref=_cat(p.get("correct_ref", [])))

    def summary(self) -> dict:
        """Plain-number results (None where a metric does not apply), their intervals and sample count.

        Keys: the metrics, ``samples``, ``labelled``, ``intervals`` ({metric: [low, high]} at
        intervals.CONFIDENCE) and ``per_sample`` (a :class:`SampleValues`, not JSON: the report
        uses it for paired differences and drops it before writing).
        """
        v = self.sample_values()
        n = max(self.samples, 1)
        correct = None if v.correct is None else int(v.correct.sum())
        correct_ref = None if v.correct_ref is None else int(v.correct_ref.sum())
        agree = None if v.agree is None else int(v.agree.sum())
        err_den = float(v.err_den.sum())
        out: dict = {
            "samples": self.samples,
            "cosine": float(v.cosine.sum()) / n,
            "rel_l2_error": float(np.sqrt(v.err_num.sum() / err_den)) if err_den > 0 else 0.0,
            "top1_agreement": agree / n if self.classifier and agree is not None else None,
            "kl": float(v.kl.sum()) / n if self.classifier and v.kl is not None else None,
            "accuracy": correct / self.labelled if correct is not None else None,
            "fp32_accuracy": correct_ref / self.labelled if correct_ref is not None else None,
            "labelled": self.labelled,
        }
        ci: dict[str, list[float] | None] = {
            "cosine": _pair(intervals.bootstrap_mean(v.cosine)),
            "rel_l2_error": _pair(intervals.bootstrap_rel_l2(v.err_num, v.err_den)),
        }
        if out["kl"] is not None:
            ci["kl"] = _pair(intervals.bootstrap_mean(v.kl))
        if agree is not None and self.classifier:
            ci["top1_agreement"] = _pair(intervals.wilson(agree, self.samples))
        if correct is not None:
            ci["accuracy"] = _pair(intervals.wilson(correct, self.labelled))
            ci["fp32_accuracy"] = _pair(intervals.wilson(correct_ref, self.labelled))
        out["intervals"] = {k: val for k, val in ci.items() if val is not None}
        out[PER_SAMPLE_KEY] = v
        return out


def _pair(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else [interval[0], interval[1]]


DIFFERENCE_METRICS = ("accuracy", "top1_agreement", "cosine", "kl", "rel_l2_error")
INT8_RATIO = 0.0


def paired_differences(a: SampleValues, b: SampleValues) -> dict[str, dict]:
    """Every metric of `a` minus `b` (same samples) with its paired-bootstrap interval, as JSON dicts."""
    out = {}
    for metric in DIFFERENCE_METRICS:
        if metric == "rel_l2_error":
            if a.err_den.size and a.err_den.sum() > 0:
                out[metric] = intervals.paired_rel_l2_difference((a.err_num, a.err_den), (b.err_num, b.err_den))
            continue
        va, vb = a.values(metric), b.values(metric)
        if va is not None and vb is not None and va.size and va.size == vb.size:
            out[metric] = intervals.paired_mean_difference(metric, va, vb)
    return {k: d.to_dict() for k, d in out.items()}


def add_int8_differences(rows: list[dict]) -> None:
    """Give every row `vs_int8`: its metrics minus the same variant's at ratio 0, paired over samples.

    Rows without per-sample values, or variants without a ratio-0 row, are left as they are.
    """
    int8 = {r["variant"]: r[PER_SAMPLE_KEY] for r in rows
            if r.get("ratio") == INT8_RATIO and isinstance(r.get(PER_SAMPLE_KEY), SampleValues)}
    for r in rows:
        base, mine = int8.get(r.get("variant")), r.get(PER_SAMPLE_KEY)
        if base is not None and isinstance(mine, SampleValues) and r.get("ratio") != INT8_RATIO:
            r["vs_int8"] = paired_differences(mine, base)


def without_per_sample(obj: object) -> object:
    """A copy of a report (dicts/lists) with every per-sample entry removed, ready for JSON."""
    if isinstance(obj, dict):
        return {k: without_per_sample(v) for k, v in obj.items() if k != PER_SAMPLE_KEY}
    if isinstance(obj, list):
        return [without_per_sample(v) for v in obj]
    return obj
