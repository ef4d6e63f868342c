"""Random QuantizedLayers matched to eligible layers of tiny models, and ORT helpers."""

from __future__ import annotations

import numpy as np
import onnx
from _utils.ort_run import session, tensor_values  # noqa: F401  (re-exported to the graph-pass tests)

from flexiq_trt.intake import find_layers, prepare_model
from flexiq_trt.plugin_spec import CONV_OP, ShiftMode, padded_channels
from flexiq_trt.quantization.layer import QuantizedLayer


def eligible_of(model: onnx.ModelProto, group_size: int):
    """(prepared model, eligible layers) of a model."""
    prepared = prepare_model(model)
    eligible, _ = find_layers(prepared, group_size)
    return prepared, eligible


def random_quantized(el, layer_index: int, group_size: int, signed: bool, shift_mode: ShiftMode,
                     seed: int) -> QuantizedLayer:
    """Random codes, shifts and permutation with the shapes/geometry/activation of `el`."""
    rng = np.random.default_rng(seed)
    cin, n = el.in_channels, el.out_channels
    cp = padded_channels(cin, group_size)
    gc = cp // group_size
    perm = np.concatenate([rng.permutation(cin), cin + rng.permutation(cp - cin)]).astype(np.int32)
    taps = tuple(el.weight.shape[2:]) if el.is_conv else ()
    w8 = rng.integers(-127, 128, size=(n, *taps, cp)).astype(np.int8)
    w4 = rng.integers(-8, 8, size=(n, *taps, cp)).astype(np.int8)
    w8[..., cin:] = 0
    w4[..., cin:] = 0
    layer = QuantizedLayer(
        name=el.name, op_type=el.plugin_op, layer_index=layer_index, group_size=group_size, in_channels=cin,
        out_channels=n, permutation=perm, act_scale=float(rng.uniform(0.005, 0.02)), act_signed=signed,
        act_shift_mode=shift_mode, act_static_shift=rng.integers(0, 5, gc).astype(np.int8),
        weight_int8=w8, weight_int4=w4, weight_step=rng.integers(1, 17, gc).astype(np.int8),
        weight_scale=rng.uniform(1e-4, 1e-3, n).astype(np.float32),
        bias=rng.standard_normal(n).astype(np.float32), activation=el.activation,
        activation_alpha=el.activation_alpha, activation_beta=el.activation_beta,
        geometry=el.geometry if el.op_type == "Conv" else None)
    assert (layer.op_type == CONV_OP) == el.is_conv
    layer.validate()
    return layer


def random_input(shape, conv: bool, signed: bool, seed: int) -> np.ndarray:
    """Inputs whose channels span magnitudes 1e-3..2 (every shift 0..4 and saturation occur)."""
    rng = np.random.default_rng(seed + 1000)
    x = rng.standard_normal(shape).astype(np.float32)
    axis = 1 if conv else -1
    mags = np.logspace(-3, 0.3, shape[axis]).astype(np.float32)
    rng.shuffle(mags)
    bshape = [1] * len(shape)
    bshape[axis] = shape[axis]
    x = x * mags.reshape(bshape)
    return np.abs(x) if not signed else x




def faithful_quantized(el, layer_index: int, group_size: int, act_max: float, seed: int) -> QuantizedLayer:
    """Honest int8 quantization of `el`'s float weights (random permutation): n4 = 0 tracks the float model."""
    rng = np.random.default_rng(seed)
    cin, n = el.in_channels, el.out_channels
    cp = padded_channels(cin, group_size)
    perm = np.concatenate([rng.permutation(cin), cin + rng.permutation(cp - cin)]).astype(np.int32)
    w = el.weight.astype(np.float32)
    s_w = (np.abs(w.reshape(n, -1)).max(axis=1) / 127).astype(np.float32)
    codes = np.clip(np.rint(w / s_w.reshape((-1,) + (1,) * (w.ndim - 1))), -127, 127).astype(np.int8)
    if el.is_conv:
        codes = codes.transpose(0, 2, 3, 1)  # [N, R, S, C]
    padded = np.zeros(codes.shape[:-1] + (cp,), np.int8)
    padded[..., :cin] = codes
    w8 = padded[..., perm]
    gc = cp // group_size
    layer = QuantizedLayer(
        name=el.name, op_type=el.plugin_op, layer_index=layer_index, group_size=group_size, in_channels=cin,
        out_channels=n, permutation=perm, act_scale=float(act_max / 127), act_signed=not el.input_nonnegative,
        act_shift_mode=ShiftMode.DYNAMIC, act_static_shift=np.zeros(gc, np.int8), weight_int8=w8,
        weight_int4=np.clip(w8 >> 4, -8, 7).astype(np.int8), weight_step=np.full(gc, 16, np.int8),
        weight_scale=s_w, bias=el.bias, activation=el.activation, activation_alpha=el.activation_alpha,
        activation_beta=el.activation_beta, geometry=el.geometry if el.is_conv else None)
    layer.validate()
    return layer
