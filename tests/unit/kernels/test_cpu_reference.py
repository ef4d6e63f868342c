"""The C++ CPU reference (plugins/reference) against the NumPy reference: int32 bit-exact.

The contract primitives of plugins/common/flexiqContract.h are swept exhaustively over every
8-bit code and activation step (docs/design.md §2.5); whole layers over a randomized sweep of
gemm/conv, signedness, shift modes, geometry, G and every n4; and hand-worked golden vectors pin the
meaning (docs/design.md §2).
INT8 edges (docs/design.md §2.3): the codes read from and written to INT8 tensors match the NumPy
oracle's quantizer, and a layer fed INT8 codes matches the NumPy reference fed the float input.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from flexiq_kernel_ctypes import (
    HostLayer,
    Int8Io,
    activation_codes,
    code_values,
    cpu_forward,
    random_input,
    random_layer,
)

from flexiq_trt.plugin_spec import Activation, ShiftMode, clamp_n4
from flexiq_trt.quantization import bits, reference
from flexiq_trt.quantization.layer import ConvGeometry

SIGNEDNESS = [True, False]


# ---- contract primitives ---------------------------------------------------------------------

@pytest.mark.parametrize("signed", SIGNEDNESS)
def test_int8_edge_codes_match_numpy(cpu_ref, signed):
    stored = np.arange(-128, 128)
    got = [cpu_ref.flexiqCpuActivationCodeFromInt8(int(v), int(signed)) for v in stored]
    np.testing.assert_array_equal(got, code_values(stored.astype(np.int8), signed))
    assert got[0] == (-127 if signed else 128)  # a foreign -128 (0x80): clamped, or the u8 code 128
    rng = np.random.default_rng(3)
    scale = np.float32(0.0213)
    ties = (np.arange(-300, 300) + 0.5).astype(np.float32) * scale
    y = np.concatenate([rng.normal(0, 3, 2000).astype(np.float32), ties, np.float32([0.0, -0.0, 1e30, -1e30])])
    bits_out = [cpu_ref.flexiqCpuActivationCodeBits(float(v), float(scale), int(signed)) for v in y]
    want = bits.quantize_activation(y, float(scale), signed)
    np.testing.assert_array_equal(np.array(bits_out), want & 0xFF)  # the byte an INT8 output stores
    np.testing.assert_array_equal(activation_codes(y, float(scale), signed).view(np.uint8), want & 0xFF)
    # Reading the stored byte back gives the code: an INT8 edge round-trips every code exactly.
    np.testing.assert_array_equal(code_values(np.array(bits_out, np.uint8).view(np.int8), signed), want)


@pytest.mark.parametrize("signed", SIGNEDNESS)
def test_extract4_and_effective_codes_match_numpy_for_every_code_and_step(cpu_ref, signed):
    codes = np.arange(-128, 256)  # beyond the valid codes too: the C++ floor division must hold there as well
    for s in range(1, bits.MAX_STEP + 1):
        want4 = bits.extract4_step(codes, np.int32(s), signed)
        want_eff = bits.effective_codes_step(codes, np.int32(s), signed)
        got4 = [cpu_ref.flexiqCpuExtract4Step(int(c), s, int(signed)) for c in codes]
        got_eff = [cpu_ref.flexiqCpuEffectiveCodeStep(int(c), s, int(signed)) for c in codes]
        np.testing.assert_array_equal(got4, want4, err_msg=f"extract4_step s={s}")
        np.testing.assert_array_equal(got_eff, want_eff, err_msg=f"effective s={s}")
    # Power-of-two steps (static shifts) are the shift rule (q + 2^(p-1)) >> p.
    valid = np.arange(-127, 128) if signed else np.arange(0, 256)
    for p in range(bits.MAX_SHIFT + 1):
        got = [cpu_ref.flexiqCpuExtract4Step(int(c), 1 << p, int(signed)) for c in valid]
        np.testing.assert_array_equal(got, bits.extract4(valid, np.int32(p), signed), err_msg=f"p={p}")


@pytest.mark.parametrize("signed", SIGNEDNESS)
def test_group_step_rule_matches_numpy(cpu_ref, signed):
    codes = np.arange(-127, 128) if signed else np.arange(0, 256)
    mags = [cpu_ref.flexiqCpuMagnitudeBits(int(c), int(signed)) for c in codes]
    np.testing.assert_array_equal(mags, bits.magnitude_bits(codes, signed))
    maxima = np.arange(0, 256)
    got = [cpu_ref.flexiqCpuActStepFromMagnitude(int(m), int(signed)) for m in maxima]
    np.testing.assert_array_equal(got, bits.act_step(maxima, signed))
    # The rule's definition: smallest integer step with every truncated code (floor(q / s)) in 4 bits.
    lo, hi = (-8, 7) if signed else (0, 15)
    for c in codes:
        s = cpu_ref.flexiqCpuActStepFromMagnitude(cpu_ref.flexiqCpuMagnitudeBits(int(c), int(signed)), int(signed))
        assert lo <= (int(c) // s) <= hi and (s == 1 or not lo <= (int(c) // (s - 1)) <= hi), (c, s)


@pytest.mark.parametrize("signed", SIGNEDNESS)
def test_quantize_activation_matches_numpy_including_ties_and_saturation(cpu_ref, signed):
    rng = np.random.default_rng(1)
    scale = np.float32(0.0371)
    ties = (np.arange(-300, 300) + 0.5).astype(np.float32) * scale
    x = np.concatenate([rng.normal(0, 3, 2000).astype(np.float32), ties,
                        np.float32([0.0, -0.0, 1e30, -1e30, np.inf, -np.inf])])
    got = [cpu_ref.flexiqCpuQuantizeActivation(float(v), float(scale), int(signed)) for v in x]
    np.testing.assert_array_equal(got, bits.quantize_activation(x, float(scale), signed))


def test_clamp_n4_and_nibble_unpack_match_python(cpu_ref):
    for g in (32, 64):
        for n4 in (-5, 0, 1, 31, 32, 33, 64, 95, 96, 97, 1000):
            assert cpu_ref.flexiqCpuClampN4(n4, 96 if g == 32 else 128, g) == clamp_n4(n4, 96 if g == 32 else 128, g)
    codes = np.tile(np.arange(-8, 8), 4)
    packed = np.ascontiguousarray(bits.pack_int4(codes))
    got = [cpu_ref.flexiqCpuUnpackNibble(packed.ctypes.data, i, 1) for i in range(codes.size)]
    np.testing.assert_array_equal(got, codes)
    np.testing.assert_array_equal(got, bits.unpack_int4(packed))


@pytest.mark.parametrize("act", list(Activation))
def test_activation_matches_numpy(cpu_ref, act):
    y = np.linspace(-8, 8, 401).astype(np.float32)
    alpha, beta = {Activation.CLIP: (-0.5, 0.75), Activation.LEAKY_RELU: (0.1, 0.0),
                   Activation.HARD_SIGMOID: (0.2, 0.5)}.get(act, (0.0, 0.0))
    got = np.float32([cpu_ref.flexiqCpuApplyActivation(float(v), int(act), alpha, beta) for v in y])
    want = reference.apply_activation(y, act, alpha, beta)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-7)


# ---- golden vectors (hand-worked, docs/design.md §2) -----------------------------------------------------

def test_design_worked_example(cpu_ref):
    """docs/design.md §2.5's example: the group's MAXIMUM magnitude 41 gives s = 41 // 8 + 1 = 6."""
    codes = [41, -23, 6, -1]
    mag_max = max(cpu_ref.flexiqCpuMagnitudeBits(c, 1) for c in codes)
    s = cpu_ref.flexiqCpuActStepFromMagnitude(mag_max, 1)
    assert (mag_max, s) == (41, 6)
    assert [cpu_ref.flexiqCpuExtract4Step(c, s, 1) for c in codes] == [7, -4, 1, 0]
    assert [cpu_ref.flexiqCpuEffectiveCodeStep(c, s, 1) for c in codes] == [42, -24, 6, 0]
    # Maximum, not OR: 64 | 63 = 127 would give step 16; the maximum 64 gives 9.
    assert cpu_ref.flexiqCpuActStepFromMagnitude(max(64, 63), 1) == 9
    assert cpu_ref.flexiqCpuExtract4Step(45, 6, 1) == 7  # 45 / 6 = 7.5 rounds up to 8: the top carry saturates
    assert cpu_ref.flexiqCpuExtract4Step(127, 16, 1) == 7
    assert cpu_ref.flexiqCpuEffectiveCodeStep(-127, 16, 1) == -128


