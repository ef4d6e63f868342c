"""Confidence intervals for the report's figures, so that no ratio is ranked on noise.

* proportions (top-1 agreement, labelled accuracy): Wilson score interval, which stays inside
  [0, 1] and is honest at small n and at 0% / 100% (the normal approximation is not);
* means and ratio-of-sums (cosine, KL, relative L2 error): percentile bootstrap over samples;
* differences a user compares (a ratio against the same variant at ratio 0, i.e. INT8):
  paired bootstrap on the per-sample values, so the noise the two models share cancels.

All bootstraps draw the same seeded resample indices (``BOOTSTRAP_SEED``), so a report is
reproducible. The cost is O(resamples x samples) per figure (about 0.1 s of CPU per metric per
10k samples, small next to running the models on them); resamples are drawn in chunks of at most
``_CHUNK_ELEMENTS`` indices, so memory stays bounded for any sample count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

MIN_RANKING_SAMPLES = 100
"""Below this many evaluation samples the report and the CLI warn that the figures cannot rank ratios."""
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
PROPORTION_METRICS = ("top1_agreement", "accuracy", "fp32_accuracy")
MEAN_METRICS = ("cosine", "kl")
LOWER_IS_BETTER = frozenset({"kl", "rel_l2_error"})
METHODS = {
    "confidence": CONFIDENCE,
    "proportions": "Wilson score interval (top1_agreement, accuracy, fp32_accuracy)",
    "means": f"percentile bootstrap over samples, {BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED} "
             "(cosine, kl, rel_l2_error)",
    "differences": f"paired percentile bootstrap over samples, {BOOTSTRAP_RESAMPLES} resamples, seed "
                   f"{BOOTSTRAP_SEED}: each ratio against the same variant at ratio 0 (INT8)",
}
_CHUNK_ELEMENTS = 4_000_000


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Wilson score interval of `successes` out of `n` (None when n == 0)."""
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"wilson: {successes} successes out of {n}")
    z = _z(confidence)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def _resampled(columns: np.ndarray, stat: Callable[[np.ndarray], np.ndarray], resamples: int,
               seed: int) -> np.ndarray:
    """`stat` of `resamples` bootstrap resamples of the sample axis (last axis of `columns`)."""
    n = columns.shape[-1]
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK_ELEMENTS // max(n, 1))
    out = []
    for start in range(0, resamples, per_chunk):
        idx = rng.integers(0, n, size=(min(per_chunk, resamples - start), n))
        out.append(stat(columns[..., idx]))
    return np.concatenate(out)


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def bootstrap_mean(values: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                   confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Percentile-bootstrap interval of the mean of per-sample `values` (None when empty)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        return None
    return _percentiles(_resampled(v, lambda x: x.mean(axis=-1), resamples, seed), confidence)


def _rel_l2(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.sqrt(num.sum(axis=-1) / np.maximum(den.sum(axis=-1), 1e-300))


def bootstrap_rel_l2(num: np.ndarray, den: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES,
                     seed: int = BOOTSTRAP_SEED, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Bootstrap interval of sqrt(sum num / sum den) (relative L2 error) over samples."""
    cols = np.stack([np.asarray(num, np.float64).reshape(-1), np.asarray(den, np.float64).reshape(-1)])
    if cols.shape[1] == 0 or cols[1].sum() <= 0:
        return None
    return _percentiles(_resampled(cols, lambda x: _rel_l2(x[0], x[1]), resamples, seed), confidence)


@dataclass(frozen=True)
class PairedDifference:
    """`a - b` of one metric over the same samples, with its paired-bootstrap interval."""

    metric: str
    diff: float
    low: float
    high: float
    n: int

    @property
    def significant(self) -> bool:
        """The interval excludes 0: the two can be told apart on this data."""
        return self.low > 0 or self.high < 0

    @property
    def better(self) -> bool | None:
        """True/False when `a` is significantly better/worse than `b`; None when the data cannot tell."""
        if not self.significant:
            return None
        return (self.diff < 0) if self.metric in LOWER_IS_BETTER else (self.diff > 0)

    def to_dict(self) -> dict:
        """JSON form: diff, interval, n and the verdict."""
        return {"diff": self.diff, "low": self.low, "high": self.high, "n": self.n,
                "significant": self.significant, "better": self.better}


def paired_mean_difference(metric: str, a: np.ndarray, b: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES,
                           seed: int = BOOTSTRAP_SEED, confidence: float = CONFIDENCE) -> PairedDifference:
    """mean(a) - mean(b) for per-sample values measured on the same samples (paired bootstrap)."""
    a, b = np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired difference of {metric}: {a.size} vs {b.size} samples (must be equal, > 0)")
    d = a - b
    lo, hi = _percentiles(_resampled(d, lambda x: x.mean(axis=-1), resamples, seed), confidence)
    return PairedDifference(metric, float(d.mean()), lo, hi, int(d.size))


def paired_rel_l2_difference(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray],
                             resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                             confidence: float = CONFIDENCE) -> PairedDifference:
    """rel_l2(a) - rel_l2(b) where each is (per-sample squared error, per-sample reference energy)."""
    cols = np.stack([np.asarray(x, np.float64).reshape(-1) for x in (*a, *b)])

    def stat(x: np.ndarray) -> np.ndarray:
        return _rel_l2(x[0], x[1]) - _rel_l2(x[2], x[3])

    diff = float(stat(cols[:, None, :])[0])
    lo, hi = _percentiles(_resampled(cols, stat, resamples, seed), confidence)
    return PairedDifference("rel_l2_error", diff, lo, hi, int(cols.shape[1]))


def small_sample_warning(samples: int, heldout_from_calibration: bool) -> str | None:
    """The warning for an evaluation set too small to rank ratios (None when it is large enough)."""
    if samples >= MIN_RANKING_SAMPLES:
        return None
    where = ("the held-out tail of the calibration set" if heldout_from_calibration
             else "the --eval data")
    return (f"only {samples} evaluation samples ({where}; fewer than {MIN_RANKING_SAMPLES}): the figures below "
            f"cannot rank the ratios — their intervals overlap. Pass --eval with at least {MIN_RANKING_SAMPLES} "
            "held-out samples (an .npz keyed by input name, with 'labels' for accuracy).")
