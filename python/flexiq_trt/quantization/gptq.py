"""Stored 4-bit weight codes: one step per channel group and error-compensating rounding.

docs/design.md §2.6 lets the offline pipeline choose each group's weight step ``step_w`` (one integer in
1..16 shared by every output channel of the group) and the codes ``w4`` freely; the kernels only read
them. We pick, per group, the step with the smallest Hessian-weighted error of plainly rounded codes
summed over the rows, then re-round the group's columns GPTQ-style at that step (one column at a time,
pushing each column's rounding error onto the not-yet-rounded columns through the inverse Hessian),
and keep, per row, whichever of that and plain rounding at the same step scores better. Plain rounding
at the smallest step that fits every row stays available as the baseline.

GPTQ's diagonal damping trades fitting the calibration Hessian against trusting it; the best value
differs between groups and models (docs/accuracy.md, "Cross-validated GPTQ damping"), so
`choose_damp` picks it per group from candidates: codes fitted on one half of the calibration
samples are scored on the other half, both ways round.

A channel that (almost) never fires on the calibration data has (almost) no Hessian weight, so every
step and code fits it, a tie picks step 1, and GPTQ parks the other columns' errors on it; on data where
it does fire, those codes are far from its weights. `floor_silent_channels` therefore gives every
channel at least a small share of the layer's median Hessian diagonal before anything is fitted
(docs/accuracy.md, "Channels silent in calibration").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flexiq_trt.quantization import bits

STEPS = np.arange(1, bits.MAX_STEP + 1)  # every weight step the contract allows


@dataclass(frozen=True)
class GroupWeights:
    """The 4-bit result for one channel group: codes [N, K_g] and the group's one step."""

    codes: np.ndarray  # int8 [N, K_g] in [-8, 7]
    step: int  # 1..16, shared by every row

    def effective(self) -> np.ndarray:
        """The codes times the step, float64 [N, K_g] (what the kernels multiply by)."""
        return self.codes.astype(np.float64) * self.step


def floor_silent_channels(h_blocks: np.ndarray, fraction: float) -> np.ndarray:
    """A layer's Hessian blocks [G_count, K_g, K_g], each diagonal entry raised to `fraction` of the median.

    The result is a new array; entries above the floor (active channels) are unchanged. The median
    positive entry, not the mean: a few large channels must not set the bar for the many small ones.
    A layer whose every diagonal entry is zero gets the floor 1 (any positive value gives plain
    rounding there).
    """
    if fraction <= 0 or h_blocks.size == 0:
        return h_blocks
    diag = np.diagonal(h_blocks, axis1=1, axis2=2)
    positive = diag[diag > 0]
    floor = fraction * float(np.median(positive)) if positive.size else 1.0
    out = h_blocks.copy()
    k = np.arange(h_blocks.shape[-1])
    out[:, k, k] += np.maximum(floor - diag, 0.0)
    return out


def smallest_step(w8_group: np.ndarray) -> int:
    """The smallest step at which every row's truncated int8 codes fit 4 bits (the plain rule)."""
    return int(bits.group_step(w8_group.reshape(-1), signed=True))


def round_at_step(target: np.ndarray, step: int) -> np.ndarray:
    """Nearest 4-bit code (round-half-even) for target / step, clamped to [-8, 7]."""
    return np.clip(np.rint(target / float(step)), -8, 7)


def at_step(w8_group: np.ndarray, step: int) -> GroupWeights:
    """The contract's rounding of the int8 codes at `step` (docs/design.md §2.5)."""
    return GroupWeights(bits.extract4_step(w8_group, step).astype(np.int8), int(step))


def plain_rounding(w8_group: np.ndarray) -> GroupWeights:
    """Baseline: the smallest step that fits every row, contract rounding of the 8-bit codes."""
    return at_step(w8_group, smallest_step(w8_group))


def naive_rounding(w8_group: np.ndarray) -> GroupWeights:
    """Baseline: always the top bits (step 16)."""
    return at_step(w8_group, bits.MAX_STEP)