def _golden_gemm_layer(rng):
    """One row whose first group holds the worked example; all 4-bit weights 1 (weight steps 3 and 5, not powers
    of two), 8-bit weights 1."""
    layer = random_layer(rng, conv=False, in_channels=64, out_channels=2)
    layer.permutation = np.arange(64, dtype=np.int32)
    layer.act_scale = 1.0
    layer.weight_int8[:] = 1
    layer.weight_int4[:] = 1
    layer.weight_step = np.array([3, 5], np.int8)
    layer.weight_scale[:] = 1.0
    layer.bias[:] = 0.5
    return layer


def test_bias_rung_is_row_n4_over_g(cpu_ref):
    """The epilogue adds row k = clamp(n4) / G of the [G_count + 1, N] bias table (docs/design.md §2.8)."""
    layer = _golden_gemm_layer(np.random.default_rng(0))
    layer.group_bias_shift = np.array([[0.25, -1.0], [2.0, 0.5]])  # table rows 0.5, [0.25, 1.5], [-1.75, 1.0]
    table = layer.bias_table()
    np.testing.assert_array_equal(table, np.float32([[0.5, 0.5], [0.25, 1.5], [-1.75, 1.0]]))
    x = np.zeros((1, 64), np.float32)
    host = HostLayer.from_layer(layer)
    for n4, row in ((0, 0), (31, 0), (32, 1), (63, 1), (64, 2), (10_000, 2), (-3, 0)):
        acc, y = cpu_forward(cpu_ref, host, x, n4)
        assert not acc.any()  # zero input: the output is the bias row itself
        np.testing.assert_array_equal(y, table[row][None], err_msg=f"n4={n4}")
        np.testing.assert_array_equal(y, reference.gemm_forward(layer, x, n4)[1])


