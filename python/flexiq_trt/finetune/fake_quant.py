"""One FlexiQ layer in float with straight-through rounding: the numeric contract as a trainable module.

Forward = docs/design.md §2 in float: the input's 8-bit codes at the calibrated scale (§2.3), in the
layer's π order (§2.4), the first `n4` channels as effective 4-bit codes with the dynamic per-row
step (or static per-group shift) (§2.5, §2.7); weight codes w8 from the trainable float weight with the
per-row scale recomputed from it (what the re-quantization does), the first `n4` channels as plain-rule
`w4 * step_w` (§2.6, each group's smallest step over all its rows); the epilogue with the bias rung of `n4` (§2.8), the rung's shift
recomputed from the current codes and the calibration's mean code columns as `bias_rungs.py` does.
Rounding and the 4-bit extraction pass gradients straight through (identity inside the clamp).

Computed in the input's dtype: in float64 the accumulator is exact and equals
`quantization.reference`'s int32 for a layer stored with plain rounding (tests check it).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from flexiq_trt.plugin_spec import Activation, ShiftMode, clamp_n4
from flexiq_trt.quantization.layer import QuantizedLayer

BIAS_UNIT = 32.0  # a bias parameter step is this many output steps (s_a · s_w) — one weight code on a typical input


def act_steps(codes: torch.Tensor, signed: bool) -> torch.Tensor:
    """The step of the last axis' group (activation rows; weight groups): (m >> 3) + 1 signed, (m >> 4) + 1 unsigned (bits.group_step)."""
    mag = torch.where(codes < 0, -codes - 1, codes) if signed else codes
    return torch.clamp(torch.floor(mag.amax(dim=-1) / (8.0 if signed else 16.0)) + 1, 1, 16)


def effective4(codes: torch.Tensor, step: torch.Tensor, signed: bool) -> torch.Tensor:
    """`extract4_step(q, s) * s` in float: round half up at step s, clamp to 4 bits (bits.effective_codes_step).

    floor((q + s/2) / s) equals the reference's floor((2q + s) / 2s) exactly
    (small integers: every float operation here is exact or lands strictly inside an integer interval).
    """
    step = step.to(codes.dtype)
    lo, hi = (-8.0, 7.0) if signed else (0.0, 15.0)
    return torch.clamp(torch.floor((codes + step / 2) / step), lo, hi) * step


