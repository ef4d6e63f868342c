"""Write `<stem>.flexiq-sim.onnx`: each FlexiQ layer rebuilt from standard ONNX ops (docs/design.md §2, §3).

The integer part is bit-exact with `quantization.reference`: codes come from one QuantizeLinear,
effective 4-bit codes are formed in float where every value is exactly representable (so every op is
exact; the reference's ``floor((2q + s) / 2s)`` at the group's step s, `_mixed_codes`), and the
accumulation runs in float32 Conv/MatMul over exact chunks (`float_exact`, the artifact's default)
or in ConvInteger/MatMulInteger. There, unsigned layers use u8 activations with u8 weights offset
by 128 and a weight zero point of 128: u8 x u8 kernels widen before multiplying, whereas u8 x s8
kernels on CPUs without VNNI may saturate 16-bit pair sums.

The graph is written for few nodes and few passes over activations per layer (ONNX Runtime's
per-node cost dominates at batch 1): no Pad, no Where/comparison per layer in prefix mode (one
shared count of 4-bit groups per layer, `_rung_nodes`, then table rows), and constant weights where
a run uses them few times (`_halves_accumulate`). Measurements: docs/selection.md.

Modes: "prefix" reads `flexiq_max_4bit_ch` int32 [L] (the runtime contract); "mask" gives every
layer a bool input `flexiq_group_mask_<layer_index>` [G_count] saying which groups, in pi order,
are 4-bit (the selection search's fast evaluator).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx

from flexiq_trt.errors import ConfigError, FlexiqInternalError
from flexiq_trt.plugin_spec import (
    RUNTIME_INPUT,
    SIM_ACC_SUFFIX,
    Activation,
    ShiftMode,
    mask_input_name,
    sim_node_prefix,
)
from flexiq_trt.quantization.layer import QuantizedLayer

from .graph_index import GraphIndex
from .layer_nodes import check_layer_pairs, check_written, locate_nodes, runtime_input_info, set_metadata
from .onnx_builder import SubgraphBuilder
from .rewrite import Replacement, apply_replacements

log = logging.getLogger("flexiq_trt.graph_passes")

MODES = ("prefix", "mask")


def acc_output_name(output_name: str) -> str:
    """The debug graph output carrying a layer's int32 accumulator."""
    return f"{output_name}{SIM_ACC_SUFFIX}"


def step_table(signed: bool) -> np.ndarray:
    """The activation step s for every group max magnitude m (index 0..255): `bits.act_step`, as float32."""
    from flexiq_trt.quantization import bits

    return bits.act_step(np.arange(256), signed).astype(np.float32)


EIGHT_BIT_ROW = 256  # row of the per-group tables that 8-bit groups read (step 1, the 8-bit code bound)
ROUND_UP = 1.0 / 64  # added to every code once: exact halves then round up in `_mixed_codes` (and m = Cast(max))
RUNGS_PREFIX = "flexiq_rungs_"  # the prefix-mode nodes shared by all layers (`_rung_nodes`)


def group_tables(signed: bool) -> tuple[np.ndarray, np.ndarray]:
    """(step, bound) per row: rows 0..255 for a 4-bit group of max magnitude m, row 256 for 8-bit.

    bound = the largest code (7 or 15 on 4-bit rows, 127 or 255 on the 8-bit row, whose step is 1).
    """
    step = np.concatenate([step_table(signed), [1.0]]).astype(np.float32)
    hi = np.full(EIGHT_BIT_ROW + 1, 7.0 if signed else 15.0, dtype=np.float32)
    hi[EIGHT_BIT_ROW] = 127.0 if signed else 255.0
    return step, hi


def static_rows(static_shift: np.ndarray, signed: bool) -> np.ndarray:
    """The table row of a static shift p: a magnitude whose step is 2^p (8·2^p − 1 signed, 16·2^p − 1 unsigned)."""
    return ((8 if signed else 16) << static_shift.astype(np.int64)) - 1