def test_golden_gemm_accumulators(cpu_ref):
    layer = _golden_gemm_layer(np.random.default_rng(0))
    x = np.zeros((1, 64), np.float32)
    x[0, :4] = [45, -23, 6, -1]
    x[0, 32:35] = [100, -3, 2]
    host = HostLayer.from_layer(layer)
    acc0, y0 = cpu_forward(cpu_ref, host, x, 0)
    assert acc0.tolist() == [[27 + 99, 27 + 99]]  # all 8-bit: plain sums of codes
    np.testing.assert_array_equal(y0, [[126.5, 126.5]])
    acc32, _ = cpu_forward(cpu_ref, host, x, 32)
    # group 0 in 4-bit: max magnitude 45 -> s = 6, q4 = [7 (saturated), -4, 1, 0]: (7 - 4 + 1 + 0) * 6 * s_w[0];
    # step_w[0] = 3 for every output channel.
    assert acc32.tolist() == [[72 + 99, 72 + 99]]
    acc_all, _ = cpu_forward(cpu_ref, host, x, 10_000)  # clamped to C_pad = 64
    # group 1: codes [100, -3, 2] -> s = 100 // 8 + 1 = 13, q4 = [7 (100 / 13 = 7.7, saturated), 0, 0] -> 91 * s_w[1] = 455.
    assert acc_all.tolist() == [[72 + 455, 72 + 455]]
    acc_rounded, _ = cpu_forward(cpu_ref, host, x, 63)  # rounds down to 32
    np.testing.assert_array_equal(acc_rounded, acc32)


# ---- randomized sweep against the NumPy reference -------------------------------------------------

def _check_layer(cpu_ref, layer, x):
    host = HostLayer.from_layer(layer)
    for n4 in range(0, layer.padded_channels + 1, layer.group_size):
        want_acc, want_y = reference.layer_forward(layer, x, n4)
        got_acc, got_y = cpu_forward(cpu_ref, host, x, n4)
        np.testing.assert_array_equal(got_acc, want_acc, err_msg=f"{layer.name} n4={n4}")
        np.testing.assert_allclose(got_y, want_y, rtol=1e-5, atol=1e-5, err_msg=f"{layer.name} n4={n4}")


GEMM_CASES = [  # (in_channels, out_channels, rows, G)
    (32, 8, 1, 32), (45, 17, 7, 32), (96, 33, 5, 32), (64, 8, 3, 64), (150, 24, 9, 64),
]


