"""Accuracy metrics of a quantized model against its FP32 original, accumulated batch by batch.

Classifier-like outputs (`[B, C]`, C > 1) get top-1 agreement, KL divergence of the softmax and,
when labels are given, labelled accuracy; every output also gets cosine similarity and relative
L2 error, which is what non-classifiers (detectors, feature maps) are judged by.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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


@dataclass
class MetricAccumulator:
    """Streams (reference, candidate[, labels]) batches of the first model output into summary metrics."""

    samples: int = 0
    agree: int = 0
    correct: int = 0
    correct_ref: int = 0
    labelled: int = 0
    kl_sum: float = 0.0
    cos_sum: float = 0.0
    err_num: float = 0.0
    err_den: float = 0.0
    classifier: bool | None = None
    extras: dict = field(default_factory=dict)

    def update(self, ref: np.ndarray, cand: np.ndarray, labels: np.ndarray | None = None) -> None:
        """Fold one batch in (axis 0 = samples)."""
        b = ref.shape[0]
        if self.classifier is None:
            self.classifier = is_classifier_output(ref.shape)
        r = ref.reshape(b, -1).astype(np.float64)
        c = cand.reshape(b, -1).astype(np.float64)
        num = (r * c).sum(axis=1)
        den = np.linalg.norm(r, axis=1) * np.linalg.norm(c, axis=1)
        self.cos_sum += float(np.where(den > 0, num / np.maximum(den, 1e-300), 1.0).sum())
        self.err_num += float(((r - c) ** 2).sum())
        self.err_den += float((r ** 2).sum())
        if self.classifier:
            pr, pc = softmax(r), softmax(c)
            self.kl_sum += float((pr * (np.log(pr + 1e-12) - np.log(pc + 1e-12))).sum())
            top_r, top_c = r.argmax(axis=1), c.argmax(axis=1)
            self.agree += int((top_r == top_c).sum())
            if labels is not None:
                lab = np.asarray(labels).reshape(-1)
                self.correct += int((top_c == lab).sum())
                self.correct_ref += int((top_r == lab).sum())
                self.labelled += b
        self.samples += b

    def summary(self) -> dict[str, float | int | None]:
        """Plain-number results (None where a metric does not apply)."""
        n = max(self.samples, 1)
        out: dict[str, float | int | None] = {
            "samples": self.samples,
            "cosine": self.cos_sum / n,
            "rel_l2_error": float(np.sqrt(self.err_num / self.err_den)) if self.err_den > 0 else 0.0,
            "top1_agreement": self.agree / n if self.classifier else None,
            "kl": self.kl_sum / n if self.classifier else None,
            "accuracy": self.correct / self.labelled if self.labelled else None,
            "fp32_accuracy": self.correct_ref / self.labelled if self.labelled else None,
        }
        return out
