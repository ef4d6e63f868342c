"""The NumPy layer reference: one-GEMM form == literal per-group form; conv == direct convolution."""

import numpy as np
import pytest

from flexiq_trt.plugin_spec import CONV_OP, GEMM_OP, Activation, ShiftMode
from flexiq_trt.quantization import bits, reference
from flexiq_trt.quantization.layer import ConvGeometry, QuantizedLayer


def random_layer(rng, conv, c_in=40, n=12, g=32, signed=True, mode=ShiftMode.DYNAMIC, geo=None):
    c_pad = -(-c_in // g) * g
    perm = np.concatenate([rng.permutation(c_in), np.arange(c_in, c_pad)]).astype(np.int32)
    shape = (n, *(geo.kernel_shape if conv else ()), c_pad)
    return QuantizedLayer(
        name="l", op_type=CONV_OP if conv else GEMM_OP, layer_index=0, group_size=g, in_channels=c_in,
        out_channels=n, permutation=perm, act_scale=0.05, act_signed=signed, act_shift_mode=mode,
        act_static_shift=rng.integers(0, 5, c_pad // g).astype(np.int8),
        weight_int8=rng.integers(-127, 128, shape).astype(np.int8),
        weight_int4=rng.integers(-8, 8, shape).astype(np.int8),
        weight_step=rng.integers(1, 17, c_pad // g).astype(np.int8),
        weight_scale=rng.uniform(0.001, 0.01, n).astype(np.float32),
        bias=rng.normal(size=n).astype(np.float32), activation=Activation.NONE, geometry=geo)


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("mode", [ShiftMode.DYNAMIC, ShiftMode.STATIC])
def test_effective_gemm_equals_per_group_accumulation(signed, mode):
    rng = np.random.default_rng(3)
    layer = random_layer(rng, conv=False, c_in=70, signed=signed, mode=mode)
    x = rng.normal(scale=3.0, size=(9, 70)).astype(np.float32)
    if not signed:
        x = np.abs(x)
    xp = reference.permute_channels(x, layer.permutation, layer.in_channels, axis=-1)
    q = bits.quantize_activation(xp, layer.act_scale, signed)
    for n4 in range(0, layer.padded_channels + 1, layer.group_size):
        acc, _ = reference.gemm_forward(layer, x, n4)
        spec = reference.ActShiftSpec(mode, layer.act_static_shift.astype(np.int32))
        _, p = reference.activation_codes_mixed(q, n4, layer.group_size, signed, spec)
        lit = reference.mixed_gemm_int32_grouped(q, p, layer.weight_int8, layer.weight_int4,
                                                 layer.weight_step.astype(np.int32), n4, layer.group_size, signed)
        assert np.array_equal(acc, lit), n4


def test_n4_is_clamped_and_rounded_down():
    rng = np.random.default_rng(4)
    layer = random_layer(rng, conv=False, c_in=64)
    x = rng.normal(size=(3, 64)).astype(np.float32)
    a0 = reference.gemm_forward(layer, x, 0)[0]
    assert np.array_equal(reference.gemm_forward(layer, x, -5)[0], a0)
    assert np.array_equal(reference.gemm_forward(layer, x, 31)[0], a0)
    assert np.array_equal(reference.gemm_forward(layer, x, 10**6)[0], reference.gemm_forward(layer, x, 64)[0])


@pytest.mark.parametrize("geo", [
    ConvGeometry((3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    ConvGeometry((3, 3), (2, 2), (0, 1, 2, 0), (1, 1)),
    ConvGeometry((3, 2), (1, 2), (2, 2, 2, 2), (2, 1)),
    ConvGeometry((1, 1), (2, 1), (0, 0, 0, 0), (1, 1)),
])
def test_conv_int8_path_equals_direct_convolution(geo):
    """At n4 = 0 the conv accumulator is a plain integer convolution of codes (checked by direct loops)."""
    rng = np.random.default_rng(5)
    layer = random_layer(rng, conv=True, c_in=33, n=5, geo=geo)
    x = rng.normal(scale=2.0, size=(2, 33, 7, 6)).astype(np.float32)
    acc, _ = reference.conv_forward(layer, x, 0)
    q = bits.quantize_activation(x, layer.act_scale)
    w = np.zeros((5, 33) + geo.kernel_shape, dtype=np.int64)  # undo the permutation: [N, C, R, S]
    w8 = layer.weight_int8.astype(np.int64)
    for pos, c in enumerate(layer.permutation):
        if c < 33:
            w[:, c] = w8[:, :, :, pos]
    (r, s), (sh, sw), (pt, pl, pb, pr), (dh, dw) = geo.kernel_shape, geo.strides, geo.pads, geo.dilations
    qp = np.pad(q, ((0, 0), (0, 0), (pt, pb), (pl, pr))).astype(np.int64)
    p_out, q_out = geo.output_hw(7, 6)
    assert acc.shape == (2, 5, p_out, q_out)
    for oh in range(p_out):
        for ow in range(q_out):
            patch = qp[:, :, oh * sh:oh * sh + dh * (r - 1) + 1:dh, ow * sw:ow * sw + dw * (s - 1) + 1:dw]
            assert np.array_equal(acc[:, :, oh, ow], np.einsum("bcrs,ncrs->bn", patch, w))


def test_conv_equals_gemm_for_1x1():
    rng = np.random.default_rng(6)
    geo = ConvGeometry()
    conv = random_layer(rng, conv=True, c_in=64, n=8, geo=geo)
    from dataclasses import replace
    gemm = replace(conv, op_type=GEMM_OP, geometry=None, weight_int8=conv.weight_int8[:, 0, 0],
                   weight_int4=conv.weight_int4[:, 0, 0])
    x = rng.normal(size=(2, 64, 3, 4)).astype(np.float32)
    for n4 in (0, 32, 64):
        a_conv = reference.conv_forward(conv, x, n4)[0]
        a_gemm = reference.gemm_forward(gemm, np.transpose(x, (0, 2, 3, 1)), n4)[0]
        assert np.array_equal(a_conv, np.transpose(a_gemm, (0, 3, 1, 2)))


def test_epilogue_scale_and_activation():
    rng = np.random.default_rng(7)
    layer = random_layer(rng, conv=False, c_in=32, n=4)
    acc = np.array([[100, -100, 0, 7]], dtype=np.int32)
    y = reference.epilogue(acc, layer, -1)
    expect = acc.astype(np.float32) * (np.float32(layer.act_scale) * layer.weight_scale) + layer.bias
    assert np.array_equal(y, expect.astype(np.float32))
