"""Stored 4-bit weight codes: shift choice per (output channel, group) and error-compensating rounding.

docs/design.md §2 lets the offline pipeline choose the stored shifts ``p_w`` and codes ``w4`` freely; the
kernels only read them. We pick, per (n, group), the shift with the smallest Hessian-weighted error
after rounding, then re-round the group's columns GPTQ-style (one column at a time, pushing each
column's rounding error onto the not-yet-rounded columns through the inverse Hessian). Plain
rounding at the smallest non-overflowing shift stays available as the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flexiq_trt.quantization import bits


@dataclass(frozen=True)
class GroupWeights:
    """The 4-bit result for one channel group: codes [N, K_g] and shifts [N]."""

    codes: np.ndarray  # int8 [N, K_g] in [-8, 7]
    shifts: np.ndarray  # int8 [N]


def smallest_shift(w8_group: np.ndarray) -> np.ndarray:
    """Per row: the smallest shift at which the truncated int8 codes fit 4 bits (docs/design.md §2 default)."""
    return bits.group_shift(w8_group, signed=True, axis=-1)


def round_at_shift(target: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Nearest 4-bit code (half away from zero avoided: round-half-even) for target/2^p, clamped."""
    scale = np.left_shift(1, shifts.astype(np.int64)).astype(np.float64)[:, None]
    return np.clip(np.rint(target / scale), -8, 7)


def plain_rounding(w8_group: np.ndarray) -> GroupWeights:
    """Baseline: smallest shift and the contract's rounding of the 8-bit codes."""
    p = smallest_shift(w8_group)
    return GroupWeights(bits.extract4(w8_group, p[:, None]).astype(np.int8), p.astype(np.int8))


def naive_rounding(w8_group: np.ndarray) -> GroupWeights:
    """Baseline: always the top bits (p = 4)."""
    p = np.full(w8_group.shape[0], 4, dtype=np.int32)
    return GroupWeights(bits.extract4(w8_group, p[:, None]).astype(np.int8), p.astype(np.int8))


def _weighted_error(target: np.ndarray, approx: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Per row, (w - q) H (w - q)^T (a BLAS matmul, not einsum: this is the hot loop)."""
    d = target - approx
    return np.sum((d @ h) * d, axis=1)


def choose_shifts(target: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Per row, the shift in 0..4 whose plainly rounded codes minimise (w - q) H (w - q)^T."""
    errs = np.stack([
        _weighted_error(target, round_at_shift(target, np.full(target.shape[0], p)) * (1 << p), h)
        for p in range(5)
    ])
    return np.argmin(errs, axis=0).astype(np.int32)


def gptq_group(target: np.ndarray, h: np.ndarray, damp: float = 0.01) -> GroupWeights:
    """Error-compensating 4-bit rounding of one group's columns.

    Args:
        target: float64 [N, K_g], the float weights in units of their int8 scale (w / s_w).
        h: float64 [K_g, K_g], the group's block of E[x x^T] over calibration rows.
        damp: relative diagonal damping (fraction of the mean diagonal) for a stable inverse.
    """
    n, k = target.shape
    shifts = choose_shifts(target, h)
    hd = h + np.eye(k) * (damp * float(np.mean(np.diag(h))) + 1e-12)
    dead = np.diag(h) <= 0
    hd[dead, dead] = 1.0
    try:
        u = np.linalg.cholesky(np.linalg.inv(hd)).T  # upper factor of H^-1
    except np.linalg.LinAlgError:
        return _finalize(target, round_at_shift(target, shifts), shifts)
    w = target.copy()
    q = np.empty_like(w)
    scale = np.left_shift(1, shifts.astype(np.int64)).astype(np.float64)
    for i in range(k):
        q[:, i] = np.clip(np.rint(w[:, i] / scale), -8, 7)
        err = (w[:, i] - q[:, i] * scale) / u[i, i]
        w[:, i + 1:] -= np.outer(err, u[i, i + 1:])
    return _finalize(target, q, shifts)


def _finalize(target: np.ndarray, q: np.ndarray, shifts: np.ndarray) -> GroupWeights:
    return GroupWeights(q.astype(np.int8), shifts.astype(np.int8))


def better_of(target: np.ndarray, h: np.ndarray, *candidates: GroupWeights) -> GroupWeights:
    """Per row, keep whichever candidate has the smaller Hessian-weighted error (never worse than a baseline)."""
    errs = np.stack([
        _weighted_error(target, c.codes.astype(np.float64) * (1 << c.shifts.astype(np.int64))[:, None], h)
        for c in candidates
    ])
    best = np.argmin(errs, axis=0)
    codes = np.stack([c.codes for c in candidates])[best, np.arange(target.shape[0])]
    shifts = np.stack([c.shifts for c in candidates])[best, np.arange(target.shape[0])]
    return GroupWeights(codes.astype(np.int8), shifts.astype(np.int8))
