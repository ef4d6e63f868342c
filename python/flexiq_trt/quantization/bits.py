"""Bit-level rules of the numeric contract (docs/design.md §2), vectorised over NumPy arrays.

Every other implementation (C++ CPU reference, CUDA, the simulation ONNX) is tested against these
functions, so they are written for clarity over speed and operate on integer arrays only.
"""

from __future__ import annotations

import numpy as np

MAX_SHIFT = 4  # static activation shifts p_a: steps 1 << p
MAX_STEP = 16  # activation and weight steps 1..16 (int8 codes never need more)
INT8_MAX = 127


def quantize_activation(x: np.ndarray, act_scale: float, signed: bool = True) -> np.ndarray:
    """Per-tensor int8 (or uint8) codes: clamp(round_half_even(x / s_a)) as int32.

    The division is an IEEE float32 division (never a reciprocal multiply), as every backend does.
    """
    q = np.rint(np.divide(x.astype(np.float32), np.float32(act_scale), dtype=np.float32))
    low, high = (-INT8_MAX, INT8_MAX) if signed else (0, 255)
    return np.clip(q, low, high).astype(np.int32)


def quantize_weight_codes(w: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Symmetric per-output-channel int8 codes in [-127, 127]; `scale` broadcasts over axis 0."""
    s = scale.reshape((-1,) + (1,) * (w.ndim - 1)).astype(np.float32)
    return np.clip(np.rint(w.astype(np.float32) / s), -INT8_MAX, INT8_MAX).astype(np.int32)


def magnitude_bits(codes: np.ndarray, signed: bool) -> np.ndarray:
    """`q ^ (q >> 7)` for signed codes (= max(q, -q - 1), the magnitude a two's-complement code needs), `u` otherwise."""
    c = codes.astype(np.int32)
    return (c ^ (c >> 7)) if signed else c


def act_step(mag_max: np.ndarray, signed: bool) -> np.ndarray:
    """Smallest integer step s in 1..16 at which every truncated code of a group fits 4 bits.

    `mag_max` is the group's maximum of `magnitude_bits`; truncated codes fit when m < 8 s (signed)
    or m < 16 s (unsigned), so s = (m >> 3) + 1 resp. (m >> 4) + 1 (docs/design.md §2.5: integer
    steps, not powers of two, because a power of two wastes up to one of the four bits).
    """
    m = np.asarray(mag_max, dtype=np.int64)
    return np.clip(np.right_shift(m, 3 if signed else 4) + 1, 1, MAX_STEP).astype(np.int32)


def group_step(codes: np.ndarray, signed: bool = True, axis: int = -1) -> np.ndarray:
    """Dynamic activation step of each group: `codes` holds one group along `axis`, which is reduced away."""
    return act_step(np.max(magnitude_bits(codes, signed), axis=axis), signed)


def shift_step(shift: np.ndarray) -> np.ndarray:
    """The step of a power-of-two shift p: 1 << p (static activation shifts)."""
    return np.left_shift(1, np.asarray(shift, dtype=np.int32))


def extract4_step(codes: np.ndarray, step: np.ndarray, signed: bool = True) -> np.ndarray:
    """4-bit codes of 8-bit codes at step s: floor((2q + s) / 2s) (round half up), clamped (a top carry saturates)."""
    c = codes.astype(np.int64)
    s = np.broadcast_to(np.asarray(step, dtype=np.int64), c.shape)
    q = np.floor_divide(2 * c + s, 2 * s)
    low, high = (-8, 7) if signed else (0, 15)
    return np.clip(q, low, high).astype(np.int32)


def effective_codes_step(codes: np.ndarray, step: np.ndarray, signed: bool = True) -> np.ndarray:
    """The value a 4-bit activation code stands for: `extract4_step(q, s) * s` (in [-128, 112] or [0, 240])."""
    s = np.broadcast_to(np.asarray(step, dtype=np.int32), codes.shape)
    return extract4_step(codes, s, signed) * s


def extract4(codes: np.ndarray, shift: np.ndarray, signed: bool = True) -> np.ndarray:
    """4-bit codes at a power-of-two shift p: `extract4_step` at s = 1 << p, i.e. (q + 2^(p-1)) >> p, clamped."""
    return extract4_step(codes, shift_step(shift), signed)


def pack_int4(codes: np.ndarray) -> np.ndarray:
    """Pack 4-bit codes along the last axis, element 2j in the low nibble (plugin_spec.NIBBLE_ORDER)."""
    c = codes.astype(np.int32)
    if c.shape[-1] % 2:
        raise ValueError(f"int4 packing needs an even last dimension, got {c.shape}")
    lo, hi = c[..., 0::2] & 0xF, c[..., 1::2] & 0xF
    return (lo | (hi << 4)).astype(np.uint8).view(np.int8)


def unpack_int4(packed: np.ndarray, signed: bool = True) -> np.ndarray:
    """Inverse of `pack_int4` (sign-extends nibbles when `signed`)."""
    b = packed.view(np.uint8).astype(np.int32)
    lo, hi = b & 0xF, b >> 4
    if signed:
        lo, hi = lo - ((lo & 8) << 1), hi - ((hi & 8) << 1)
    out = np.empty(b.shape[:-1] + (b.shape[-1] * 2,), dtype=np.int32)
    out[..., 0::2], out[..., 1::2] = lo, hi
    return out