@dataclass
class _Selection:
    """Which of a layer's groups (π order) are 4-bit at run time, and per-group values picked by it.

    Prefix mode: `rung` (int64 scalar) is the number of 4-bit groups, so a per-group value is one
    Gather of row `rung` of a [G_count + 1, ...] table written here (row r holds the 4-bit value on
    groups k < r): no comparison, Where or Reshape per layer. Mask mode (the search's evaluator, any
    group set): the bool input [G_count] and a Where.
    """

    b: SubgraphBuilder
    group_count: int
    rung: str | None = None
    mask: str | None = None
    shaped: dict = field(default_factory=dict)

    def pick(self, four, eight, shape: tuple[int, ...], hint: str) -> str:
        """A tensor of `shape` (G_count on one axis): `four[k]` on 4-bit groups k, `eight[k]` on 8-bit ones."""
        gc = self.group_count
        axis = shape.index(gc) if gc > 1 else 0
        four, eight = (np.broadcast_to(np.asarray(v), (gc,)).reshape(shape) for v in (four, eight))
        return self.pick_shaped(four, eight, axis, hint)

    def run_dependent(self, value: np.ndarray, hint: str) -> str:
        """`value` computed by a node that depends on the run (ONNX Runtime cannot fold it into a constant)."""
        if self.rung is not None:
            table = np.stack([value] * (self.group_count + 1))
            return self.b.op("Gather", [self.b.const(table, hint), self.rung], axis=0, hint=hint)
        first = self.b.op("Gather", [self.mask, self.b.const(np.array(0, np.int64), "first")], axis=0)
        return self.b.op("Where", [first, self.b.const(value, hint), self.b.const(value, hint)], hint=hint)

    def pick_shaped(self, four: np.ndarray, eight: np.ndarray, axis: int, hint: str) -> str:
        """As `pick`, the values given in their final shape with the groups along `axis`."""
        gc = self.group_count
        k_shape = [1] * four.ndim
        k_shape[axis] = gc
        if self.rung is not None:
            k = np.arange(gc).reshape(k_shape)
            table = np.stack([np.where(k < r, four, eight) for r in range(gc + 1)])
            return self.b.op("Gather", [self.b.const(table, hint), self.rung], axis=0, hint=hint)
        key = tuple(k_shape)
        if key not in self.shaped:
            self.shaped[key] = self.mask if key == (gc,) else \
                 self.b.op("Reshape", [self.mask, self.b.const(np.array(key, np.int64), "shape")])
        return self.b.op("Where", [self.shaped[key], self.b.const(four, f"{hint}4"), self.b.const(eight, f"{hint}8")],
                         hint=hint)


def _rung_nodes(layers: Sequence[QuantizedLayer], opset: int) -> tuple[SubgraphBuilder, str]:
    """int64 [L]: each layer's number of 4-bit groups, Min(Max(Floor(n4 / G), 0), G_count), once per run.

    That is the count of groups k with (k+1)*G <= n4 (the runtime rounds n4 down to whole groups,
    below 0 none, above C_pad all; docs/design.md §2). float32 is exact on the range that matters:
    n4 <= C_pad converts exactly and n4 / G is then far from rounding across an integer; any larger
    n4 gives at least G_count either way.
    """
    b = SubgraphBuilder(RUNGS_PREFIX, opset)
    by_index = sorted(layers, key=lambda q: q.layer_index)
    sizes = b.const(np.array([q.group_size for q in by_index], np.float32), "group_size")
    counts = b.const(np.array([q.group_count for q in by_index], np.float32), "group_count")
    n4 = b.op("Cast", [RUNTIME_INPUT], to=onnx.TensorProto.FLOAT)
    whole = b.op("Max", [b.op("Floor", [b.op("Div", [n4, sizes])]), b.const(0.0)])
    return b, b.op("Cast", [b.op("Min", [whole, counts])], to=onnx.TensorProto.INT64, hint="rungs")


def _selection(b: SubgraphBuilder, ql: QuantizedLayer, mode: str, rungs: str | None) -> _Selection:
    """The layer's group selection: its rung (prefix mode, one Gather of the shared vector) or its mask input."""
    if mode == "mask":
        return _Selection(b, ql.group_count, mask=mask_input_name(ql.layer_index))
    if rungs is None:
        raise FlexiqInternalError(f"layer {ql.name}: prefix mode needs the shared rung vector (`_rung_nodes`)")
    rung = b.op("Gather", [rungs, b.const(np.array(ql.layer_index, np.int64), "li")], axis=0, hint="rung")
    return _Selection(b, ql.group_count, rung=rung)


def _gather_indices(ql: QuantizedLayer) -> np.ndarray:
    """int64 [G_count, G]: input channels in π order; padding slots repeat a real channel of their group.

    The reference pads with zero codes. A repeated real code leaves the group's max magnitude as it
    was (magnitudes are >= 0 and the code is already in the group) and its weight column is written
    as zero (`_weight_slots`), so the accumulators are unchanged and no Pad runs. A group of padding
    only (C_pad - C_in >= G) repeats channel π[0]: its weights are all zero.
    """
    g, cin = ql.group_size, ql.in_channels
    idx = ql.permutation.astype(np.int64).reshape(ql.group_count, g).copy()
    for row in idx:
        pad = row >= cin
        if pad.any():
            real = row[~pad]
            row[pad] = real[0] if real.size else int(ql.permutation[0])
    return idx


def _weight_slots(ql: QuantizedLayer, direct: bool) -> np.ndarray:
    """For each channel the accumulating op reads, the π position of its weights (-1: a zero column).

    Gathered layout: the C_pad π positions, padding ones (the tail, `QuantizedLayer.validate`) zero.
    Direct layout (one group, no Gather): the C_in real channels in their own order.
    """
    cin, cp = ql.in_channels, ql.padded_channels
    if direct:
        position = np.empty(cp, np.int64)
        position[ql.permutation] = np.arange(cp)
        return position[:cin]
    return np.where(np.arange(cp) < cin, np.arange(cp), -1)


