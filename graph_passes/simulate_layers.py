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


def _pow2_shift(b: SubgraphBuilder, mag_max: str, signed: bool) -> str:
    """2^p from the group's max magnitude: 1 + [m>=t0] + 2[m>=t1] + 4[m>=t2] + 8[m>=t3] (m integer-valued)."""
    thresholds = (8, 16, 32, 64) if signed else (16, 32, 64, 128)
    total = None
    for weight, t in zip((1.0, 2.0, 4.0, 8.0), thresholds, strict=True):
        hit = b.op("Cast", [b.op("Greater", [mag_max, b.const(t - 0.5)])], to=onnx.TensorProto.FLOAT)
        term = hit if weight == 1.0 else b.op("Mul", [hit, b.const(weight)])
        total = term if total is None else b.op("Add", [total, term])
    return b.op("Add", [total, b.const(1.0)], hint="pow2")


def _effective(b: SubgraphBuilder, q: str, ql: QuantizedLayer) -> str:
    """Effective 4-bit codes of every channel (float, integer-valued), same shape as `q`."""
    g, gc, signed = ql.group_size, ql.group_count, ql.act_signed
    if ql.is_conv:  # [B, C_pad, H, W] -> [B, Gc, G, H*W]; shift per pixel and group
        grouped = b.op("Reshape", [q, b.const(np.array([0, gc, g, -1], np.int64), "shape")])
        static_shape = (1, gc, 1, 1)
    else:  # [..., C_pad] -> [M, Gc, G]; shift per row and group
        grouped = b.op("Reshape", [q, b.const(np.array([-1, gc, g], np.int64), "shape")])
        static_shape = (1, gc, 1)
    if ql.act_shift_mode == ShiftMode.DYNAMIC:
        mag = grouped
        if signed:  # q ^ (q >> 7) == max(q, -q - 1) for integer q
            mag = b.op("Max", [grouped, b.op("Sub", [b.op("Neg", [grouped]), b.const(1.0)])])
        pow2 = _pow2_shift(b, b.reduce_max(mag, axis=2), signed)
    else:
        p = ql.act_static_shift.astype(np.int64).reshape(static_shape)
        pow2 = b.const(np.left_shift(1, p).astype(np.float32), "pow2")
    half = b.op("Mul", [pow2, b.const(0.5)])
    q4 = b.op("Floor", [b.op("Div", [b.op("Add", [grouped, half]), pow2])])
    lo, hi = (-8.0, 7.0) if signed else (0.0, 15.0)
    q4 = b.op("Clip", [q4, b.const(lo), b.const(hi)])
    eff = b.op("Mul", [q4, pow2])
    return b.op("Reshape", [eff, b.op("Shape", [q])], hint="eff")


def _channel_mask(b: SubgraphBuilder, ql: QuantizedLayer, mode: str) -> str:
    """Bool [C_pad]: which permuted channels are 4-bit."""
    cp, g = ql.padded_channels, ql.group_size
    if mode == "prefix":
        n4 = b.op("Gather", [RUNTIME_INPUT, b.const(np.array(ql.layer_index, np.int64), "li")], axis=0)
        n4 = b.op("Clip", [b.op("Cast", [n4], to=onnx.TensorProto.FLOAT), b.const(0.0), b.const(float(cp))])
        n4 = b.op("Mul", [b.op("Floor", [b.op("Div", [n4, b.const(float(g))])]), b.const(float(g))], hint="n4")
        return b.op("Less", [b.const(np.arange(cp, dtype=np.float32), "arange"), n4], hint="mask")
    groups = b.op("Cast", [mask_input_name(ql.layer_index)], to=onnx.TensorProto.FLOAT)
    spread = b.op("Mul", [b.op("Reshape", [groups, b.const(np.array([-1, 1], np.int64), "shape")]),
                          b.const(np.ones((1, g), np.float32), "ones")])
    flat = b.op("Reshape", [spread, b.const(np.array([cp], np.int64), "shape")])
    return b.op("Greater", [flat, b.const(0.5)], hint="mask")


def _weights(b: SubgraphBuilder, ql: QuantizedLayer, mask: str, float_exact: bool = False) -> tuple[str, list[str]]:
    """Mixed weight codes for ConvInteger [N, C_pad, R, S] / MatMulInteger [C_pad, N], plus zero points."""
    g = ql.group_size
    w8 = ql.weight_int8.astype(np.int32)
    pw = np.repeat(ql.weight_shift.astype(np.int32), g, axis=1)  # [N, C_pad]
    pw = pw.reshape((pw.shape[0],) + (1,) * (w8.ndim - 2) + (pw.shape[1],))
    w4 = np.left_shift(ql.weight_int4.astype(np.int32), pw)
    if ql.is_conv:  # [N, R, S, C] -> [N, C, R, S]
        w8, w4 = w8.transpose(0, 3, 1, 2), w4.transpose(0, 3, 1, 2)
        mask_w = b.op("Reshape", [mask, b.const(np.array([1, -1, 1, 1], np.int64), "shape")])
    else:  # [N, C] -> [C, N]
        w8, w4 = w8.T, w4.T
        mask_w = b.op("Reshape", [mask, b.const(np.array([-1, 1], np.int64), "shape")])
    if float_exact:
        dtype, offset, zps = np.float32, 0, []
    elif ql.act_signed:
        dtype, offset, zps = np.int8, 0, []
    else:
        dtype, offset = np.uint8, 128
        zps = [b.const(np.array(0, np.uint8), "x_zp"), b.const(np.array(offset, np.uint8), "w_zp")]
    w = b.op("Where", [mask_w, b.const((w4 + offset).astype(dtype), "w4eff"),
                       b.const((w8 + offset).astype(dtype), "w8")], hint="w_mixed")
    return w, zps


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


