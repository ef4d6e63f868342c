"""Second calibration pass: per-group statistics that need the channel groups to be known.

For each eligible layer it streams, in bounded memory:
* the block-diagonal input Hessian ``H_g = sum x_g x_g^T`` over (a bounded sample of) im2col rows,
  one ``[R*S*G, R*S*G]`` block per group — used by GPTQ-style rounding and the error score;
* the mean squared 4-bit extraction error of the activations per channel (dynamic steps);
* per group and candidate static shift p in 0..4, the summed squared error (to pick static shifts);
* optionally (`with_four_bit_moments`), the cross moment ``sum x_g x~_g^T`` and ``sum x~_g x~_g^T`` where ``x~`` is
  the input as the 4-bit path sees it (int8 codes, dynamic per-row group step, effective 4-bit code,
  times the activation scale) — what activation-aware reconstruction (`reconstruct.py`) solves with;
* optionally (`with_code_sums`), the sums over *all* im2col rows of the 8-bit codes, of the dynamic
  4-bit effective codes and of the static ones at each p in 0..4, per (tap, channel): the mean
  output shift a group causes when it goes 4-bit is linear in these (`bias_rungs.py`);
* optionally (`with_split_hessian`), the Hessian of the rows of even-numbered calibration samples
  alone: with the total it gives two disjoint halves, so a choice made on one half can be scored on
  the other (the cross-validated GPTQ damping, `gptq.choose_damp`). Each half is one matmul on its
  rows, so the split costs no more than the total alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flexiq_trt.quantization import bits
from flexiq_trt.quantization.layer import ConvGeometry


@dataclass
class CodeSums:
    """Sums over every im2col row of a layer's activation codes, per (tap, channel) in base order.

    With `rows` they give the mean im2col column, so E[acc] of any group and weight row is a dot
    product: the mean output shift of a group going 4-bit needs no second pass (`bias_rungs.py`).
    """

    q8: np.ndarray  # float64 [taps, C_pad], 8-bit codes
    q4: np.ndarray  # float64 [taps, C_pad], effective 4-bit codes with the dynamic per-row step
    q4_static: np.ndarray  # float64 [5, taps, C_pad], effective 4-bit codes at the static shift p
    rows: int = 0  # im2col rows (output pixels / tokens) summed

    def means(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(E q8, E q4 dynamic, E q4 static per p), the mean im2col column in code units."""
        n = max(self.rows, 1)
        return self.q8 / n, self.q4 / n, self.q4_static / n


