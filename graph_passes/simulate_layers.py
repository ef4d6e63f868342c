"""Write `<stem>.flexiq-sim.onnx`: each FlexiQ layer rebuilt from standard ONNX ops (docs/design.md §2, §3).

The integer part is bit-exact with `quantization.reference`: codes and effective 4-bit codes are
formed in float where every value is a small integer (so every op is exact), the 4-bit rounding is
``Floor((q + 2^(p-1)) / 2^p)`` with a power-of-two divisor, and the accumulation runs in
ConvInteger/MatMulInteger. Unsigned layers use u8 activations with u8 weights offset by 128 and a
weight zero point of 128: u8 x u8 kernels widen before multiplying, whereas u8 x s8 kernels on CPUs
without VNNI may saturate 16-bit pair sums.

Modes: "prefix" reads `flexiq_max_4bit_ch` int32 [L] (the runtime contract); "mask" gives every
layer a bool input `flexiq_group_mask_<layer_index>` [G_count] saying which groups, in pi order,
are 4-bit (the selection search's fast evaluator).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

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


def pow2_table(signed: bool) -> np.ndarray:
    """2^p for every group max magnitude m (index 0..255): p = how many shift thresholds m reaches.

    The thresholds are the reference's (8, 16, 32, 64 signed; 16, 32, 64, 128 unsigned); one
    Gather on this table replaces the 17 comparison ops of the formula
    1 + [m>=t0] + 2[m>=t1] + 4[m>=t2] + 8[m>=t3].
    """
    thresholds = np.array((8, 16, 32, 64) if signed else (16, 32, 64, 128))
    m = np.arange(256)[:, None]
    return np.left_shift(1, np.count_nonzero(m >= thresholds[None], axis=1)).astype(np.float32)


EIGHT_BIT_ROW = 256  # row of the per-group tables that 8-bit groups read (2^0, the 8-bit code bound)


def group_tables(signed: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(2^p, 2^-p, upper code bound) per row: rows 0..255 for a 4-bit group of max magnitude m, row 256 for 8-bit."""
    pow2 = np.concatenate([pow2_table(signed), [1.0]]).astype(np.float32)
    hi = np.full(EIGHT_BIT_ROW + 1, 7.0 if signed else 15.0, np.float32)
    hi[EIGHT_BIT_ROW] = 127.0 if signed else 255.0
    return pow2, (1.0 / pow2).astype(np.float32), hi


def _group_mask(b: SubgraphBuilder, ql: QuantizedLayer, mode: str) -> str:
    """Bool [Gc]: which groups (in pi order) are 4-bit.

    Prefix mode: group k is 4-bit iff (k+1)*G <= n4 (n4 = flexiq_max_4bit_ch[layer]; out-of-range
    values need no clip: below 0 no group passes, above C_pad every group does; a partial group is
    8-bit, as the runtime rounds n4 down to whole groups).
    """
    if mode == "mask":
        return mask_input_name(ql.layer_index)
    n4 = b.op("Gather", [RUNTIME_INPUT, b.const(np.array(ql.layer_index, np.int64), "li")], axis=0)
    ends = (np.arange(ql.group_count, dtype=np.float32) + 1.0) * ql.group_size - 0.5
    return b.op("Less", [b.const(ends, "group_ends"), b.op("Cast", [n4], to=onnx.TensorProto.FLOAT)], hint="mask")