def _codes(b: SubgraphBuilder, x: str, ql: QuantizedLayer) -> str:
    """8-bit codes Clip(Round(x / s), lo, hi) of the input, as uint8/int8 (one QuantizeLinear; docs/design.md §2.3).

    ONNX Runtime's QuantizeLinear divides by the scale, clamps and rounds half to even, which is that
    formula (its -0 is 0, which the next ops cannot tell apart). The int8 type's -128 is raised to
    -127 after the Cast (`_float_codes`). QuantizeLinear exists from opset 10 on, before ONNX's Round (11).
    """
    scale = b.const(np.float32(ql.act_scale), "act_scale")
    zero = b.const(np.array(0, np.int8 if ql.act_signed else np.uint8), "zp")
    return b.op("QuantizeLinear", [x, scale, zero], hint="q")


def _float_codes(b: SubgraphBuilder, codes: str, ql: QuantizedLayer) -> str:
    """The codes in float32 plus ROUND_UP, the nudge the rounding in `_mixed_codes` needs.

    Exact: |q| <= 255 needs 8 bits, 1/64 six more. Not one DequantizeLinear (q * (1 + 2^-12) would do for unsigned codes): ONNX Runtime copies a
    DequantizeLinear once per consumer (its QDQ node-unit pass), so it would run twice here.
    """
    codes = b.op("Cast", [codes], to=onnx.TensorProto.FLOAT)
    if ql.act_signed:
        codes = b.op("Max", [codes, b.const(-127.0)])
    return b.op("Add", [codes, b.const(ROUND_UP)], hint="q_up")


def _grouped_codes(b: SubgraphBuilder, x: str, ql: QuantizedLayer, rank: int, direct: bool) -> tuple[str, int, tuple]:
    """(codes + ROUND_UP grouped, the axis inside a group, the broadcast shape of per-group values).

    Conv: [B, G_count, G, *spatial] by one Gather on the channel axis (each index copies a plane), or
    with `direct` (one group) the input itself [B, C_in, *spatial]. Matmul: the rows of the transposed
    [C_in, T] codes, [G_count, G, T] (a Gather along the last axis copies one element at a time), or
    [C_in, T] directly. The Gather and the transpose move uint8 codes, a quarter of the float bytes.
    """
    gc = ql.group_count
    codes = _codes(b, x, ql)
    if not ql.is_conv:
        codes = b.op("Transpose", [b.op("Reshape", [codes, b.const(np.array([-1, ql.in_channels], np.int64), "rows")])],
                     perm=[1, 0])
    if direct:
        grouped, g_axis, gshape = codes, (1 if ql.is_conv else 0), (1,) * (rank if ql.is_conv else 2)
    else:
        axis = 1 if ql.is_conv else 0
        grouped = b.op("Gather", [codes, b.const(_gather_indices(ql), "perm")], axis=axis, hint="q_grouped")
        g_axis, gshape = axis + 1, ((1, gc) + (1,) * (rank - 1) if ql.is_conv else (gc, 1, 1))
    return _float_codes(b, grouped, ql), g_axis, gshape


def _mixed_codes(b: SubgraphBuilder, grouped: str, ql: QuantizedLayer, sel: _Selection, g_axis: int,
                 gshape: tuple) -> str:
    """Codes of every channel, the effective 4-bit ones on 4-bit groups (float, integer-valued), grouped shape.

    `grouped` holds q' = q + 1/64 (`_float_codes`). The reference's clamp(floor((2q + s) / 2s)) · s is
    written as Min(Floor(q' / s + 1/2), bound) · s with the step s and bound gathered from the row
    (`group_tables`). Exact: q' / s + 1/2 is within float32 rounding (< 2^-19 at |q| <= 255) of
    (q + s/2 + 1/64) / s, which lies at least 1/(64·16) above an integer when (q + s/2) / s is one
    (the 1/64 makes exact halves round up, as the reference's floor does) and at least (1/2 − 1/64) / 16
    below the next one otherwise, so Floor sees the reference's quotient. With a dynamic step the lower
    clip bound is never reached (s is chosen from the group's max magnitude m < 8 s, so q >= -(m + 1)
    >= -8 s signed; q >= 0 unsigned); a static signed shift keeps it (one Max). On 8-bit groups the row is
    256 (step 1, the 8-bit code bound), so the same ops give q: no Where over activations. The row is
    the group's m (magnitudes carry the 1/64, which the int64 Cast truncates), or 256 on 8-bit groups.
    """
    signed = ql.act_signed
    step_rows, bound_rows = group_tables(signed)
    if ql.act_shift_mode == ShiftMode.DYNAMIC:
        mag = b.reduce("ReduceMax", grouped, axis=g_axis)
        if signed:  # max(q, -q - 1) over the group, + 1/64: max(max q', (2/64 - 1) - min q') with q' = q + 1/64
            low = b.op("Sub", [b.const(2 * ROUND_UP - 1.0), b.reduce("ReduceMin", grouped, axis=g_axis)])
            mag = b.op("Max", [mag, low])
        eight = sel.pick(np.float32(0.0), np.float32(EIGHT_BIT_ROW), gshape, "eight_row")
        row = b.op("Cast", [b.op("Max", [mag, eight])], to=onnx.TensorProto.INT64)  # m <= 255 < 256
    else:
        row = sel.pick(static_rows(ql.act_static_shift, signed), np.int64(EIGHT_BIT_ROW), gshape, "row")
    step = b.op("Gather", [b.const(step_rows, "step_rows"), row], axis=0)
    bound = b.op("Gather", [b.const(bound_rows, "bound_rows"), row], axis=0)
    k = b.op("Floor", [b.op("Add", [b.op("Div", [grouped, step]), b.const(np.float32(0.5))])])
    k = b.op("Min", [k, bound])
    if signed and ql.act_shift_mode != ShiftMode.DYNAMIC:  # a static 2^p may be too small for the codes
        k = b.op("Max", [k, sel.pick(np.float32(-8.0), np.float32(-127.0), gshape, "low")])
    return b.op("Mul", [k, step], hint="x_mixed")