@dataclass
class GroupStats:
    """Accumulated statistics of one layer (all in base channel order)."""

    hessian: np.ndarray  # float64 [G_count, RSG, RSG], summed over rows
    rows: int
    act_sq_err: np.ndarray  # float64 [C_pad], summed squared (eff4 - q) in code units
    act_count: int  # number of activation rows (pixels / tokens) seen
    static_sq_err: np.ndarray  # float64 [G_count, 5]
    code_max: np.ndarray  # int [C_pad], max |q| per channel
    cross: np.ndarray | None = None  # float64 [G_count, RSG, RSG], sum x x~^T (four-bit moments only)
    hessian_q: np.ndarray | None = None  # float64 [G_count, RSG, RSG], sum x~ x~^T (four-bit moments only)
    code_sums: CodeSums | None = None  # column sums of the codes (bias correction only)
    hessian_even: np.ndarray | None = None  # float64 [G_count, RSG, RSG], rows of even samples (split only)
    rows_even: int = 0  # rows behind `hessian_even`

    def mean_hessian(self) -> np.ndarray:
        """E[x x^T] per group block."""
        return self.hessian / max(self.rows, 1)

    def mean_fold_hessians(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(E[x x^T] over even samples' rows, over odd samples' rows); None unless split or a half is empty."""
        if self.hessian_even is None or self.rows_even == 0 or self.rows_even == self.rows:
            return None
        odd = (self.hessian - self.hessian_even) / (self.rows - self.rows_even)
        return self.hessian_even / self.rows_even, odd

    def mean_cross(self) -> np.ndarray | None:
        """E[x x~^T] per group block (None unless four-bit moments were gathered)."""
        return None if self.cross is None else self.cross / max(self.rows, 1)

    def mean_hessian_q(self) -> np.ndarray | None:
        """E[x~ x~^T] per group block (None unless four-bit moments were gathered)."""
        return None if self.hessian_q is None else self.hessian_q / max(self.rows, 1)

    def act_mse(self) -> np.ndarray:
        """Mean squared 4-bit activation error per channel, in int8 code units."""
        return self.act_sq_err / max(self.act_count, 1)


class GroupStatsObserver:
    """Streams one layer's input activations into `GroupStats` (Observer protocol: update/result)."""

    def __init__(self, base_order: np.ndarray, in_channels: int, group_size: int, act_scale: float,
                 signed: bool, geometry: ConvGeometry | None, max_rows_per_batch: int = 2048, seed: int = 0):
        self.order, self.c_in, self.g = base_order, in_channels, group_size
        self.act_scale, self.signed, self.geo = act_scale, signed, geometry
        self.max_rows = max_rows_per_batch
        self.rng = np.random.default_rng(seed)
        self.samples_seen = 0  # calibration samples folded so far: numbers them across batches
        c_pad = base_order.shape[0]
        taps = self._taps()
        gc = c_pad // group_size
        self.stats = GroupStats(np.zeros((gc, taps * group_size, taps * group_size)), 0,
                                np.zeros(c_pad), 0, np.zeros((gc, 5)), np.zeros(c_pad, dtype=np.int64))

    def with_code_sums(self, enabled: bool = True) -> GroupStatsObserver:
        """Also sum the 8-bit and effective 4-bit codes over every im2col row (bias correction); returns self."""
        if enabled:
            taps, cp = self._taps(), self.order.shape[0]
            self.stats.code_sums = CodeSums(np.zeros((taps, cp)), np.zeros((taps, cp)), np.zeros((5, taps, cp)))
        return self

    def _taps(self) -> int:
        return 1 if self.geo is None else self.geo.kernel_shape[0] * self.geo.kernel_shape[1]

    def with_four_bit_moments(self, enabled: bool = True) -> GroupStatsObserver:
        """Also gather E[x x~^T] and E[x~ x~^T] (the reconstruction's moments); returns self."""
        if enabled:
            shape = self.stats.hessian.shape
            self.stats.cross, self.stats.hessian_q = np.zeros(shape), np.zeros(shape)
        return self

    def with_split_hessian(self, enabled: bool = True) -> GroupStatsObserver:
        """Also keep the Hessian of even-numbered samples' rows (two halves for cross-validation); returns self."""
        if enabled:
            self.stats.hessian_even = np.zeros_like(self.stats.hessian)
        return self

    def _channels_last(self, x: np.ndarray) -> np.ndarray:
        cl = np.moveaxis(x, 1, -1) if self.geo is not None else x
        pad = self.order.shape[0] - self.c_in
        cl = np.pad(cl, [(0, 0)] * (cl.ndim - 1) + [(0, pad)])
        return np.take(cl, self.order, axis=-1).astype(np.float32)

    def update(self, x: np.ndarray) -> None:
        """Fold one batch of the layer's float input (NCHW for conv, [..., C_in] for gemm)."""
        xp = self._channels_last(x)
        self._update_activation_error(xp.reshape(-1, xp.shape[-1]), xp.shape)
        idx, n_even = self._row_indices(xp), 0
        if self.stats.hessian_even is not None:  # even samples' rows first: each half is then a view
            per_sample = max(self._output_rows(xp.shape) // max(xp.shape[0], 1), 1)
            even = (self.samples_seen + idx // per_sample) % 2 == 0
            idx, n_even = np.concatenate([idx[even], idx[~even]]), int(even.sum())
        rows = self._sample_rows(xp, idx)
        b64 = self._blocks(rows)
        self._update_hessian(b64, n_even)
        self.samples_seen += xp.shape[0]
        if self.stats.cross is not None:
            # an im2col row is whole pixels' channel vectors (tap-major), so the 4-bit view of the
            # sampled rows equals the sampled rows of the 4-bit view, at a fraction of the cost
            t64 = self._blocks(self._four_bit_view(rows))
            self.stats.cross += np.matmul(b64.transpose(0, 2, 1), t64)
            self.stats.hessian_q += np.matmul(t64.transpose(0, 2, 1), t64)
        self.stats.rows += b64.shape[1]

    def _update_hessian(self, b64: np.ndarray, n_even: int) -> None:
        """Fold the sampled rows' blocks into H and, when split, into the even samples' half (its first `n_even` rows)."""
        if self.stats.hessian_even is None:
            self.stats.hessian += np.matmul(b64.transpose(0, 2, 1), b64)  # [G_count, RSG, RSG], BLAS
            return
        even, odd = b64[:, :n_even], b64[:, n_even:]
        h_even = np.matmul(even.transpose(0, 2, 1), even)
        self.stats.hessian_even += h_even
        self.stats.hessian += h_even + np.matmul(odd.transpose(0, 2, 1), odd)
        self.stats.rows_even += n_even

    def _blocks(self, rows: np.ndarray) -> np.ndarray:
        """im2col rows [rows, taps*C_pad] -> float64 [G_count, rows, taps*G] (tap, channel) order."""
        gc, g = self.stats.static_sq_err.shape[0], self.g
        taps = rows.shape[1] // (gc * g)
        blocks = rows.reshape(rows.shape[0], taps, gc, g).transpose(2, 0, 1, 3).reshape(gc, rows.shape[0], taps * g)
        return blocks.astype(np.float64)

    def _four_bit_view(self, xp: np.ndarray) -> np.ndarray:
        """The input as a 4-bit group sees it: effective 4-bit codes (dynamic step) times s_a, in float.

        Works on any array whose last axis is a multiple of G made of whole channel groups.
        """
        q = bits.quantize_activation(xp, self.act_scale, self.signed)
        grouped = q.reshape(q.shape[:-1] + (-1, self.g))
        step = bits.group_step(grouped, self.signed, axis=-1)[..., None]
        eff = bits.effective_codes_step(grouped, step, self.signed).reshape(q.shape)
        return eff.astype(np.float32) * np.float32(self.act_scale)

    def _update_activation_error(self, flat: np.ndarray, shape: tuple[int, ...]) -> None:
        q = bits.quantize_activation(flat, self.act_scale, self.signed)
        grouped = q.reshape(q.shape[0], -1, self.g)
        step = bits.group_step(grouped, self.signed, axis=-1)[..., None]
        eff = bits.effective_codes_step(grouped, step, self.signed)
        self.stats.act_sq_err += ((eff - grouped).astype(np.float64) ** 2).reshape(q.shape[0], -1).sum(axis=0)
        sums = self.stats.code_sums
        if sums is not None:
            sums.q8 += self._column_sums(q.reshape(shape))
            sums.q4 += self._column_sums(eff.reshape(shape))
            sums.rows += self._output_rows(shape)
        for ps in range(5):
            eff_p = bits.effective_codes_step(grouped, bits.shift_step(ps), self.signed)  # static: step 1 << p
            e = eff_p - grouped
            self.stats.static_sq_err[:, ps] += (e.astype(np.float64) ** 2).sum(axis=(0, 2))
            if sums is not None:
                sums.q4_static[ps] += self._column_sums(eff_p.reshape(shape))
        self.stats.act_count += q.shape[0]
        self.stats.code_max = np.maximum(self.stats.code_max, np.abs(q).max(axis=0))

    def _output_rows(self, shape: tuple[int, ...]) -> int:
        """im2col rows of a channels-last batch: output pixels (conv) or tokens (gemm)."""
        if self.geo is None:
            return int(np.prod(shape[:-1]))
        p, q = self.geo.output_hw(shape[1], shape[2])
        return shape[0] * p * q

    def _column_sums(self, codes: np.ndarray) -> np.ndarray:
        """float64 [taps, C_pad]: the sum of every im2col column over all output rows (zero padding included)."""
        return im2col_column_sums(codes, self.geo)

    def _row_indices(self, xp: np.ndarray) -> np.ndarray:
        """Which output rows (pixels / tokens) this batch contributes: all, or `max_rows` sampled."""
        if self.geo is None:
            total = int(np.prod(xp.shape[:-1]))
        else:
            p, q = self.geo.output_hw(xp.shape[1], xp.shape[2])
            total = xp.shape[0] * p * q
        return np.arange(total) if total <= self.max_rows else self.rng.choice(total, self.max_rows, replace=False)

    def _sample_rows(self, xp: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """im2col rows [rows, R*S*C_pad] in (r, s, c) order for the output rows `idx`."""
        if self.geo is None:
            return xp.reshape(-1, xp.shape[-1])[idx]
        (r, s), (sh, sw), (pt, pl, pb, pr), (dh, dw) = (
            self.geo.kernel_shape, self.geo.strides, self.geo.pads, self.geo.dilations)
        b, h, w, c = xp.shape
        p, q = self.geo.output_hw(h, w)
        bi, rem = np.divmod(idx, p * q)
        pi, qi = np.divmod(rem, q)
        padded = np.pad(xp, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
        hh = pi[:, None, None] * sh + np.arange(r)[None, :, None] * dh
        ww = qi[:, None, None] * sw + np.arange(s)[None, None, :] * dw
        patches = padded[bi[:, None, None], hh, ww]  # [rows, R, S, C_pad]
        return patches.reshape(idx.shape[0], r * s * c)

    def result(self) -> GroupStats:
        """The accumulated statistics."""
        return self.stats


def im2col_column_sums(x: np.ndarray, geo) -> np.ndarray:
    """float64 [taps, C]: the sum of every im2col column of `x` over all output rows, zero padding included.

    `x` is channels-last: [B, H, W, C] for a conv (`geo` its ConvGeometry), [..., C] for a Gemm/MatMul
    (`geo` None, one tap). Tap (r, s) of output pixel (i, j) reads padded input (i*sh + r*dh,
    j*sw + s*dw), so its column sum is one strided window of the zero-padded input: exact, without
    building im2col.
    """
    if geo is None:
        return x.reshape(-1, x.shape[-1]).sum(axis=0, dtype=np.float64)[None]
    (r, s), (sh, sw), (pt, pl, pb, pr), (dh, dw) = geo.kernel_shape, geo.strides, geo.pads, geo.dilations
    p, q = geo.output_hw(x.shape[1], x.shape[2])
    padded = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    out = np.empty((r * s, x.shape[-1]))
    for ri in range(r):
        for si in range(s):
            win = padded[:, ri * dh:ri * dh + sh * (p - 1) + 1:sh, si * dw:si * dw + sw * (q - 1) + 1:sw]
            out[ri * s + si] = win.sum(axis=(0, 1, 2), dtype=np.float64)
    return out