def _mixed_codes(b: SubgraphBuilder, grouped: str, ql: QuantizedLayer, gmask: str) -> str:
    """Codes of every channel, the effective 4-bit ones on 4-bit groups (float, integer-valued), grouped shape.

    `grouped` holds the codes as [B, Gc, G, H, W] (conv) or [Gc, G, T] (matmul, T = rows). The reference's
    Floor((q + 2^(p-1)) / 2^p), clipped, times 2^p is written as Min(Floor(q / 2^p + 0.5), hi) * 2^p,
    which is the same number: q / 2^p is exact (a power of two; |q| < 2^8), adding 0.5 is exact
    (at most 13 significant bits), and with a dynamic shift the lower clip bound is never reached
    (2^p is chosen from the group's max magnitude m < 8 * 2^p, so q >= -(m + 1) >= -8 * 2^p signed;
    q >= 0 unsigned). A static signed shift keeps the lower bound (one Max). On 8-bit groups the
    per-group factors are 2^0 and the bound is the 8-bit code range, so the same five element-wise
    ops give q unchanged there (Floor(q + 0.5) = q for integer q): no Where over activations. The
    per-group values (2^p and the bound) come from one Gather each on [.., Gc, 1, ..] tensors
    (`group_tables`, the 8-bit row picked by the mask).
    """
    gc, signed = ql.group_count, ql.act_signed
    g_axis, gshape = (2, (1, gc, 1, 1, 1)) if ql.is_conv else (1, (gc, 1, 1))
    gmask = b.op("Reshape", [gmask, b.const(np.array(gshape, np.int64), "shape")])
    pow2_rows, _, hi_rows = group_tables(signed)
    if ql.act_shift_mode == ShiftMode.DYNAMIC:
        mag = b.reduce("ReduceMax", grouped, axis=g_axis)
        if signed:  # max over the group of max(q, -q - 1) = max(max q, -1 - min q)
            mag = b.op("Max", [mag, b.op("Sub", [b.const(-1.0), b.reduce("ReduceMin", grouped, axis=g_axis)])])
        eight = b.op("Where", [gmask, b.const(0.0), b.const(float(EIGHT_BIT_ROW))])
        row = b.op("Cast", [b.op("Max", [mag, eight])], to=onnx.TensorProto.INT64)  # m <= 255 < 256
    else:
        p = ql.act_static_shift.astype(np.int64).reshape(gshape)
        first_row = np.array([int(np.flatnonzero(pow2_rows == 2.0**k)[0]) for k in range(5)], np.int64)
        row = b.op("Where", [gmask, b.const(first_row[p], "rows"), b.const(np.array(EIGHT_BIT_ROW, np.int64))])
    pow2 = b.op("Gather", [b.const(pow2_rows, "pow2_rows"), row], axis=0)
    hi = b.op("Gather", [b.const(hi_rows, "hi_rows"), row], axis=0)
    q4 = b.op("Min", [b.op("Floor", [b.op("Add", [b.op("Div", [grouped, pow2]), b.const(0.5)])]), hi])
    if signed and ql.act_shift_mode != ShiftMode.DYNAMIC:  # a static 2^p may be too small for the codes
        q4 = b.op("Max", [q4, b.op("Where", [gmask, b.const(-8.0), b.const(-127.0)])])
    return b.op("Mul", [q4, pow2], hint="x_mixed")


def _weights(b: SubgraphBuilder, ql: QuantizedLayer, gmask: str, float_exact: bool) -> tuple[str, list[str]]:
    """Mixed weight codes for ConvInteger [N, C_pad, R, S] / MatMulInteger [C_pad, N], plus zero points.

    Selected per group on the grouped constant and reshaped, so the group mask needs no expansion to
    channels: one Gather picks, for each group k, block k (8-bit codes) or block Gc + k (effective
    4-bit codes) of the constant [N, 2 Gc, G, R, S] / [2 Gc, G, N]. It copies whole G x R x S blocks;
    the broadcasting Where it replaces went element by element, about a fifth of a batch-1
    MobileNetV2 run (docs/architecture.md, "Decisions" (simulation vs speed)).
    """
    g, gc = ql.group_size, ql.group_count
    w8 = ql.weight_int8.astype(np.int32)
    pw = np.repeat(ql.weight_shift.astype(np.int32), g, axis=1)  # [N, C_pad]
    pw = pw.reshape((pw.shape[0],) + (1,) * (w8.ndim - 2) + (pw.shape[1],))
    w4 = np.left_shift(ql.weight_int4.astype(np.int32), pw)
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
    blocks = b.op("Where", [gmask, b.const(np.arange(gc, 2 * gc, dtype=np.int64), "w4_blocks"),
                            b.const(np.arange(gc, dtype=np.int64), "w8_blocks")])
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
    """The epilogue activation written with the same elementary float32 ops as the reference."""
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