@pytest.mark.parametrize("signed", SIGNEDNESS)
@pytest.mark.parametrize("mode", list(ShiftMode))
@pytest.mark.parametrize("case", GEMM_CASES)
def test_gemm_matches_numpy_for_every_n4(cpu_ref, case, mode, signed):
    cin, cout, rows, g = case
    rng = np.random.default_rng(hash((case, int(mode), signed)) % 2**32)
    layer = random_layer(rng, conv=False, in_channels=cin, out_channels=cout, group_size=g, signed=signed,
                         shift_mode=mode, activation=Activation(rng.integers(0, len(Activation))))
    _check_layer(cpu_ref, layer, random_input(rng, layer, rows, 1, 1, signed))


CONV_CASES = [  # (in_ch, out_ch, batch, H, W, G, geometry)
    (32, 8, 1, 5, 5, 32, ConvGeometry((1, 1))),
    (40, 6, 2, 6, 7, 32, ConvGeometry((3, 3), (1, 1), (1, 1, 1, 1))),
    (64, 5, 1, 9, 8, 32, ConvGeometry((3, 3), (2, 2), (1, 0, 1, 2))),
    (70, 4, 1, 9, 9, 64, ConvGeometry((3, 2), (1, 2), (2, 1, 0, 1), (2, 1))),
    (33, 3, 2, 4, 6, 32, ConvGeometry((5, 5), (1, 1), (2, 2, 2, 2), (1, 1))),
    (64, 7, 1, 7, 7, 64, ConvGeometry((1, 1), (2, 2))),
]


@pytest.mark.parametrize("signed", SIGNEDNESS)
@pytest.mark.parametrize("mode", list(ShiftMode))
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"c{c[0]}n{c[1]}k{c[6].kernel_shape}s{c[6].strides}")
def test_conv_matches_numpy_for_every_n4(cpu_ref, case, mode, signed):
    cin, cout, batch, h, w, g, geo = case
    rng = np.random.default_rng(abs(hash((cin, cout, h, w, int(mode), signed))) % 2**32)
    layer = random_layer(rng, conv=True, in_channels=cin, out_channels=cout, group_size=g, signed=signed,
                         shift_mode=mode, geometry=geo, activation=Activation(rng.integers(0, len(Activation))))
    _check_layer(cpu_ref, layer, random_input(rng, layer, batch, h, w, signed))


def test_grouped_and_effective_formulations_agree_through_the_cpu_reference(cpu_ref):
    """The C++ literal per-group sum ((x4 . w4) * s_a * step_w[g]) equals NumPy's literal form on a gemm (a third
    implementation); the random weight steps include non-powers of two."""
    rng = np.random.default_rng(7)
    layer = random_layer(rng, conv=False, in_channels=96, out_channels=9)
    x = random_input(rng, layer, 6, 1, 1, True)
    xq = bits.quantize_activation(reference.permute_channels(x, layer.permutation, 96, -1), layer.act_scale)
    steps = bits.group_step(xq.reshape(6, 3, 32), True, axis=-1)
    assert any(s & (s - 1) for s in layer.weight_step.tolist())
    want = reference.mixed_gemm_int32_grouped(xq, steps, layer.weight_int8, layer.weight_int4,
                                              layer.weight_step, 64, 32)
    got, _ = cpu_forward(cpu_ref, HostLayer.from_layer(layer), x, 64)
    np.testing.assert_array_equal(got, want)


# ---- error paths -----------------------------------------------------------------------------

def test_invalid_layer_is_rejected_with_a_reason(cpu_ref):
    rng = np.random.default_rng(3)
    layer = random_layer(rng, conv=False, in_channels=32, out_channels=4)
    host = HostLayer.from_layer(layer)
    host.args.groupSize = 48
    with pytest.raises(ValueError, match="group_size must be 32 or 64"):
        cpu_forward(cpu_ref, host, np.zeros((1, 32), np.float32), 0)


def test_k_limit_is_enforced(cpu_ref):
    rng = np.random.default_rng(4)
    layer = random_layer(rng, conv=False, in_channels=32, out_channels=1, signed=False)
    host = HostLayer.from_layer(layer)
    host.args.paddedChannels = 66_336  # > 66,311 for u8 x s8 (pointers unused: rejected first)
    with pytest.raises(ValueError, match="int32 accumulator limit"):
        cpu_forward(cpu_ref, host, np.zeros((1, 32), np.float32), 0)
    assert ctypes.sizeof(host.args) > 0


