"""Activation thresholds and int8 scales from calibration statistics.

The quantizer is docs/design.md §2's ``q = clamp(round(x / s), -L, L)`` with ``s = t / L``: ``L = 127``
for signed codes, ``L = 255`` (codes 0..255) for provably non-negative inputs. Methods:

* ``max``: ``t = max |x|`` (no clipping; coarse steps when there are outliers);
* ``percentile``: ``t`` = the p-th percentile of ``|x|``;
* ``mse``: ``t`` minimising the expected squared quantization error over the |x| histogram,
  counting both the rounding error of values inside ``[0, t]`` and the clipping error of values
  beyond. Each bin's mass is taken as uniform over the bin and the rounding error is integrated
  exactly over it (not the ``s^2/12`` approximation, which is wrong when bins are as wide as a
  step), so the choice is right for coarse and fine scales alike.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from flexiq_trt.calibration.histogram import HistogramSnapshot
from flexiq_trt.errors import ConfigError

SIGNED_LEVELS = 127
UNSIGNED_LEVELS = 255
_CHUNK = 64  # candidate thresholds evaluated at once (bounds the temporary matrix)
_STRIDE = 8  # coarse search step, in bin edges


def levels_for(signed: bool) -> int:
    """Largest code magnitude: 127 for signed int8, 255 for unsigned."""
    return SIGNED_LEVELS if signed else UNSIGNED_LEVELS


def scale_from_threshold(threshold: float, signed: bool = True) -> float:
    """``s = t / 127`` (signed) or ``t / 255`` (unsigned); a zero threshold maps to scale 1 / L."""
    levels = levels_for(signed)
    return float(np.float32(threshold / levels)) if threshold > 0 else 1.0 / levels


def _sawtooth_integral(u: np.ndarray) -> np.ndarray:
    """``P(u) = integral from -1/2 to u of (v - round(v))^2 dv`` (closed form, vectorised)."""
    k = np.floor(u + 0.5)
    r = u - k
    return k / 12.0 + (r**3 + 0.125) / 3.0


def _rounding_error(lo: np.ndarray, hi: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Mean of ``(x - step * round(x / step))^2`` for x uniform on ``[lo, hi)`` (broadcasting)."""
    width = hi - lo
    integral = step**3 * (_sawtooth_integral(hi / step) - _sawtooth_integral(lo / step))
    return integral / width


def quantization_mse(hist: HistogramSnapshot, threshold: float, levels: int = SIGNED_LEVELS) -> float:
    """Expected squared error of the clipped uniform quantizer with threshold ``t`` on ``hist``."""
    return float(_mse_curve(hist, np.array([threshold], np.float64), levels)[0])


def _mse_curve(hist: HistogramSnapshot, thresholds: np.ndarray, levels: int) -> np.ndarray:
    """Expected MSE for each candidate threshold (thresholds need not be bin edges)."""
    if hist.total == 0 or hist.upper == 0.0:
        return np.zeros_like(thresholds)
    used = np.nonzero(hist.counts)[0]
    mass = hist.counts[used].astype(np.float64)
    lo = used * hist.bin_width
    hi = lo + hist.bin_width
    out = np.empty_like(thresholds)
    for start in range(0, thresholds.shape[0], _CHUNK):
        t = thresholds[start : start + _CHUNK, None]
        step = t / levels
        # Split each bin at t: [lo, min(hi, t)) is rounded, [max(lo, t), hi) is clipped.
        cut = np.clip(t, lo, hi)
        inner = cut - lo
        outer = hi - cut
        safe_inner = np.where(inner > 0, inner, 1.0)
        rounding = np.where(inner > 0, _rounding_error(lo, lo + safe_inner, step), 0.0) * inner
        clipping = ((hi - t) ** 3 - (cut - t) ** 3) / 3.0  # integral of (x - t)^2 over [cut, hi)
        per_bin = (rounding + np.where(outer > 0, clipping, 0.0)) / hist.bin_width
        out[start : start + _CHUNK] = (per_bin * mass).sum(axis=1) / hist.total
    return out


def mse_threshold(hist: HistogramSnapshot, levels: int = SIGNED_LEVELS, absmax: float | None = None) -> float:
    """The threshold minimising :func:`quantization_mse` over the bin edges up to ``absmax``.

    Coarse-to-fine: every ``_STRIDE``-th edge first, then every edge around the best coarse one,
    which costs about a sixth of the exhaustive search and finds the same edge on smooth curves.
    """
    if hist.upper == 0.0:
        return 0.0
    candidates = hist.edges()[1:]
    if absmax is not None and 0.0 < absmax <= hist.upper:
        candidates = np.append(candidates[candidates < absmax], absmax)  # never search past the real maximum
    coarse = np.unique(np.append(np.arange(0, candidates.shape[0], _STRIDE), candidates.shape[0] - 1))
    best = int(coarse[int(np.argmin(_mse_curve(hist, candidates[coarse], levels)))])
    fine = np.arange(max(0, best - _STRIDE), min(candidates.shape[0], best + _STRIDE + 1))
    return float(candidates[int(fine[int(np.argmin(_mse_curve(hist, candidates[fine], levels)))])])


def _max(hist: HistogramSnapshot, absmax: float, levels: int, percentile: float) -> float:
    return absmax


def _percentile(hist: HistogramSnapshot, absmax: float, levels: int, percentile: float) -> float:
    return min(hist.percentile(percentile), absmax)


def _mse(hist: HistogramSnapshot, absmax: float, levels: int, percentile: float) -> float:
    return mse_threshold(hist, levels, absmax)


ThresholdMethod = Callable[[HistogramSnapshot, float, int, float], float]
#: method name -> f(histogram, absmax, levels, percentile) -> threshold. CalibConfig's choices mirror the keys.
THRESHOLD_METHODS: dict[str, ThresholdMethod] = {"mse": _mse, "percentile": _percentile, "max": _max}


def choose_threshold(
    method: str, hist: HistogramSnapshot, absmax: float, signed: bool = True, percentile: float = 99.99
) -> float:
    """Clipping threshold for one tensor by the named method."""
    try:
        func = THRESHOLD_METHODS[method]
    except KeyError:
        raise ConfigError(
            f"unknown calibration method '{method}'; choose from {sorted(THRESHOLD_METHODS)}"
        ) from None
    return float(func(hist, absmax, levels_for(signed), percentile))