def _weight_codes(ql: QuantizedLayer, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int32 (8-bit codes, effective 4-bit codes w4 * step_w), the layer's layout with the channels of `slots`."""
    w8, w4 = ql.weight_int8.astype(np.int32), ql.weight4_effective()
    keep = slots >= 0
    return tuple(np.where(keep, w[..., np.maximum(slots, 0)], 0) for w in (w8, w4))


HALVES_MAX_POSITIONS = 64  # conv layers with at most this many output positions per sample take `_halves_accumulate`


def _takes_halves(ql: QuantizedLayer, el, rank: int, one_chunk: bool) -> bool:
    """Whether the layer multiplies doubled codes by constant weights (`_halves_accumulate`).

    2-D matmul layers (one row per sample) and convs with few output positions per sample (at the
    calibration shape): there the weights are used few times per run, so picking them per run costs
    more than the doubled multiply-adds. Measured on MobileNetV2 (CPU time, one thread): its 7x7 layers
    this way took batch 1 from 2.53x to 2.34x FP32 and left batch 32 as it was (2.30x / 2.32x);
    adding the 14x14 layers made batch 1 slower again (2.51x). One float-exact chunk only.
    """
    if not one_chunk:
        return False
    if not ql.is_conv:
        return rank == 2
    if rank != 4:
        return False
    oh, ow = ql.geometry.output_hw(int(el.input_shape[2]), int(el.input_shape[3]))
    return oh * ow <= HALVES_MAX_POSITIONS


def _halves_accumulate(b: SubgraphBuilder, ql: QuantizedLayer, grouped: str, sel: _Selection, direct: bool,
                       shape_of: str, acc_name: str | None) -> tuple[str | None, str]:
    """Float-exact accumulator of a layer with constant weights: doubled codes times [8-bit | effective 4-bit].

    Where a run uses each weight few times (batch 1 through a 2-D matmul or a 7x7 conv), moving the
    weights costs most: a weight tensor picked per run is copied, and a GEMM operand or a conv filter
    that is not constant is packed again on every run (ONNX Runtime packs constant ones once, at
    session start). Here the Conv/MatMul reads one constant with 2 C input channels, the 8-bit codes
    then the effective 4-bit ones, and the codes are doubled instead: [x on 8-bit groups, 0 | 0, x on
    4-bit groups], one Mul by a per-rung [2, Gc] table row. Twice the multiply-adds. Every product
    is one of the mixed sum's or zero, so one float-exact chunk stays exact (`_takes_halves`).
    `grouped`: [B, Gc, G, *spatial] / [B, C, *spatial] (direct) for a conv, [Gc, G, T] / [C, T] for a
    matmul (`direct`: the one-group layout); `shape_of`: the layer's input, whose shape the doubled conv
    input follows.
    """
    slots = _weight_slots(ql, direct)
    w8, w4 = _weight_codes(ql, slots)
    gc, c2 = ql.group_count, 2 * len(slots)
    four, eight = np.array([0.0, 1.0], np.float32), np.array([1.0, 0.0], np.float32)
    if ql.is_conv:  # [B, 1, Gc, G, *sp] (or [B, 1, C, *sp]) times [1, 2, Gc, 1, ...]
        rank = len(ql.geometry.kernel_shape) + 2
        x = b.op("Unsqueeze", [grouped, b.const(np.array([1], np.int64), "axes")]) if b.opset >= 13 else \
            b.op("Unsqueeze", [grouped], axes=[1])
        x_rank = rank + (1 if direct else 2)
        shape = (1, 2, gc) + (1,) * (x_rank - 3)
        halves = sel.pick_shaped(*(np.broadcast_to(v.reshape((1, 2) + (1,) * (x_rank - 2)), shape) for v in (four, eight)),
                                 2, "halves")
        target = b.op("Add", [b.op("Shape", [shape_of]),
                              b.const(np.array([0, c2 - ql.in_channels] + [0] * (rank - 2), np.int64), "c2")])
        doubled = b.op("Reshape", [b.op("Mul", [x, halves]), target])
        geo = ql.geometry
        both = np.concatenate([w8, w4], axis=-1).transpose(0, 3, 1, 2).astype(np.float32)  # [N, 2C, R, S]
        acc_f = b.op("Conv", [doubled, b.const(both, "w8_w4eff")], strides=list(geo.strides),
                     dilations=list(geo.dilations), kernel_shape=list(geo.kernel_shape), pads=list(geo.pads))
    else:  # [Gc, G, T] (or [C, T]) times [2, Gc, 1, 1]
        shape = (2, gc, 1, 1)
        halves = sel.pick_shaped(*(np.broadcast_to(v.reshape(2, 1, 1, 1), shape) for v in (four, eight)), 1, "halves")
        doubled = b.op("Reshape", [b.op("Mul", [grouped, halves]), b.const(np.array([c2, -1], np.int64), "cols")])
        both = np.concatenate([w8.T, w4.T], axis=0).astype(np.float32)  # [2 C, N]
        acc_f = b.op("MatMul", [b.op("Transpose", [doubled], perm=[1, 0]), b.const(both, "w8_w4eff")])
    acc = b.op("Cast", [acc_f], out=acc_name, hint="acc", to=onnx.TensorProto.INT32) if acc_name else None
    return acc, acc_f


def _weights(b: SubgraphBuilder, ql: QuantizedLayer, sel: _Selection, float_exact: bool,
             slots: np.ndarray) -> tuple[str, list[str]]:
    """Mixed weight codes for Conv(Integer) [N, C, R, S] / MatMul(Integer) [C, N], plus zero points.

    C follows `slots` (`_weight_slots`). Selected per group on the grouped constant and reshaped, so
    the selection needs no expansion to channels: one Gather picks, for each group k, block k (8-bit
    codes) or block Gc + k (effective 4-bit codes) of the constant [N, 2 Gc, G, R, S] / [2 Gc, G, N].
    It copies whole G x R x S blocks; the broadcasting Where it replaces went element by element,
    about a fifth of a batch-1 MobileNetV2 run (docs/architecture.md, "Decisions" (simulation vs speed)).
    """
    gc = ql.group_count
    g = len(slots) // gc
    w8, w4 = _weight_codes(ql, slots)
    if ql.is_conv:  # [N, R, S, C] -> [N, C, R, S], grouped [N, Gc, G, R, S]
        w8, w4 = w8.transpose(0, 3, 1, 2), w4.transpose(0, 3, 1, 2)
        final_shape = w8.shape
        w8, w4 = (w.reshape(w.shape[0], gc, g, *w.shape[2:]) for w in (w8, w4))
        group_axis = 1
    else:  # [N, C] -> [C, N], grouped [Gc, G, N]
        w8, w4 = w8.T, w4.T
        final_shape = w8.shape
        w8, w4 = w8.reshape(gc, g, -1), w4.reshape(gc, g, -1)
        group_axis = 0
    blocks = sel.pick(np.arange(gc, 2 * gc, dtype=np.int64), np.arange(gc, dtype=np.int64), (gc,), "w_blocks")
    if float_exact:
        dtype, offset, zps = np.float32, 0, []
    elif ql.act_signed:
        dtype, offset, zps = np.int8, 0, []
    else:
        dtype, offset = np.uint8, 128
        zps = [b.const(np.array(0, np.uint8), "x_zp"), b.const(np.array(offset, np.uint8), "w_zp")]
    both = np.concatenate([w8, w4], axis=group_axis) + offset
    w = b.op("Gather", [b.const(both.astype(dtype), "w8_w4eff"), blocks], axis=group_axis)
    return b.op("Reshape", [w, b.const(np.array(final_shape, np.int64), "shape")], hint="w_mixed"), zps


def _activation(b: SubgraphBuilder, y: str, act: Activation, alpha: float, beta: float, out: str) -> None:
    """The epilogue activation written with the same elementary float32 ops as the reference.

    NONE keeps an Identity: ONNX Runtime drops it, but only after its fusions, and without it the
    epilogue's bias Add would fuse with a following residual Add and LayerNormalization
    (SkipLayerNormalization, another float32 rounding order: MiniLM's outputs changed).
    """
    one = b.const(1.0)
    if act == Activation.NONE:
        b.op("Identity", [y], out=out)
    elif act == Activation.RELU:
        b.op("Relu", [y], out=out)
    elif act == Activation.CLIP:
        b.op("Clip", [y, b.const(alpha), b.const(beta)], out=out)
    elif act == Activation.HARD_SWISH:
        gate = b.op("Clip", [b.op("Add", [b.op("Div", [y, b.const(6.0)]), b.const(0.5)]), b.const(0.0), one])
        b.op("Mul", [y, gate], out=out)
    elif act in (Activation.SILU, Activation.SIGMOID):
        denom = b.op("Add", [one, b.op("Exp", [b.op("Neg", [y])])])
        b.op("Div", [y if act == Activation.SILU else one, denom], out=out)
    elif act == Activation.LEAKY_RELU:
        b.op("Where", [b.op("Less", [y, b.const(0.0)]), b.op("Mul", [b.const(alpha), y]), y], out=out)
    elif act == Activation.HARD_SIGMOID:
        lin = b.op("Add", [b.op("Mul", [b.const(alpha), y]), b.const(beta)])
        b.op("Clip", [lin, b.const(0.0), one], out=out)
    elif act == Activation.GELU:
        erf = b.op("Erf", [b.op("Div", [y, b.const(float(np.sqrt(2.0)))])])
        b.op("Mul", [b.op("Mul", [b.const(0.5), y]), b.op("Add", [one, erf])], out=out)
    elif act == Activation.TANH:
        b.op("Tanh", [y], out=out)
    else:
        raise FlexiqInternalError(f"no simulation for activation {act!r}")


def _bias(b: SubgraphBuilder, ql: QuantizedLayer, sel: _Selection, vec: tuple[int, ...]) -> str:
    """The epilogue's bias: row k = number of 4-bit groups of the table [G_count + 1, N] (docs/design.md §2.8).

    Prefix mode: the row of the layer's rung, one Gather of the table shaped for broadcasting. Mask
    mode (the search's evaluator, any subset of groups): bias minus the summed shifts of exactly the
    4-bit groups, in float32 (a prefix mask gives row k up to float rounding). A layer without bias
    correction (all rows equal) keeps one constant.
    """
    table = ql.bias_table()
    if ql.group_bias_shift is None or bool(np.all(table == table[0])):
        return b.const(table[0].reshape(vec), "bias")
    if sel.rung is not None:
        return b.op("Gather", [b.const(table.reshape((-1, *vec)), "bias_rungs"), sel.rung], axis=0, hint="bias")
    on = b.op("Reshape", [b.op("Cast", [sel.mask], to=onnx.TensorProto.FLOAT),
                          b.const(np.array([1, -1], np.int64), "shape")])
    shift = b.op("MatMul", [on, b.const(ql.group_bias_shift.astype(np.float32), "group_bias_shift")])
    row = b.op("Sub", [b.const(table[:1], "bias"), shift])  # [1, N]
    return b.op("Reshape", [row, b.const(np.array(vec, np.int64), "shape")], hint="bias")


def float_exact_chunk(ql: QuantizedLayer) -> int:
    """Channels per float32 convolution/matmul chunk whose every partial sum stays exact.

    Effective codes are integers with |x| <= 128 (255 unsigned) and |w| <= 128, so a chunk of
    K_chunk reduction terms never leaves the float32 integer range 2^24 when
    K_chunk * |x|max * |w|max <= 2^24, whatever order the summation takes.
    """
    x_max = 128 if ql.act_signed else 255
    taps = ql.reduction_length // ql.padded_channels
    return max(1, (2**24 // (x_max * 128)) // taps)


def float_exact_bounds(ql: QuantizedLayer) -> list[int]:
    """Channel boundaries [0, .., C_pad] of the float32 chunks, from the layer's own weight codes.

    Any partial sum over a chunk, in any order, is at most |x|max * (sum over the chunk of |w|) for
    its output channel, so chunks grow greedily (in pi order) while that bound stays <= 2^24 for every
    output channel; |w| is the larger of the 8-bit and effective 4-bit code, so every mask is covered.
    Real weights rarely come near |w| = 128 everywhere (the `float_exact_chunk` worst case), so most
    layers need one chunk: no Slice, Cast or int32 Add per run.
    """
    x_max = 128 if ql.act_signed else 255
    w8 = np.abs(ql.weight_int8.astype(np.int64))
    w4 = np.abs(ql.weight4_effective().astype(np.int64))
    per_channel = np.maximum(w8, w4).reshape(w8.shape[0], -1, w8.shape[-1]).sum(axis=1)  # [N, C_pad]
    limit = 2**24 // x_max
    bounds, run = [0], np.zeros(per_channel.shape[0], np.int64)
    for c in range(per_channel.shape[1]):
        if np.any(run + per_channel[:, c] > limit):
            bounds.append(c)
            run[:] = 0
        run += per_channel[:, c]
    return bounds + [per_channel.shape[1]]


def _slice(b: SubgraphBuilder, t: str, lo: int, hi: int, axis: int) -> str:
    """t[lo:hi] along `axis`."""
    return b.op("Slice", [t, b.const(np.array([lo], np.int64), "lo"), b.const(np.array([hi], np.int64), "hi"),
                          b.const(np.array([axis], np.int64), "ax")])


def _float_exact_accumulate(b: SubgraphBuilder, ql: QuantizedLayer, x: str, w: str, out_shape: str | None,
                            acc_name: str | None) -> tuple[str | None, str]:
    """(int32 accumulator or None, the accumulator as float32) from float32 Conv/MatMul over exact chunks.

    `x`: codes [B, C_pad, H, W] (conv) or channel-major [C_pad, T] (matmul; each chunk is transposed
    into the MatMul, which ONNX Runtime fuses into one transposed-operand GEMM, and the [T, N] result
    is reshaped to `out_shape` when given). Chunks: `float_exact_bounds`. One chunk: its float result is the
    accumulator itself (an integer below 2^24, so the int32 round trip the epilogue would do is the
    identity and is left out; the int32 tensor is written only for `acc_name`). Several chunks: each
    is cast to int32 and the sum taken in int32.
    """
    bounds = float_exact_bounds(ql)
    parts = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        if len(bounds) == 2:
            xs, ws = x, w
        else:
            xs = _slice(b, x, lo, hi, 1 if ql.is_conv else 0)
            ws = _slice(b, w, lo, hi, 1 if ql.is_conv else 0)
        if ql.is_conv:
            geo = ql.geometry
            y = b.op("Conv", [xs, ws], strides=list(geo.strides), dilations=list(geo.dilations),
                     kernel_shape=list(geo.kernel_shape), pads=list(geo.pads))
        else:
            y = b.op("MatMul", [b.op("Transpose", [xs], perm=[1, 0]), ws])
        if out_shape is not None:
            y = b.op("Reshape", [y, out_shape])
        parts.append(y)
    if len(parts) == 1:
        acc = b.op("Cast", parts, out=acc_name, hint="acc", to=onnx.TensorProto.INT32) if acc_name else None
        return acc, parts[0]
    total = b.op("Cast", [parts[0]], to=onnx.TensorProto.INT32)
    for i, part in enumerate(parts[1:], start=2):  # int32 Add (Sum has no int32 kernel)
        total = b.op("Add", [total, b.op("Cast", [part], to=onnx.TensorProto.INT32)],
                     out=acc_name if i == len(parts) else None, hint="acc")
    return total, b.op("Cast", [total], to=onnx.TensorProto.FLOAT)


def layer_subgraph(el, ql: QuantizedLayer, rank: int, opset: int, mode: str = "prefix", debug_outputs: bool = False,
                   float_exact: bool = False, rungs: str | None = None) -> tuple[SubgraphBuilder, str | None]:
    """Standard-op nodes computing one FlexiQ layer from `el.input_name` into `el.output_name`.

    Returns the builder and the name of the int32 accumulator tensor (None when the float-exact
    accumulator needs no int32 tensor and `debug_outputs` is off). `float_exact` replaces
    ConvInteger/MatMulInteger by float32 Conv/MatMul over channel chunks small enough that every
    partial sum is an exactly representable integer (see `float_exact_chunk`): the same int32
    accumulator, several times faster in ONNX Runtime. `rungs`: the prefix mode's shared vector of
    4-bit group counts (`_rung_nodes`). A layer of one group whose accumulation needs no chunks reads
    its input channels as they are (no Gather, no padding): the group's max is order-free and the
    weights are written in the input's channel order instead.
    """
    b = SubgraphBuilder(sim_node_prefix(ql.layer_index), opset)
    sel = _selection(b, ql, mode, rungs)
    one_chunk = not float_exact or len(float_exact_bounds(ql)) == 2
    direct = ql.group_count == 1 and one_chunk
    grouped, g_axis, gshape = _grouped_codes(b, el.input_name, ql, rank, direct)
    mixed = _mixed_codes(b, grouped, ql, sel, g_axis, gshape)
    cp, cin = ql.padded_channels, ql.in_channels
    out_shape = None
    acc_name = acc_output_name(el.output_name) if debug_outputs else None
    if float_exact and _takes_halves(ql, el, rank, one_chunk):  # constant weights
        acc, acc_f = _halves_accumulate(b, ql, mixed, sel, direct, el.input_name, acc_name)
        return _epilogue(b, el, ql, sel, acc_f, rank, constant_weights=True), acc
    if ql.is_conv and not direct:  # [B, Gc, G, *spatial] -> [B, C_pad, *spatial]
        shape = b.op("Shape", [el.input_name])
        if cp > cin:
            shape = b.op("Add", [shape, b.const(np.array([0, cp - cin] + [0] * (rank - 2), np.int64), "pad_c")])
        mixed = b.op("Reshape", [mixed, shape], hint="x_mixed")
    elif not ql.is_conv:  # channel-major [C, T]; the accumulator [T, N] is reshaped to the input's leading dims + [N]
        if not direct:
            mixed = b.op("Reshape", [mixed, b.const(np.array([cp, -1], np.int64), "cols")], hint="x_mixed")
        if rank > 2:
            lead = _slice(b, b.op("Shape", [el.input_name]), 0, -1, 0)
            out_shape = b.op("Concat", [lead, b.const(np.array([ql.out_channels], np.int64), "n")], axis=0)
    w, zps = _weights(b, ql, sel, float_exact, _weight_slots(ql, direct))
    acc_f = None
    if float_exact:
        acc, acc_f = _float_exact_accumulate(b, ql, mixed, w, out_shape, acc_name)
    elif ql.is_conv:
        codes = b.op("Cast", [mixed], to=onnx.TensorProto.INT8 if ql.act_signed else onnx.TensorProto.UINT8)
        geo = ql.geometry
        pt, pl, pb, pr = geo.pads
        if any(geo.pads):
            codes = b.op("Pad", [codes, b.const(np.array([0, 0, pt, pl, 0, 0, pb, pr], np.int64), "pads")])
        acc = b.op("ConvInteger", [codes, w, *zps], out=acc_name, hint="acc", strides=list(geo.strides),
                   dilations=list(geo.dilations), kernel_shape=list(geo.kernel_shape), pads=[0, 0, 0, 0])
    else:
        codes = b.op("Cast", [mixed], to=onnx.TensorProto.INT8 if ql.act_signed else onnx.TensorProto.UINT8)
        acc = b.op("MatMulInteger", [b.op("Transpose", [codes], perm=[1, 0]), w, *zps],
                   out=acc_name if out_shape is None else None, hint="acc")
        if out_shape is not None:
            acc = b.op("Reshape", [acc, out_shape], out=acc_name, hint="acc")
    if acc_f is None:
        acc_f = b.op("Cast", [acc], to=onnx.TensorProto.FLOAT)
    return _epilogue(b, el, ql, sel, acc_f, rank), acc


def _epilogue(b: SubgraphBuilder, el, ql: QuantizedLayer, sel: _Selection, acc_f: str, rank: int,
              constant_weights: bool = False) -> SubgraphBuilder:
    """float(acc) * out_scale + bias row, then the activation, into `el.output_name`; returns `b`.

    After a Conv with constant weights the scale is the output of a node (a row of a per-rung table of
    equal rows, or a Where on the mask): ONNX Runtime folds a constant per-channel Mul after such a
    Conv into its weights (ConvMulFusion), which would round the products instead of the sum.
    """
    vec = (1, ql.out_channels) + (1,) * (rank - 2) if ql.is_conv else (ql.out_channels,)
    scale = ql.out_scale().reshape(vec)
    scale = sel.run_dependent(scale, "out_scale") if constant_weights and ql.is_conv else b.const(scale, "out_scale")
    bias = _bias(b, ql, sel, vec)
    y = b.op("Add", [b.op("Mul", [acc_f, scale]), bias], hint="y")
    _activation(b, y, ql.activation, ql.activation_alpha, ql.activation_beta, el.output_name)
    return b


def write_simulation_model(prepared_model: onnx.ModelProto, layers: Sequence[tuple], metadata: dict | None = None,
                           mode: str = "prefix", debug_outputs: bool = False,
                           float_exact: bool = False) -> onnx.ModelProto:
    """The simulation ONNX (standard ops only); `layers` = [(EligibleLayer, QuantizedLayer)].

    `debug_outputs` adds each layer's int32 accumulator as a graph output named
    `acc_output_name(el.output_name)`.
    """
    if mode not in MODES:
        raise ConfigError(f"simulation mode must be one of {MODES}, got {mode!r}")
    num_layers = check_layer_pairs(layers)
    idx = GraphIndex(prepared_model)
    opset = idx.opset("")
    reps, extra_outputs, rungs = [], [], None
    inputs = [runtime_input_info(num_layers)] if mode == "prefix" else []
    if mode == "prefix":
        shared, rungs = _rung_nodes([ql for _, ql in layers], opset)
        reps.append(Replacement([], shared.nodes, shared.initializers, description="4-bit group counts of all layers"))
    for el, ql in layers:
        shape = idx.shape(el.input_name)
        rank = len(shape) if shape is not None else len(el.input_shape)
        b, acc = layer_subgraph(el, ql, rank, opset, mode, debug_outputs, float_exact, rungs)
        reps.append(Replacement(locate_nodes(idx, el), b.nodes, b.initializers,
                                description=f"{el.name} -> simulation subgraph"))
        if mode == "mask":
            inputs.append(onnx.helper.make_tensor_value_info(mask_input_name(ql.layer_index), onnx.TensorProto.BOOL,
                                                             [ql.group_count]))
        if debug_outputs:
            extra_outputs.append(onnx.helper.make_tensor_value_info(acc, onnx.TensorProto.INT32, [None] * rank))
    model = apply_replacements(prepared_model, reps, new_inputs=inputs, new_outputs=extra_outputs)
    set_metadata(model, metadata or {})
    check_written(model, "simulation model")
    log.info("simulation model: %d FlexiQ layer(s) in %s mode", len(layers), mode)
    return model