# ---- the int8 backends' effective weights -------------------------------------------------------

@pytest.mark.parametrize("group_size", [32, 64])
def test_effective_weights_match_numpy(cpu_ref, group_size):
    """flexiq::makeEffectiveWeights (what DeviceWeights uploads as weightEffective) = w4 * step_w[g(k)] of
    the NumPy oracle for every element of a conv's [N, K = R * S * C_pad], the extremes -128 and 112 included."""
    if not hasattr(cpu_ref, "flexiqCpuEffectiveWeights"):
        pytest.skip("stale libflexiq_cpu_reference.so without flexiqCpuEffectiveWeights (rebuild it)")
    rng = np.random.default_rng(40 + group_size)
    layer = random_layer(rng, conv=True, in_channels=150, out_channels=9, group_size=group_size,
                         geometry=ConvGeometry((3, 2), (1, 1), (1, 0, 1, 1)))
    layer.weight_step[1], layer.weight_step[-1] = 16, 16
    layer.weight_int4.reshape(9, -1)[0, layer.group_size:layer.group_size + 2] = (-8, 7)  # group 1: -128, 112
    host = HostLayer.from_layer(layer)
    k = host.arrays["weightInt8"].shape[1]
    got = np.full((layer.out_channels, k), 99, np.int8)
    assert cpu_ref.flexiqCpuEffectiveWeights(ctypes.byref(host.args), got.ctypes.data) == 0
    steps = np.tile(np.repeat(layer.weight_step.astype(np.int32), group_size), 3 * 2)
    want = layer.weight_int4.reshape(layer.out_channels, -1).astype(np.int32) * steps
    assert want.min() >= -128 and want.max() <= 112
    np.testing.assert_array_equal(got.astype(np.int32), want)
    np.testing.assert_array_equal(host.arrays["weightEffective"], got)  # the harness's buffer is the same
    assert got[0, group_size] == -128 and got[0, group_size + 1] == 112


# ---- INT8 edges on whole layers ----------------------------------------------------------------

@pytest.mark.parametrize("conv", [False, True], ids=["gemm", "conv"])
@pytest.mark.parametrize("signed", SIGNEDNESS)
def test_int8_edge_layer_matches_numpy_reference(cpu_ref, conv, signed):
    """INT8 input codes give the NumPy reference's accumulators of the float input; INT8 output codes
    are the oracle's quantization of its float output (up to the epilogue's float rounding)."""
    rng = np.random.default_rng(21 + conv + 2 * signed)
    geo = ConvGeometry((3, 3), (1, 1), (1, 1, 1, 1)) if conv else None
    layer = random_layer(rng, conv=conv, in_channels=70, out_channels=12, signed=signed, geometry=geo,
                         activation=Activation.SILU)
    x = random_input(rng, layer, 2, 5, 4, signed) if conv else random_input(rng, layer, 9, 1, 1, signed)
    _, y = cpu_forward(cpu_ref, HostLayer.from_layer(layer), x, 0)
    scale = float(np.abs(y).max()) / 120.0
    host = HostLayer.from_layer(layer, Int8Io(True, True, scale, True))
    codes = activation_codes(x, layer.act_scale, signed)
    for n4 in (0, 32, layer.padded_channels):
        want_acc, want_y = reference.layer_forward(layer, x, n4)  # NumPy oracle, float input
        acc, out = cpu_forward(cpu_ref, host, codes, n4, output_int8=True)
        _, float_y = cpu_forward(cpu_ref, host, x, n4)
        np.testing.assert_array_equal(acc, want_acc, err_msg=f"n4={n4}")
        np.testing.assert_array_equal(out, activation_codes(float_y, scale, True), err_msg=f"n4={n4}")
        # Against the oracle's own float output: the same code, or a neighbour where exp() rounds differently.
        diff = np.abs(out.astype(np.int32) - activation_codes(want_y, scale, True).astype(np.int32))
        assert diff.max() <= 1 and (diff == 0).mean() > 0.99, f"n4={n4}"
