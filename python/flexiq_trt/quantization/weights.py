"""INT8 weight quantization and the base channel order that defines a layer's channel groups."""

from __future__ import annotations

import numpy as np

from flexiq_trt.quantization import bits


def weight_scales(w: np.ndarray) -> np.ndarray:
    """Symmetric per-output-channel scale absmax / 127 (an all-zero channel gets scale 1)."""
    absmax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1).astype(np.float32)
    return np.where(absmax > 0, absmax / np.float32(127), np.float32(1)).astype(np.float32)


def to_channels_last(w: np.ndarray) -> np.ndarray:
    """Canonical conv weights [N, C, R, S] -> [N, R, S, C] (the plugin's (r, s, c) K order); Gemm as is."""
    return np.ascontiguousarray(np.transpose(w, (0, 2, 3, 1))) if w.ndim == 4 else np.asarray(w)


def pad_and_permute(w_cl: np.ndarray, permutation: np.ndarray) -> np.ndarray:
    """Channels-last weights -> zero-padded to C_pad and gathered in `permutation` order (last axis)."""
    pad = permutation.shape[0] - w_cl.shape[-1]
    widths = [(0, 0)] * (w_cl.ndim - 1) + [(0, pad)]
    return np.take(np.pad(w_cl, widths), permutation, axis=-1)


def base_channel_order(channel_magnitude: np.ndarray, group_size: int) -> np.ndarray:
    """Real channels sorted by a per-channel activation magnitude (smallest first), zero padding last.

    `channel_magnitude` is the calibrated statistic `QuantConfig.channel_grouping` names (the maximum,
    RMS or 99th percentile of |x|). Channels with small magnitudes leave the high bits of their 8-bit
    codes unused, so grouping them together lets a group's shared shift stay small (docs/design.md §1).
    Ties keep channel index order so the result is deterministic.
    """
    c_in = channel_magnitude.shape[0]
    c_pad = -(-c_in // group_size) * group_size
    order = np.argsort(channel_magnitude, kind="stable").astype(np.int32)
    return np.concatenate([order, np.arange(c_in, c_pad, dtype=np.int32)])


def int8_codes(w: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """int8 codes of the canonical float weights."""
    return bits.quantize_weight_codes(w, scale).astype(np.int8)