def round_ste(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """clamp(round_half_even(x)) forward; gradient 1 inside [lo, hi], 0 outside."""
    c = torch.clamp(x, lo, hi)
    return c + (torch.round(c) - c).detach()


def activation(y: torch.Tensor, act: Activation, alpha: float, beta: float) -> torch.Tensor:
    """The fused epilogue activation (reference.apply_activation)."""
    if act == Activation.NONE:
        return y
    table = {
        Activation.RELU: lambda: torch.relu(y),
        Activation.CLIP: lambda: torch.clamp(y, alpha, beta),
        Activation.HARD_SWISH: lambda: F.hardswish(y),
        Activation.SILU: lambda: y * torch.sigmoid(y),
        Activation.SIGMOID: lambda: torch.sigmoid(y),
        Activation.LEAKY_RELU: lambda: torch.where(y >= 0, y, alpha * y),
        Activation.HARD_SIGMOID: lambda: torch.clamp(alpha * y + beta, 0, 1),
        Activation.GELU: lambda: F.gelu(y),
        Activation.TANH: lambda: torch.tanh(y),
    }
    return table[act]()


class FakeQuantLayer(torch.nn.Module):
    """A FlexiQ layer whose float weights and biases train through the contract's rounding (module docstring).

    `layer` gives everything fixed: π (final order), G, the activation scale, signedness and shift
    mode, the geometry and the activation. `weight` / `bias` are the float layer (canonical: [N, C, R, S]
    or [N, K]). `code_means` (float64 [taps, C_pad] each, π order: mean 8-bit and effective 4-bit
    im2col columns on the calibration data) turn on the analytic bias rungs; None = every rung uses
    the bias. `n4` is set by the caller before each forward.

    `four_bit_only`: the INT8 weights and bias stay fixed and what trains is the float weight the
    4-bit codes are rounded from (the contract stores w4 apart from w8, docs/design.md §2.6); the bias
    rungs follow the codes (§2.8). Else the float weight and bias themselves train, and with them
    the INT8 model.
    """

    def __init__(self, layer: QuantizedLayer, weight: np.ndarray, bias: np.ndarray,
                 code_means: tuple[np.ndarray, np.ndarray] | None, four_bit_only: bool = False) -> None:
        super().__init__()
        self.layer, self.four_bit_only = layer, four_bit_only
        self.n4 = 0
        w = torch.from_numpy(np.asarray(weight, dtype=np.float32).copy())
        absmax = w.reshape(w.shape[0], -1).abs().amax(dim=1)
        self.register_buffer("weight0", w)
        self.register_buffer("scale0", torch.where(absmax > 0, absmax / 127, torch.ones_like(absmax)))
        self.register_buffer("bias0", torch.from_numpy(np.asarray(bias, dtype=np.float32).copy()))
        self.register_buffer("perm", torch.from_numpy(layer.permutation.astype(np.int64)))
        # Changes in units of each row's initial INT8 step, zero at the start: the untrained module is
        # exactly the given float layer, and Adam's step size means the same on every layer.
        self.weight_steps = torch.nn.Parameter(torch.zeros_like(w))
        if not four_bit_only:
            self.bias_steps = torch.nn.Parameter(torch.zeros_like(self.bias0))
        self.code_means = None if code_means is None else tuple(torch.from_numpy(m.copy()) for m in code_means)

    @staticmethod
    def _rows(v: torch.Tensor, ndim: int) -> torch.Tensor:
        return v.reshape((-1,) + (1,) * (ndim - 1))

    def float_weight4(self) -> torch.Tensor:
        """The float weight the 4-bit codes are rounded from, canonical layout."""
        return self.weight0 + self.weight_steps * self._rows(self.scale0, self.weight0.dim())

    def float_weight(self) -> torch.Tensor:
        """The float weight of the INT8 codes (fixed with `four_bit_only`), canonical layout."""
        return self.weight0 if self.four_bit_only else self.float_weight4()

    def float_bias(self) -> torch.Tensor:
        """The current float bias (row 0 of the bias table)."""
        if self.four_bit_only:
            return self.bias0
        return self.bias0 + self.bias_steps * (BIAS_UNIT * self.layer.act_scale) * self.scale0

    def _channels_last(self, w: torch.Tensor) -> torch.Tensor:
        """Canonical weight -> [N, R, S, C_pad] (conv) or [N, C_pad], zero padded, in π order."""
        cl = w.permute(0, 2, 3, 1) if w.dim() == 4 else w
        pad = self.layer.padded_channels - self.layer.in_channels
        return torch.index_select(F.pad(cl, (0, pad)), -1, self.perm)

    def _scale(self) -> torch.Tensor:
        """s_w of the current weight, float32 [N] (weights.weight_scales: absmax / 127, 1 for a zero row)."""
        absmax = self.float_weight().detach().reshape(self.scale0.shape[0], -1).abs().amax(dim=1)
        return torch.where(absmax > 0, absmax / 127, torch.ones_like(absmax))

    def _weight_codes(self, dtype: torch.dtype, n4: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mixed weight codes with STE, w8 codes, effective w4 codes of the 4-bit prefix), [N, ..., C_pad].

        Codes are formed in float32 (the division every backend does) and then cast to `dtype`; the
        4-bit ones by the plain rule (each group's smallest step, §2.6) from the 8-bit codes of `float_weight4`.
        """
        w, scale = self.float_weight(), self._rows(self._scale(), self.weight0.dim())
        w8 = round_ste(self._channels_last(w / scale), -127, 127)
        if n4 == 0:
            return w8.to(dtype), w8.detach().to(dtype), w8.detach()[..., :0].to(dtype)
        head = round_ste(self._channels_last(self.float_weight4() / scale)[..., :n4], -127, 127) \
            if self.four_bit_only else w8[..., :n4]
        g, q = self.layer.group_size, head.detach()
        n = q.shape[0]
        blocks = q.reshape(n, -1, n4 // g, g).transpose(1, 2).reshape(n, n4 // g, -1)  # [N, groups, taps*G]
        step = act_steps(blocks.transpose(0, 1).reshape(n4 // g, -1), True)[None, :, None]  # one per group
        eff = effective4(blocks, step, True).reshape(n, n4 // g, -1, g).transpose(1, 2).reshape(q.shape)
        mixed = torch.cat([head + (eff - q), w8[..., n4:]], dim=-1)
        return mixed.to(dtype), w8.detach().to(dtype), eff.to(dtype)

    def _act_codes(self, x: torch.Tensor, n4: int, axis: int) -> torch.Tensor:
        """Input with channels on `axis` -> mixed effective codes, C_pad channels in π order (STE).

        Convs keep NCHW (axis 1): gathering whole channel planes is a copy, where a gather along a
        channels-last axis was the slowest op of a step.
        """
        lay = self.layer
        axis = axis % x.dim()
        if lay.padded_channels > lay.in_channels:
            x = F.pad(x, [0, 0] * (x.dim() - 1 - axis) + [0, lay.padded_channels - lay.in_channels])
        x = torch.index_select(x, axis, self.perm)
        lo, hi = (-127.0, 127.0) if lay.act_signed else (0.0, 255.0)
        q = round_ste(x.float() / torch.tensor(lay.act_scale, dtype=torch.float32), lo, hi).to(x.dtype)
        if n4 == 0:
            return q
        g, head = lay.group_size, q.detach().narrow(axis, 0, n4)
        grouped = head.reshape(head.shape[:axis] + (n4 // g, g) + head.shape[axis + 1:])
        if lay.act_shift_mode == ShiftMode.DYNAMIC:
            step = act_steps(grouped.movedim(axis + 1, -1), lay.act_signed).unsqueeze(axis + 1)
        else:
            step = torch.from_numpy(np.left_shift(1, lay.act_static_shift[: n4 // g].astype(np.int64)))
            step = step.reshape((n4 // g, 1) + (1,) * (grouped.dim() - axis - 2))
        eff = effective4(grouped, step, lay.act_signed).reshape(head.shape)
        return torch.cat([q.narrow(axis, 0, n4) + (eff - head), q.narrow(axis, n4, q.shape[axis] - n4)], dim=axis)

    def accumulate(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        """(the accumulator in float, the clamped n4): acc NCHW for a conv, [..., N] for a Gemm."""
        lay = self.layer
        n4 = clamp_n4(int(self.n4), lay.padded_channels, lay.group_size)
        w_mixed = self._weight_codes(x.dtype, n4)[0]
        if not lay.is_conv:
            return torch.matmul(self._act_codes(x, n4, -1), w_mixed.t()), n4
        codes = self._act_codes(x, n4, 1)
        geo = lay.geometry
        t, left, b, r = geo.pads
        codes = F.pad(codes, (left, r, t, b))
        return F.conv2d(codes, w_mixed.permute(0, 3, 1, 2), None, geo.strides, 0, geo.dilations), n4

    def out_scale(self) -> torch.Tensor:
        """float32 s_a · s_w[n], rounded once in float32 (QuantizedLayer.out_scale)."""
        return torch.tensor(self.layer.act_scale, dtype=torch.float32) * self._scale()

    def bias_row(self, n4: int, dtype: torch.dtype) -> torch.Tensor:
        """The bias of rung n4 / G: the bias minus the mean output shift of the 4-bit groups (bias_rungs.py)."""
        bias = self.float_bias().to(dtype)
        if self.code_means is None or n4 == 0:
            return bias
        _, w8, w4 = self._weight_codes(dtype, n4)
        g, n = self.layer.group_size, w8.shape[0]
        m8, m4 = (m[:, :n4].to(dtype) for m in self.code_means)  # [taps, n4]
        e = (w4.reshape(n, -1, n4) * m4).sum(dim=1) - (w8[..., :n4].reshape(n, -1, n4) * m8).sum(dim=1)
        shift = e.reshape(n, n4 // g, g).sum(dim=2).sum(dim=1)
        return bias - shift * self.out_scale().to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's float output at `self.n4` (docs/design.md §2.8 epilogue with the fused activation)."""
        acc, n4 = self.accumulate(x)
        lay = self.layer
        shape = (1, -1, 1, 1) if lay.is_conv else (-1,)
        y = acc * self.out_scale().to(x.dtype).reshape(shape) + self.bias_row(n4, x.dtype).reshape(shape)
        return activation(y, lay.activation, lay.activation_alpha, lay.activation_beta)
