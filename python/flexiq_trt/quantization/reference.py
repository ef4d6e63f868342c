"""NumPy reference of a FlexiQ layer (docs/design.md §2): the oracle every backend is checked against.

The integer part is computed in int64 and checked to fit int32, so an overflow is a loud failure
rather than a silent wrap. Two formulations are provided: the one-GEMM form over effective codes
(`mixed_gemm_int32`) and the literal per-group scaled accumulation (`mixed_gemm_int32_grouped`),
which tests prove identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flexiq_trt.errors import FlexiqInternalError
from flexiq_trt.plugin_spec import Activation, ShiftMode, clamp_n4
from flexiq_trt.quantization import bits
from flexiq_trt.quantization.layer import QuantizedLayer


@dataclass(frozen=True)
class ActShiftSpec:
    """How a layer picks activation shifts: dynamic per row/group, or a static per-group table."""

    mode: ShiftMode
    static: np.ndarray | None = None  # int [G_count] when STATIC


def permute_channels(x: np.ndarray, permutation: np.ndarray, in_channels: int, axis: int) -> np.ndarray:
    """Zero-pad the channel axis to C_pad and gather it in priority order."""
    pad = permutation.shape[0] - in_channels
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, pad)
    return np.take(np.pad(x, widths), permutation, axis=axis)


def activation_codes_mixed(codes: np.ndarray, n4: int, group_size: int, signed: bool,
                           shifts: ActShiftSpec) -> tuple[np.ndarray, np.ndarray]:
    """Codes `[..., C_pad]` (channels last, permuted) -> (effective mixed codes, steps [..., G_count]).

    Channels before `n4` become effective 4-bit codes at the group's step (dynamic: `bits.group_step`
    per row; static: `1 << p_a[g]`); the rest keep their 8-bit codes.
    """
    cp = codes.shape[-1]
    grouped = codes.reshape(codes.shape[:-1] + (cp // group_size, group_size))
    if shifts.mode == ShiftMode.DYNAMIC:
        step = bits.group_step(grouped, signed, axis=-1)
    else:
        step = np.broadcast_to(bits.shift_step(shifts.static), grouped.shape[:-1])
    eff = bits.effective_codes_step(grouped, step[..., None], signed).reshape(codes.shape)
    mask = np.arange(cp) < n4
    return np.where(mask, eff, codes).astype(np.int32), np.asarray(step, dtype=np.int32)


def weight_codes_mixed(layer: QuantizedLayer, n4: int) -> np.ndarray:
    """Weights `[N, ..., C_pad]` with the 4-bit channels replaced by `w4 * step_w[g]` (effective codes)."""
    w8 = layer.weight_int8.astype(np.int32)
    eff = layer.weight4_effective()
    mask = np.arange(layer.padded_channels) < n4
    return np.where(mask, eff, w8)


def _check_int32(acc: np.ndarray, what: str) -> np.ndarray:
    if acc.size and (acc.max() > np.iinfo(np.int32).max or acc.min() < np.iinfo(np.int32).min):
        raise FlexiqInternalError(f"{what}: int32 accumulator overflow")
    return acc.astype(np.int32)


def mixed_gemm_int32(x_eff: np.ndarray, w_eff: np.ndarray) -> np.ndarray:
    """acc[m, n] = sum_k x_eff[m, k] * w_eff[n, k] in exact integer arithmetic, as int32."""
    acc = x_eff.astype(np.int64) @ w_eff.astype(np.int64).T
    return _check_int32(acc, "mixed_gemm_int32")


def mixed_gemm_int32_grouped(xq: np.ndarray, x_step: np.ndarray, w8: np.ndarray, w4: np.ndarray,
                             w_step: np.ndarray, n4: int, group_size: int, signed: bool = True) -> np.ndarray:
    """The literal docs/design.md §2.8 sum: 8-bit groups as int8 products, 4-bit groups as (x4 . w4) * (s_a * s_w).

    xq [M, C_pad] permuted 8-bit codes, x_step [M, G_count] activation steps, w8/w4 [N, C_pad],
    w_step [G_count] weight steps.
    """
    m, cp = xq.shape
    acc = np.zeros((m, w8.shape[0]), dtype=np.int64)
    for gi in range(cp // group_size):
        sl = slice(gi * group_size, (gi + 1) * group_size)
        if gi * group_size < n4:
            step = x_step[:, gi:gi + 1].astype(np.int64)
            x4 = bits.extract4_step(xq[:, sl], step, signed).astype(np.int64)
            part = x4 @ w4[:, sl].astype(np.int64).T
            acc += part * (step * int(w_step[gi]))  # one factor per (row, group): the int4 kernels' IMAD
        else:
            acc += xq[:, sl].astype(np.int64) @ w8[:, sl].astype(np.int64).T
    return _check_int32(acc, "mixed_gemm_int32_grouped")


def apply_activation(y: np.ndarray, act: Activation, alpha: float, beta: float) -> np.ndarray:
    """The fused epilogue activation, in float32."""
    y = y.astype(np.float32)
    a, b = np.float32(alpha), np.float32(beta)
    if act == Activation.NONE:
        return y
    if act == Activation.RELU:
        return np.maximum(y, np.float32(0))
    if act == Activation.CLIP:
        return np.clip(y, a, b)
    if act == Activation.HARD_SWISH:
        return y * np.clip(y / np.float32(6) + np.float32(0.5), 0, 1).astype(np.float32)
    if act == Activation.SILU:
        return y / (np.float32(1) + np.exp(-y))
    if act == Activation.SIGMOID:
        return np.float32(1) / (np.float32(1) + np.exp(-y))
    if act == Activation.LEAKY_RELU:
        return np.where(y >= 0, y, a * y).astype(np.float32)
    if act == Activation.HARD_SIGMOID:
        return np.clip(a * y + b, 0, 1).astype(np.float32)
    if act == Activation.GELU:
        from math import erf, sqrt

        return (0.5 * y * (1 + np.vectorize(erf)(y / sqrt(2)))).astype(np.float32)
    if act == Activation.TANH:
        return np.tanh(y)
    raise FlexiqInternalError(f"unknown activation {act!r}")


def epilogue(acc: np.ndarray, layer: QuantizedLayer, channel_axis: int, n4: int = 0) -> np.ndarray:
    """Epilogue: y = float(acc) * (s_a * s_w[n]) + bias[k, n], then the fused activation (float32).

    k = n4 / G is the bias rung (`n4` already clamped to whole groups; docs/design.md §2.8).
    """
    shape = [1] * acc.ndim
    shape[channel_axis] = layer.out_channels
    y = acc.astype(np.float32) * layer.out_scale().reshape(shape) + layer.bias_row(n4).reshape(shape)
    return apply_activation(y.astype(np.float32), layer.activation, layer.activation_alpha, layer.activation_beta)


def _shift_spec(layer: QuantizedLayer) -> ActShiftSpec:
    return ActShiftSpec(layer.act_shift_mode, layer.act_static_shift.astype(np.int32))


def gemm_forward(layer: QuantizedLayer, x: np.ndarray, n4: int) -> tuple[np.ndarray, np.ndarray]:
    """FlexiQGemm on float input `[..., C_in]` -> (int32 acc `[..., N]`, float32 output)."""
    n4 = clamp_n4(n4, layer.padded_channels, layer.group_size)
    xp = permute_channels(x, layer.permutation, layer.in_channels, axis=-1)
    q = bits.quantize_activation(xp, layer.act_scale, layer.act_signed)
    x_eff, _ = activation_codes_mixed(q, n4, layer.group_size, layer.act_signed, _shift_spec(layer))
    w_eff = weight_codes_mixed(layer, n4)
    lead = x_eff.shape[:-1]
    acc = mixed_gemm_int32(x_eff.reshape(-1, x_eff.shape[-1]), w_eff).reshape(lead + (layer.out_channels,))
    return acc, epilogue(acc, layer, channel_axis=-1, n4=n4)


def im2col(x_eff: np.ndarray, layer: QuantizedLayer) -> tuple[np.ndarray, tuple[int, int]]:
    """NHWC codes `[B, H, W, C_pad]` -> columns `[B*P*Q, R*S*C_pad]` in (r, s, c) order, zero padded."""
    geo = layer.geometry
    (r, s), (sh, sw), (pt, pl, pb, pr), (dh, dw) = geo.kernel_shape, geo.strides, geo.pads, geo.dilations
    b, h, w, c = x_eff.shape
    p, q = geo.output_hw(h, w)
    padded = np.pad(x_eff, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    cols = np.empty((b, p, q, r, s, c), dtype=x_eff.dtype)
    for ri in range(r):
        for si in range(s):
            hs, ws = ri * dh, si * dw
            cols[:, :, :, ri, si, :] = padded[:, hs:hs + sh * (p - 1) + 1:sh, ws:ws + sw * (q - 1) + 1:sw, :]
    return cols.reshape(b * p * q, r * s * c), (p, q)


def conv_forward(layer: QuantizedLayer, x: np.ndarray, n4: int) -> tuple[np.ndarray, np.ndarray]:
    """FlexiQConv on float NCHW input -> (int32 acc NCHW, float32 output NCHW).

    Dynamic activation shifts are per input pixel and group, before the im2col gather.
    """
    n4 = clamp_n4(n4, layer.padded_channels, layer.group_size)
    nhwc = np.transpose(x, (0, 2, 3, 1))
    xp = permute_channels(nhwc, layer.permutation, layer.in_channels, axis=-1)
    q = bits.quantize_activation(xp, layer.act_scale, layer.act_signed)
    x_eff, _ = activation_codes_mixed(q, n4, layer.group_size, layer.act_signed, _shift_spec(layer))
    cols, (p, qq) = im2col(x_eff, layer)
    w_eff = weight_codes_mixed(layer, n4).reshape(layer.out_channels, -1)
    acc = mixed_gemm_int32(cols, w_eff).reshape(x.shape[0], p, qq, layer.out_channels).transpose(0, 3, 1, 2)
    return acc, epilogue(acc, layer, channel_axis=1, n4=n4)


def layer_forward(layer: QuantizedLayer, x: np.ndarray, n4: int) -> tuple[np.ndarray, np.ndarray]:
    """Dispatch on the layer kind."""
    return conv_forward(layer, x, n4) if layer.is_conv else gemm_forward(layer, x, n4)
