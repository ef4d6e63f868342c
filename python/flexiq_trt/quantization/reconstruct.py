"""Activation-aware reconstruction of the stored 4-bit weight codes (closed form, NumPy).

A group's 4-bit codes are used exactly when that group is 4-bit, and then its input is 4-bit too
(W4A4, docs/design.md §2). A layer's output is a sum of per-group contributions, so the part of the
output error that a group's codes control is

    f(q) = E || w x - q x~ ||^2          (one output row; w in int8-scale units, x the float input,
                                           x~ the input after 8-bit quantization and 4-bit extraction)

and it is the same at every ratio at which the group is 4-bit: minimising it per group covers the
whole ladder without knowing the order (cross terms between two 4-bit groups are left out, as in
block-diagonal GPTQ/AdaRound). f is a quadratic with minimiser ``q* = w C H~^-1`` (``C = E[x x~^T]``,
``H~ = E[x~ x~^T]``), and ``f(q) = f(q*) + (q - q*) H~ (q - q*)^T``. So the reconstruction is:

1. the continuous target ``q*`` — it absorbs the systematic part of the activation's 4-bit error;
2. GPTQ-style rounding of ``q*`` on ``H~`` at the group's weight step (`gptq.gptq_group`; the step is the
   baselines', one per group, docs/design.md §2.6);
3. AdaRound-style integer refinement: coordinate descent over the codes (each code may move by
   ±1 if that lowers f), a few sweeps;
4. per row, the candidate (this one, plain GPTQ on ``H``, plain rounding at that step) with the smallest f, so
   on calibration data it is never worse than the previous default under the W4A4 objective.

Only the stored codes ``w4`` change; the group's step, INT8 weights and everything the runtime
computes stay as the contract says.
"""

from __future__ import annotations

import numpy as np

from flexiq_trt.quantization import gptq
from flexiq_trt.quantization.gptq import GroupWeights


def _damped(h: np.ndarray, damp: float) -> np.ndarray:
    """H + damp * mean(diag) * I, with dead columns (zero diagonal) made invertible."""
    k = h.shape[0]
    out = h + np.eye(k) * (damp * float(np.mean(np.diag(h))) + 1e-12)
    dead = np.diag(h) <= 0
    out[dead, dead] = 1.0
    return out


def ladder_target(target: np.ndarray, cross: np.ndarray, hess_q: np.ndarray, damp: float = 0.01) -> np.ndarray:
    """The continuous minimiser ``q* = w C H~^-1`` of E||w x - q x~||^2, rows of `target` at once.

    Args:
        target: float64 [N, K_g], the float weights in int8-scale units.
        cross: float64 [K_g, K_g], E[x x~^T] of the group's im2col columns.
        hess_q: float64 [K_g, K_g], E[x~ x~^T].
        damp: relative diagonal damping of H~ (keeps q* bounded where x~ is nearly degenerate).
    """
    rhs = target @ cross  # [N, K]
    return np.linalg.solve(_damped(hess_q, damp), rhs.T).T


def excess_error(q_star: np.ndarray, approx: np.ndarray, hess_q: np.ndarray) -> np.ndarray:
    """Per row, f(q) - f(q*) = (q - q*) H~ (q - q*)^T for effective codes `approx` [N, K]."""
    d = approx - q_star
    return np.sum((d @ hess_q) * d, axis=1)


def refine(w: GroupWeights, q_star: np.ndarray, hess_q: np.ndarray, sweeps: int = 2) -> GroupWeights:
    """Integer coordinate descent on (q - q*) H~ (q - q*)^T: move a code by ±1 when it lowers the error.

    All rows at once; the gradient ``G = (q - q*) H~`` is kept up to date by rank-one updates, so a
    sweep costs about one GEMM of the group. The step stays fixed; codes stay in [-8, 7].
    """
    codes = w.codes.astype(np.int64).copy()
    scale = float(w.step)
    grad = (codes * scale - q_star) @ hess_q  # [N, K]
    diag = np.diag(hess_q)
    rows = np.arange(codes.shape[0])
    for _ in range(max(sweeps, 0)):
        moved = 0
        for i in range(codes.shape[1]):
            if diag[i] <= 0:
                continue
            # change in error for delta = -1, +1: 2*delta*s*g_i + s^2*H_ii
            base = scale * scale * diag[i]
            gain_up, gain_dn = 2 * scale * grad[:, i] + base, -2 * scale * grad[:, i] + base
            up = (gain_up < gain_dn) & (gain_up < -1e-12) & (codes[:, i] < 7)
            dn = ~up & (gain_dn < -1e-12) & (codes[:, i] > -8)
            delta = up.astype(np.int64) - dn.astype(np.int64)
            if not delta.any():
                continue
            moved += int(np.count_nonzero(delta))
            codes[rows, i] += delta
            grad += np.outer(delta * scale, hess_q[i])
        if not moved:
            break
    return GroupWeights(codes.astype(np.int8), w.step)


def reconstruct_group(target: np.ndarray, cross: np.ndarray, hess_q: np.ndarray, *baselines: GroupWeights,
                      damp: float = 0.01, sweeps: int = 2) -> GroupWeights:
    """One group's 4-bit codes minimising E||w x - q x~||^2 at the baselines' step (see the module docstring).

    `baselines` (e.g. GPTQ on H and plain rounding, all at the group's one step) are kept per row
    wherever they score better.
    """
    q_star = ladder_target(target, cross, hess_q, damp)
    rounded = gptq.gptq_group(q_star, hess_q, damp, step=baselines[0].step)
    candidates = [refine(rounded, q_star, hess_q, sweeps)]
    candidates += [refine(b, q_star, hess_q, sweeps) for b in baselines[:1]] + list(baselines)
    errs = np.stack([excess_error(q_star, c.effective(), hess_q) for c in candidates])
    best = np.argmin(errs, axis=0)
    codes = np.stack([c.codes for c in candidates])[best, np.arange(target.shape[0])]
    return GroupWeights(codes.astype(np.int8), rounded.step)