def _bias(b: SubgraphBuilder, ql: QuantizedLayer, gmask: str, vec: tuple[int, ...], mode: str) -> str:
    """The epilogue's bias: row k = number of 4-bit groups of the table [G_count + 1, N] (docs/design.md §2.8).

    Prefix mode: the mask is `(g+1)*G <= n4`, so its count of true entries is Floor(Clip(n4, 0, C_pad) / G),
    the kernels' rung. Mask mode (the search's evaluator, any subset of groups): bias minus the summed
    shifts of exactly the 4-bit groups, in float32 (a prefix mask gives row k up to float rounding).
    A layer without bias correction (all rows equal) keeps one constant.
    """
    table = ql.bias_table()
    if ql.group_bias_shift is None or bool(np.all(table == table[0])):
        return b.const(table[0].reshape(vec), "bias")
    if mode == "mask":
        on = b.op("Reshape", [b.op("Cast", [gmask], to=onnx.TensorProto.FLOAT),
                              b.const(np.array([1, -1], np.int64), "shape")])
        shift = b.op("MatMul", [on, b.const(ql.group_bias_shift.astype(np.float32), "group_bias_shift")])
        row = b.op("Sub", [b.const(table[:1], "bias"), shift])  # [1, N]
        return b.op("Reshape", [row, b.const(np.array(vec, np.int64), "shape")], hint="bias")
    count = b.op("Cast", [gmask], to=onnx.TensorProto.INT64)
    if b.opset >= 13:  # ReduceSum took its axes as an input from opset 13 on
        rung = b.op("ReduceSum", [count, b.const(np.array([0], np.int64), "axes")], keepdims=1)
    else:
        rung = b.op("ReduceSum", [count], axes=[0], keepdims=1)
    row = b.op("Gather", [b.const(table, "bias_rungs"), rung], axis=0)  # [1, N]
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
    pw = np.repeat(ql.weight_shift.astype(np.int64), ql.group_size, axis=1)  # [N, C_pad]
    w4 = np.abs(np.left_shift(ql.weight_int4.astype(np.int64), pw.reshape(pw.shape[0], *(1,) * (w8.ndim - 2), -1)))
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
    is reshaped to `out_shape`). Chunks: `float_exact_bounds`. One chunk: its float result is the
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
            y = b.op("Reshape", [b.op("MatMul", [b.op("Transpose", [xs], perm=[1, 0]), ws]), out_shape])
        parts.append(y)
    if len(parts) == 1:
        acc = b.op("Cast", parts, out=acc_name, hint="acc", to=onnx.TensorProto.INT32) if acc_name else None
        return acc, parts[0]
    total = b.op("Cast", [parts[0]], to=onnx.TensorProto.INT32)
    for i, part in enumerate(parts[1:], start=2):  # int32 Add (Sum has no int32 kernel)
        total = b.op("Add", [total, b.op("Cast", [part], to=onnx.TensorProto.INT32)],
                     out=acc_name if i == len(parts) else None, hint="acc")
    return total, b.op("Cast", [total], to=onnx.TensorProto.FLOAT)


