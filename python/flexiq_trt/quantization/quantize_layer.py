"""Quantize one eligible layer: int8 codes, stored 4-bit codes and weight steps, and per-group error scores.

The result is in *base* channel order (groups as cut from the range-sorted channels); selection
later only reorders whole groups (`reorder_groups`), so nothing here depends on the selector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flexiq_trt.errors import FlexiqInternalError
from flexiq_trt.plugin_spec import CONV_OP, GEMM_OP, SUPPORTED_GROUP_SIZES, Activation, ShiftMode
from flexiq_trt.quantization import bias_rungs, gptq, reconstruct
from flexiq_trt.quantization.config import GPTQ_ROUNDINGS, QuantConfig
from flexiq_trt.quantization.group_stats import GroupStats
from flexiq_trt.quantization.layer import ConvGeometry, QuantizedLayer
from flexiq_trt.quantization.weights import int8_codes, pad_and_permute, to_channels_last, weight_scales


@dataclass(frozen=True)
class LayerSource:
    """The float layer as found in the model (canonical weights, see intake)."""

    name: str
    is_conv: bool
    weight: np.ndarray  # float32 [N, C, R, S] or [N, K]
    bias: np.ndarray  # float32 [N]
    geometry: ConvGeometry | None
    activation: Activation
    activation_alpha: float
    activation_beta: float
    unsigned_input: bool
    # What the stored 4-bit codes approximate, in the INT8 weight's units (s_w of `weight`); None = `weight`.
    # Set by the distillation finetune, which trains the 4-bit path apart from the INT8 one (finetune/).
    weight4: np.ndarray | None = None


@dataclass(frozen=True)
class LayerQuantResult:
    """A quantized layer in base order plus what selectors need."""

    layer: QuantizedLayer
    error_score: np.ndarray  # float64 [G_count], relative output error if the group goes 4-bit
    weight_error_plain: float  # Hessian-weighted 4-bit weight error with plain rounding (diagnostic)
    weight_error_chosen: float  # same with the configured rounding
    gptq_damp: np.ndarray | None = None  # float64 [G_count]: each group's GPTQ damping (None without GPTQ)
    silent_channels: int = 0  # input channels whose Hessian diagonal the floor raised (gptq.floor_silent_channels)


def group_blocks(arr_cl: np.ndarray, group_count: int, group_size: int) -> np.ndarray:
    """[N, ..., C_pad] -> [G_count, N, taps*G] with (tap, channel) column order (matches GroupStats)."""
    n = arr_cl.shape[0]
    taps = int(np.prod(arr_cl.shape[1:-1])) if arr_cl.ndim > 2 else 1
    x = arr_cl.reshape(n, taps, group_count, group_size).transpose(2, 0, 1, 3)
    return x.reshape(group_count, n, taps * group_size)


def from_group_blocks(blocks: np.ndarray, shape: tuple[int, ...], group_size: int) -> np.ndarray:
    """Inverse of group_blocks: [G_count, N, taps*G] -> `shape` ([N, ..., C_pad])."""
    gc, n = blocks.shape[0], blocks.shape[1]
    taps = blocks.shape[2] // group_size
    return blocks.reshape(gc, n, taps, group_size).transpose(1, 2, 0, 3).reshape(shape)


def _weighted(d: np.ndarray, h: np.ndarray) -> np.ndarray:
    return np.sum((d @ h) * d, axis=1)


def quantize_layer(src: LayerSource, layer_index: int, base_order: np.ndarray, act_scale: float,
                   stats: GroupStats, config: QuantConfig) -> LayerQuantResult:
    """Build the QuantizedLayer (base order) and its per-group error scores."""
    # The layer's own G (docs/design.md §2.2) is the one its order and statistics were made with
    # (quantize_layers picks it per layer with config.group_size_for).
    g = base_order.shape[0] // stats.hessian.shape[0]
    if g not in SUPPORTED_GROUP_SIZES or g * stats.hessian.shape[0] != base_order.shape[0]:
        raise FlexiqInternalError(f"{src.name}: base order of {base_order.shape[0]} channels and statistics of "
                                  f"{stats.hessian.shape[0]} groups give no supported group size")
    s_w = weight_scales(src.weight)
    w_cl = pad_and_permute(to_channels_last(src.weight), base_order).astype(np.float64)
    w8 = int8_codes(w_cl, s_w).astype(np.int32)
    gc = base_order.shape[0] // g
    w8_blocks = group_blocks(w8, gc, g)
    w4_cl = w_cl if src.weight4 is None else pad_and_permute(to_channels_last(src.weight4), base_order).astype(np.float64)
    target = w4_cl / s_w.reshape((-1,) + (1,) * (w_cl.ndim - 1))
    t_blocks = group_blocks(target, gc, g)
    # plain and naive rounding start from the 8-bit codes of what the 4-bit codes approximate
    w8t_blocks = w8_blocks if src.weight4 is None else group_blocks(int8_codes(w4_cl, s_w).astype(np.int32), gc, g)
    raw_hess = stats.mean_hessian()
    hess = gptq.floor_silent_channels(raw_hess, config.hessian_floor)
    silent = _silent_channels(raw_hess, hess, base_order, int(src.weight.shape[1]))
    folds = stats.mean_fold_hessians() if config.cross_validates_damp else None
    if folds is not None:
        folds = tuple(gptq.floor_silent_channels(f, config.hessian_floor) for f in folds)
    cross, hess_q = stats.mean_cross(), stats.mean_hessian_q()
    recon = config.weight_rounding == "recon" and cross is not None and config.act_shift == "dynamic"
    w4_blocks = np.zeros_like(w8_blocks)
    steps = np.ones(gc, dtype=np.int32)
    damps = np.full(gc, config.gptq_damp[0])
    err_plain = err_chosen = 0.0
    score = np.zeros(gc)
    act_mse = stats.act_mse()
    s2 = (s_w.astype(np.float64) ** 2)
    energy = 0.0
    for gi in range(gc):
        h = hess[gi]
        plain = gptq.plain_rounding(w8t_blocks[gi])
        if config.weight_rounding == "naive":
            chosen = gptq.naive_rounding(w8t_blocks[gi])
        elif config.weight_rounding == "plain":
            chosen = plain
        else:
            if folds is not None:
                damps[gi] = gptq.choose_damp(t_blocks[gi], w8t_blocks[gi], folds[0][gi], folds[1][gi], config.gptq_damp)
            chosen = gptq.gptq_or_plain(t_blocks[gi], w8t_blocks[gi], h, damps[gi])
            if recon:
                m = config.recon_act_share  # QDrop-style mix of float-input and 4-bit-input rows
                chosen = reconstruct.reconstruct_group(
                    t_blocks[gi], (1 - m) * h + m * cross[gi], (1 - m) * h + m * hess_q[gi], chosen,
                    gptq.at_step(w8t_blocks[gi], chosen.step),
                    damp=damps[gi], sweeps=config.recon_sweeps)
        w4_blocks[gi], steps[gi] = chosen.codes, chosen.step
        eff, eff_plain = chosen.effective(), plain.effective()
        d = eff - w8_blocks[gi]
        err_chosen += float(_weighted(t_blocks[gi] - eff, h).sum())
        err_plain += float(_weighted(t_blocks[gi] - eff_plain, h).sum())
        taps = w8_blocks.shape[2] // g
        ch_mse = np.tile(act_mse[gi * g:(gi + 1) * g], taps)
        e_w = float((s2 * _weighted(d, h)).sum())
        e_a = float(act_scale ** 2 * (s2[:, None] * w8_blocks[gi].astype(np.float64) ** 2 * ch_mse[None]).sum())
        score[gi] = e_w + e_a
        energy += float((s2 * _weighted(w8_blocks[gi].astype(np.float64), h)).sum())
    score /= max(energy, 1e-30)
    if config.act_shift == "dynamic":
        mode, static = ShiftMode.DYNAMIC, np.zeros(gc, dtype=np.int8)
    elif config.act_shift == "static":
        mode, static = ShiftMode.STATIC, np.argmin(stats.static_sq_err, axis=1).astype(np.int8)
    else:
        mode, static = ShiftMode.STATIC, np.full(gc, 4, dtype=np.int8)
    w4eff_blocks = w4_blocks.astype(np.int64) * steps.astype(np.int64)[:, None, None]
    out_scale = (np.float32(act_scale) * s_w.astype(np.float32)).astype(np.float32)
    bias_shift = None
    if config.bias_correction and stats.code_sums is not None:
        bias_shift = bias_rungs.group_bias_shift(stats.code_sums, w8_blocks, w4eff_blocks, out_scale, mode, static)
    layer = QuantizedLayer(
        name=src.name, op_type=CONV_OP if src.is_conv else GEMM_OP, layer_index=layer_index, group_size=g,
        in_channels=int(src.weight.shape[1]), out_channels=int(src.weight.shape[0]),
        permutation=base_order.astype(np.int32), act_scale=float(act_scale),
        act_signed=not (src.unsigned_input and config.unsigned_activations), act_shift_mode=mode,
        act_static_shift=static, weight_int8=w8.astype(np.int8),
        weight_int4=from_group_blocks(w4_blocks, w8.shape, g).astype(np.int8),
        weight_step=steps.astype(np.int8), weight_scale=s_w, bias=src.bias.astype(np.float32),
        activation=src.activation, activation_alpha=float(src.activation_alpha),
        activation_beta=float(src.activation_beta), geometry=src.geometry, group_bias_shift=bias_shift)
    layer.validate()
    return LayerQuantResult(layer, score, err_plain, err_chosen,
                            damps if config.weight_rounding in GPTQ_ROUNDINGS else None, silent)


def _silent_channels(raw: np.ndarray, floored: np.ndarray, base_order: np.ndarray, in_channels: int) -> int:
    """Real input channels with at least one (tap's) Hessian diagonal entry raised by the floor."""
    gc, g = raw.shape[0], base_order.shape[0] // raw.shape[0]
    lifted = np.diagonal(floored, axis1=1, axis2=2) > np.diagonal(raw, axis1=1, axis2=2)  # [G_count, taps * G]
    per_channel = lifted.reshape(gc, -1, g).any(axis=1).reshape(-1)  # base order, (tap, channel) columns
    return int(np.sum(per_channel & (base_order < in_channels)))


def reorder_groups(layer: QuantizedLayer, group_rank: list[int]) -> QuantizedLayer:
    """The same layer with its channel groups in `group_rank` order (which defines the final pi)."""
    g = layer.group_size
    cols = np.concatenate([np.arange(r * g, (r + 1) * g) for r in group_rank])
    from dataclasses import replace

    out = replace(
        layer, permutation=layer.permutation[cols].astype(np.int32),
        weight_int8=np.ascontiguousarray(layer.weight_int8[..., cols]),
        weight_int4=np.ascontiguousarray(layer.weight_int4[..., cols]),
        weight_step=np.ascontiguousarray(layer.weight_step[group_rank]),
        act_static_shift=np.ascontiguousarray(layer.act_static_shift[group_rank]),
        group_bias_shift=None if layer.group_bias_shift is None else np.ascontiguousarray(
            layer.group_bias_shift[group_rank]))
    out.validate()
    return out