def float_exact_chunk(ql: QuantizedLayer) -> int:
    """Channels per float32 convolution/matmul chunk whose every partial sum stays exact.

    Effective codes are integers with |x| <= 128 (255 unsigned) and |w| <= 128, so a chunk of
    K_chunk reduction terms never leaves the float32 integer range 2^24 when
    K_chunk * |x|max * |w|max <= 2^24, whatever order the summation takes.
    """
    x_max = 128 if ql.act_signed else 255
    taps = ql.reduction_length // ql.padded_channels
    return max(1, (2**24 // (x_max * 128)) // taps)


def _slice(b: SubgraphBuilder, t: str, lo: int, hi: int, axis: int) -> str:
    """t[lo:hi] along `axis`."""
    return b.op("Slice", [t, b.const(np.array([lo], np.int64), "lo"), b.const(np.array([hi], np.int64), "hi"),
                          b.const(np.array([axis], np.int64), "ax")])


def _float_exact_accumulate(b: SubgraphBuilder, ql: QuantizedLayer, x: str, w: str, axis: int,
                            acc_name: str | None) -> str:
    """int32 accumulator from float32 Conv/MatMul over channel chunks (each exact), summed in int32."""
    cp, chunk = ql.padded_channels, float_exact_chunk(ql)
    bounds = list(range(0, cp, chunk)) + [cp]
    parts = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        if len(bounds) == 2:
            xs, ws = x, w
        else:
            xs = _slice(b, x, lo, hi, axis)
            ws = _slice(b, w, lo, hi, 1 if ql.is_conv else 0)
        if ql.is_conv:
            geo = ql.geometry
            y = b.op("Conv", [xs, ws], strides=list(geo.strides), dilations=list(geo.dilations),
                     kernel_shape=list(geo.kernel_shape), pads=list(geo.pads))
        else:
            y = b.op("MatMul", [xs, ws])
        parts.append(b.op("Cast", [y], to=onnx.TensorProto.INT32))
    total = parts[0]
    for i, part in enumerate(parts[1:], start=2):  # int32 Add (Sum has no int32 kernel)
        total = b.op("Add", [total, part], out=acc_name if i == len(parts) else None, hint="acc")
    return total if len(parts) > 1 else b.op("Identity", parts, out=acc_name, hint="acc")


def layer_subgraph(el, ql: QuantizedLayer, rank: int, opset: int, mode: str = "prefix",
                   debug_outputs: bool = False, float_exact: bool = False) -> tuple[SubgraphBuilder, str]:
    """Standard-op nodes computing one FlexiQ layer from `el.input_name` into `el.output_name`.

    Returns the builder and the name of the int32 accumulator tensor. `float_exact` replaces
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
    x = b.op("Gather", [x, b.const(ql.permutation.astype(np.int64), "perm")], axis=axis)
    lo, hi = (-127.0, 127.0) if ql.act_signed else (0.0, 255.0)
    q = b.op("Clip", [b.op("Round", [b.op("Div", [x, b.const(np.float32(ql.act_scale))])]), b.const(lo),
                      b.const(hi)], hint="q")
    mask = _channel_mask(b, ql, mode)
    mask_x = b.op("Reshape", [mask, b.const(np.array([1, -1, 1, 1], np.int64), "shape")]) if ql.is_conv else mask
    mixed = b.op("Where", [mask_x, _effective(b, q, ql), q], hint="x_mixed")
    w, zps = _weights(b, ql, mask, float_exact)
    acc_name = acc_output_name(el.output_name) if debug_outputs else None
    if float_exact:
        acc = _float_exact_accumulate(b, ql, mixed, w, axis, acc_name)
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
        acc = b.op("MatMulInteger", [codes, w, *zps], out=acc_name, hint="acc")
    vec = (1, -1, 1, 1) if ql.is_conv else (-1,)
    scale = b.const(ql.out_scale().reshape(vec), "out_scale")
    bias = b.const(ql.bias.astype(np.float32).reshape(vec), "bias")
    y = b.op("Add", [b.op("Mul", [b.op("Cast", [acc], to=onnx.TensorProto.FLOAT), scale]), bias], hint="y")
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