def _weighted_error(target: np.ndarray, approx: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Per row, (w - q) H (w - q)^T (a BLAS matmul, not einsum: this is the hot loop)."""
    d = target - approx
    return np.sum((d @ h) * d, axis=1)


def choose_step(target: np.ndarray, h: np.ndarray) -> int:
    """The step in 1..16 whose plainly rounded codes minimise sum over rows of (w - q) H (w - q)^T.

    The rows' errors are summed in int8 units (each row relative to its own scale), so a row with
    small weights in this group weighs what its codes can lose, not what its scale makes it.
    """
    errs = [float(_weighted_error(target, round_at_step(target, int(s)) * float(s), h).sum()) for s in STEPS]
    return int(STEPS[int(np.argmin(errs))])


def gptq_group(target: np.ndarray, h: np.ndarray, damp: float = 0.01, step: int | None = None) -> GroupWeights:
    """Error-compensating 4-bit rounding of one group's columns at one step.

    Args:
        target: float64 [N, K_g], the float weights in units of their int8 scale (w / s_w).
        h: float64 [K_g, K_g], the group's block of E[x x^T] over calibration rows.
        damp: relative diagonal damping (fraction of the mean diagonal) for a stable inverse.
        step: the group's step; None chooses it (`choose_step`).
    """
    k = target.shape[1]
    step = choose_step(target, h) if step is None else int(step)
    hd = h + np.eye(k) * (damp * float(np.mean(np.diag(h))) + 1e-12)
    dead = np.diag(h) <= 0
    hd[dead, dead] = 1.0
    try:
        u = np.linalg.cholesky(np.linalg.inv(hd)).T  # upper factor of H^-1
    except np.linalg.LinAlgError:
        return GroupWeights(round_at_step(target, step).astype(np.int8), step)
    w = target.copy()
    q = np.empty_like(w)
    for i in range(k):
        q[:, i] = np.clip(np.rint(w[:, i] / step), -8, 7)
        err = (w[:, i] - q[:, i] * step) / u[i, i]
        w[:, i + 1:] -= np.outer(err, u[i, i + 1:])
    return GroupWeights(q.astype(np.int8), step)


def better_of(target: np.ndarray, h: np.ndarray, *candidates: GroupWeights) -> GroupWeights:
    """Per row, keep whichever candidate's codes have the smaller Hessian-weighted error.

    Every candidate must have the same step (the group has one): only codes are mixed across rows.
    """
    steps = {c.step for c in candidates}
    if len(steps) != 1:
        raise ValueError(f"better_of needs candidates at one step, got steps {sorted(steps)}")
    errs = np.stack([_weighted_error(target, c.effective(), h) for c in candidates])
    best = np.argmin(errs, axis=0)
    codes = np.stack([c.codes for c in candidates])[best, np.arange(target.shape[0])]
    return GroupWeights(codes.astype(np.int8), candidates[0].step)


def gptq_or_plain(target: np.ndarray, w8_group: np.ndarray, h: np.ndarray, damp: float = 0.01,
                  step: int | None = None) -> GroupWeights:
    """The default codes of one group: GPTQ at the chosen step, per row the better of it and plain rounding.

    Plain rounding is the contract's rounding of the int8 codes at the same step, so on calibration
    data the result is never worse than plain rounding at the group's step. `step`: the group's step
    if the caller has chosen it already for this `h` (`choose_step(target, h)`), else chosen here.
    """
    rounded = gptq_group(target, h, damp, step)
    return better_of(target, h, rounded, at_step(w8_group, rounded.step))


def choose_damp(target: np.ndarray, w8_group: np.ndarray, h_even: np.ndarray, h_odd: np.ndarray,
                candidates: tuple[float, ...]) -> float:
    """The damping whose codes generalise best from one half of the calibration samples to the other.

    For each candidate, `gptq_or_plain` fits the group on the even samples' Hessian and is scored by
    the Hessian-weighted error on the odd samples', and the other way round; the candidate with the
    smallest summed held-out error wins (ties: the earlier candidate). The final codes are then fitted
    on the whole Hessian with the chosen damping (the caller does that).
    """
    if len(candidates) == 1:
        return float(candidates[0])
    # the step depends on the fitted Hessian, not on the damping: chosen once per fold (it was a third of the time)
    folds = [(fit, held_out, choose_step(target, fit)) for fit, held_out in ((h_even, h_odd), (h_odd, h_even))]
    errs = []
    for damp in candidates:
        err = 0.0
        for fit, held_out, step in folds:
            q = gptq_or_plain(target, w8_group, fit, damp, step)
            err += float(_weighted_error(target, q.effective(), held_out).sum())
        errs.append(err)
    return float(candidates[int(np.argmin(errs))])
