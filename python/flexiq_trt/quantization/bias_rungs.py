"""Ratio-aware bias correction: the mean output shift each channel group causes when it goes 4-bit.

A layer's accumulator is a sum over its channel groups, so with the first k groups of π in 4-bit
its expected output is E[y_k] = Σ_{g<k} E[y4_g] + Σ_{g>=k} E[y8_g] (docs/design.md §2.8). Going
from the INT8 model (k = 0) to rung k therefore moves the mean of output channel n by
Σ_{g<k} shift[g, n], with shift[g, n] = out_scale[n] · (E[x4_g] · w4eff_g[n] − E[x8_g] · w8_g[n]),
where E[x·] is the mean im2col column of the layer's codes on the calibration data (float input,
`group_stats.CodeSums`). The table row k subtracts that: rung 0 keeps the layer's own bias, so the
INT8 model is never changed. Measured in docs/accuracy.md ("Ratio-aware bias correction").
"""

from __future__ import annotations

import numpy as np

from flexiq_trt.plugin_spec import ShiftMode
from flexiq_trt.quantization.group_stats import CodeSums


def group_bias_shift(sums: CodeSums, w8_blocks: np.ndarray, w4eff_blocks: np.ndarray, out_scale: np.ndarray,
                     mode: ShiftMode, static_shift: np.ndarray) -> np.ndarray:
    """float64 [G_count, N]: per group (base order), the mean output change when that group is 4-bit.

    `w8_blocks`, `w4eff_blocks`: [G_count, N, taps*G] weight codes (the 4-bit ones effective, w4 * step_w)
    in (tap, channel) column order; `out_scale` float32 [N]; the static shifts matter in STATIC mode only.
    """
    m8, m4_dyn, m4_static = sums.means()
    gc, n, cols = w8_blocks.shape
    g = cols // m8.shape[0]

    def blocks(mean: np.ndarray) -> np.ndarray:  # [taps, C_pad] -> [G_count, taps*G]
        return mean.reshape(mean.shape[0], gc, g).transpose(1, 0, 2).reshape(gc, cols)

    x8 = blocks(m8)
    if mode == ShiftMode.DYNAMIC:
        x4 = blocks(m4_dyn)
    else:
        x4 = np.stack([blocks(m4_static[int(p)])[gi] for gi, p in enumerate(static_shift)])
    e8 = np.einsum("gnc,gc->gn", w8_blocks.astype(np.float64), x8)
    e4 = np.einsum("gnc,gc->gn", w4eff_blocks.astype(np.float64), x4)
    return (e4 - e8) * out_scale.astype(np.float64)[None, :]


def bias_table(bias: np.ndarray, shift: np.ndarray | None, group_count: int) -> np.ndarray:
    """float32 [G_count + 1, N]: row k is the bias with the first k groups (π order) in 4-bit.

    Row 0 is `bias` itself; row k subtracts the cumulated shifts of groups 0..k-1, summed in float64
    and rounded to float32 once. Without a shift every row is `bias`.
    """
    b = np.asarray(bias, dtype=np.float32)
    if shift is None:
        return np.tile(b, (group_count + 1, 1))
    cum = np.concatenate([np.zeros((1, b.shape[0])), np.cumsum(shift, axis=0)])
    table = (b.astype(np.float64)[None, :] - cum).astype(np.float32)
    table[0] = b
    return table