def layer_subgraph(el, ql: QuantizedLayer, rank: int, opset: int, mode: str = "prefix",
                   debug_outputs: bool = False, float_exact: bool = False) -> tuple[SubgraphBuilder, str | None]:
    """Standard-op nodes computing one FlexiQ layer from `el.input_name` into `el.output_name`.

    Returns the builder and the name of the int32 accumulator tensor (None when the float-exact
    accumulator needs no int32 tensor and `debug_outputs` is off). `float_exact` replaces
    ConvInteger/MatMulInteger by float32 Conv/MatMul over channel chunks small enough that every
    partial sum is an exactly representable integer (see `float_exact_chunk`): the same int32
    accumulator, several times faster in ONNX Runtime. The search's evaluator uses it; the shipped
    simulation artifact keeps the integer operators (docs/design.md §3).
    """
    b = SubgraphBuilder(sim_node_prefix(ql.layer_index), opset)
    cp, cin = ql.padded_channels, ql.in_channels
    axis = 1 if ql.is_conv else rank - 1
    x = el.input_name
    if cp > cin:
        pads = np.zeros(2 * rank, np.int64)
        pads[rank + axis] = cp - cin
        x = b.op("Pad", [x, b.const(pads, "pads")])
    shape = b.op("Shape", [x])
    lo, hi = (-127.0, 127.0) if ql.act_signed else (0.0, 255.0)
    q = b.op("Clip", [b.op("Round", [b.op("Div", [x, b.const(np.float32(ql.act_scale))])]), b.const(lo),
                      b.const(hi)], hint="q")
    # pi order and groups in one Gather: indices [Gc, G] give [B, Gc, G, H, W] (conv) / [Gc, G, T] (matmul)
    perm = b.const(ql.permutation.astype(np.int64).reshape(ql.group_count, ql.group_size), "perm")
    if ql.is_conv:  # channels are axis 1: each gathered index copies a whole H x W plane
        grouped = b.op("Gather", [q, perm], axis=1, hint="q_grouped")
    else:  # channels last: gather rows of the transposed [C_pad, T] (a per-element Gather is ~3x slower)
        rows = b.op("Transpose", [b.op("Reshape", [q, b.const(np.array([-1, cp], np.int64), "rows")])], perm=[1, 0])
        grouped = b.op("Gather", [rows, perm], axis=0, hint="q_grouped")
    gmask = _group_mask(b, ql, mode)
    out_shape = None
    if ql.is_conv:
        mixed = b.op("Reshape", [_mixed_codes(b, grouped, ql, gmask), shape], hint="x_mixed")
    else:  # channel-major [C_pad, T]; the accumulator [T, N] is reshaped to the input's leading dims + [N]
        mixed = b.op("Reshape", [_mixed_codes(b, grouped, ql, gmask), b.const(np.array([cp, -1], np.int64), "cols")],
                     hint="x_mixed")
        lead = _slice(b, shape, 0, -1, 0)
        out_shape = b.op("Concat", [lead, b.const(np.array([ql.out_channels], np.int64), "n")], axis=0)
    w, zps = _weights(b, ql, gmask, float_exact)
    acc_name = acc_output_name(el.output_name) if debug_outputs else None
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
        acc = b.op("MatMulInteger", [b.op("Transpose", [codes], perm=[1, 0]), w, *zps])
        acc = b.op("Reshape", [acc, out_shape], out=acc_name, hint="acc")
    if acc_f is None:
        acc_f = b.op("Cast", [acc], to=onnx.TensorProto.FLOAT)
    vec = (1, -1, 1, 1) if ql.is_conv else (-1,)
    scale = b.const(ql.out_scale().reshape(vec), "out_scale")
    bias = _bias(b, ql, gmask, vec, mode)
    y = b.op("Add", [b.op("Mul", [acc_f, scale]), bias], hint="y")
    _activation(b, y, ql.activation, ql.activation_alpha, ql.activation_beta, el.output_name)
    return b, acc


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
    reps, extra_outputs = [], []
    inputs = [runtime_input_info(num_layers)] if mode == "prefix" else []
    for el, ql in layers:
        shape = idx.shape(el.input_name)
        rank = len(shape) if shape is not None else len(el.input_shape)
        b, acc = layer_subgraph(el, ql, rank, opset, mode, debug_outputs, float_exact)
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
    log.info("simulation model: %d FlexiQ layer(s) in %s mode", len(reps), mode)
    return model
