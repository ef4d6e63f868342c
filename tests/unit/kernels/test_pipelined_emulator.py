"""The pipelined kernels (cp.async + ldmatrix multistage) run by the CPU CTA emulator.

tests/unit/kernels/emulation/flexiqWarpEmulator.cpp runs plugins/kernels/flexiqPipelinedGemm.cuh with
one std::thread per CUDA thread, shared memory, __syncthreads, cp.async that lands only at
wait_group, ldmatrix by the ISA table, and bounds/race checks on every access. Here:
  * int32 accumulators bit-exact with the C++ CPU reference for both pipelined backends, every
    tile configuration, tile-edge shapes (M, N, K not multiples of the tiles), every n4, both shift
    modes, s8/u8, G = 32/64, conv and gemm, FP32/FP16 I/O;
  * INT8 edges (docs/design.md §2.3) on every emulated backend: INT8 input codes and INT8 output codes
    (s8 and u8) bit-exact with the CPU reference, and an INT8 input gives the float input's results;
  * the int8 backend's 4-bit K-tiles read the effective weights (weightEffective): a wrong element changes
    exactly its output channel, and only once its group is 4-bit;
  * planted faults (off-by-one, missing barrier, missing wait) are each caught by a check;
  * the shared-memory swizzle is a bijection and bank-conflict free for every ldmatrix phase.
A larger sweep is in the slow tier (FLEXIQ_SLOW=1).
"""

from __future__ import annotations

import numpy as np
import pytest
from flexiq_kernel_ctypes import (
    TILE_SHAPES,
    TILES,
    EmulatorCheckFailed,
    HostLayer,
    Int8Io,
    activation_codes,
    build_emulator,
    cpu_forward,
    emulate,
    random_input,
    random_layer,
)

from flexiq_trt.plugin_spec import Activation, ShiftMode
from flexiq_trt.quantization.layer import ConvGeometry


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    lib = build_emulator(tmp_path_factory.mktemp("emulator") / "libflexiq_cta_emulator.so")
    if lib is None:
        pytest.skip("the CTA emulator needs g++ (C++20) and the CUDA headers (cuda_runtime_api.h)")
    return lib


@pytest.fixture(scope="module")
def fault_emulator(tmp_path_factory):
    """The emulator built with FLEXIQ_FAULT_INJECTION: the kernel commits the fault set at run time."""
    lib = build_emulator(tmp_path_factory.mktemp("emulator_faults") / "libflexiq_cta_emulator_faults.so",
                         ("FLEXIQ_FAULT_INJECTION",))
    if lib is None:
        pytest.skip("the CTA emulator needs g++ (C++20) and the CUDA headers (cuda_runtime_api.h)")
    return lib


# (conv?, batch/rows, in_ch, out_ch, H, W, G, geometry, signed, mode, tile, fp16)
CASES = [
    (False, 65, 96, 65, 1, 1, 32, None, True, ShiftMode.DYNAMIC, "64x64", False),  # one past the tile in M and N
    (False, 7, 150, 9, 1, 1, 64, None, False, ShiftMode.STATIC, "64x64", True),  # C_in not a multiple of G
    (False, 130, 64, 70, 1, 1, 64, None, True, ShiftMode.DYNAMIC, "128x64", False),  # 2 x 2 CTAs of 128 x 64
    (False, 20, 64, 130, 1, 1, 32, None, False, ShiftMode.DYNAMIC, "128x128", True),  # N one past 128 + 2
    (True, 2, 40, 12, 6, 5, 32, ConvGeometry((3, 3), (1, 1), (1, 1, 1, 1)), True, ShiftMode.DYNAMIC, "64x64", False),
    (True, 1, 64, 70, 9, 8, 32, ConvGeometry((3, 3), (2, 2), (1, 0, 1, 2)), True, ShiftMode.STATIC, "128x64", True),
    (True, 1, 70, 5, 9, 9, 64, ConvGeometry((3, 2), (1, 2), (2, 1, 0, 1), (2, 1)), False, ShiftMode.DYNAMIC,
     "64x64", False),
    # many groups, 1x1: every n4 puts the 4-bit / 8-bit boundary at another stage, so the steady-state rounds
    # of kStages K-tiles (128-row tiles), the single tiles before the first aligned 8-bit tile and after the
    # last round, and the drain all run (docs/performance.md, "Unrolled steady state")
    (False, 9, 640, 20, 1, 1, 64, None, True, ShiftMode.DYNAMIC, "128x128", False),
    (False, 9, 416, 20, 1, 1, 32, None, False, ShiftMode.STATIC, "128x64", True),
]


def _case_id(c) -> str:
    return f"{'conv' if c[0] else 'gemm'}{c[1]}x{c[2]}x{c[3]}g{c[6]}{'s8' if c[8] else 'u8'}_{c[10]}_{'fp16' if c[11] else 'fp32'}"


def _check_case(emulator, cpu_ref, case, backend, n4_values=None):
    conv, batch, cin, cout, h, w, g, geo, signed, mode, tile, fp16 = case
    rng = np.random.default_rng(cin * 1000 + cout + int(fp16))
    layer = random_layer(rng, conv=conv, in_channels=cin, out_channels=cout, group_size=g, signed=signed,
                         shift_mode=mode, geometry=geo, activation=Activation.HARD_SWISH, layer_index=1)
    x = random_input(rng, layer, batch, h, w, signed)
    if fp16:
        x = x.astype(np.float16).astype(np.float32)  # the values the fp16 kernel sees
    host = HostLayer.from_layer(layer)
    for n4 in n4_values or range(0, layer.padded_channels + 1, g):
        want_acc, want_y = cpu_forward(cpu_ref, host, x, n4)
        got_acc, got_y = emulate(emulator, host, x, np.array([-5, n4 + g - 1, 999], np.int32), backend, tile, fp16)
        np.testing.assert_array_equal(got_acc, want_acc, err_msg=f"{backend} {tile} n4={n4}")
        if fp16:
            np.testing.assert_array_equal(got_y, want_y.astype(np.float16).astype(np.float32),
                                          err_msg=f"{backend} {tile} n4={n4}")
        else:
            np.testing.assert_allclose(got_y, want_y, rtol=1e-6, atol=1e-6, err_msg=f"{backend} {tile} n4={n4}")


@pytest.mark.parametrize("backend", ["int4_pipe", "int8_pipe"])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_pipelined_kernels_bit_exact_with_cpu_reference(emulator, cpu_ref, case, backend):
    _check_case(emulator, cpu_ref, case, backend)


# ---- INT8 edges: INT8 input codes and INT8 output codes -----------------------------------------------

# (case as above, backend, int8 input?, int8 output as "s8"/"u8"/None): every backend, s8 and u8 on
# both sides, a few shapes; not a cross product (the default tier's time stays about where it was).
INT8_CASES = [
    (CASES[0], "int4_pipe", True, "s8"),
    (CASES[1], "int8_pipe", True, "u8"),
    (CASES[4], "int4", False, "u8"),
    (CASES[6], "int8", True, None),
    (CASES[5], "int8_pipe", False, "s8"),  # FP16 input, INT8 output
    (CASES[2], "int4_pipe", True, None),
    (CASES[3], "int8", True, "s8"),
]


def _int8_case_id(c) -> str:
    case, backend, int8_in, out = c
    return f"{_case_id(case)}_{backend}_in{'8' if int8_in else 'F'}_out{out or 'F'}"


@pytest.mark.parametrize("int8_case", INT8_CASES, ids=_int8_case_id)
def test_int8_edges_bit_exact_with_cpu_reference(emulator, cpu_ref, int8_case):
    case, backend, int8_in, out = int8_case
    conv, batch, cin, cout, h, w, g, geo, signed, mode, tile, fp16 = case
    rng = np.random.default_rng(cin * 1000 + cout + 7)
    layer = random_layer(rng, conv=conv, in_channels=cin, out_channels=cout, group_size=g, signed=signed,
                         shift_mode=mode, geometry=geo, activation=Activation.GELU, layer_index=1)
    x = random_input(rng, layer, batch, h, w, signed)
    if fp16:
        x = x.astype(np.float16).astype(np.float32)  # the values the fp16 kernel sees
    codes = activation_codes(x, layer.act_scale, signed)  # what an INT8 edge into this layer carries
    _, y_float = cpu_forward(cpu_ref, HostLayer.from_layer(layer), x, layer.padded_channels)
    # The consumers' scale puts the outputs across the whole code range (and saturates the largest).
    out_scale = float(np.abs(y_float).max()) / (150.0 if out == "s8" else 300.0) if out else 1.0
    host = HostLayer.from_layer(layer, Int8Io(int8_in, out is not None, out_scale, out == "s8"))
    x_in = codes if int8_in else x
    x_dev = x_in if int8_in or not fp16 else x_in.astype(np.float16)
    u8_high = False  # some u8 code above 127 at some n4 (a rung may have no positive output at all)
    for n4 in (0, g, layer.padded_channels):
        m4 = np.array([-5, n4 + g - 1, 999], np.int32)
        want_acc, want_y = cpu_forward(cpu_ref, host, x_in, n4, output_int8=out is not None)
        got_acc, got_y = emulate(emulator, host, x_dev, m4, backend, tile, fp16 and not int8_in, out is not None)
        msg = f"{backend} {tile} n4={n4}"
        np.testing.assert_array_equal(got_acc, want_acc, err_msg=msg)
        if out is not None:
            np.testing.assert_array_equal(got_y, want_y, err_msg=msg)  # the codes, byte for byte
            assert want_y.dtype == np.int8, msg
            u8_high |= bool((want_y.view(np.uint8) > 127).any())
        else:
            np.testing.assert_allclose(got_y, want_y, rtol=1e-6, atol=1e-6, err_msg=msg)
        if int8_in:  # an INT8 input holding the codes gives the float input's accumulators
            float_acc, _ = cpu_forward(cpu_ref, host, x, n4)
            np.testing.assert_array_equal(got_acc, float_acc, err_msg=msg)
    assert out != "u8" or u8_high, "the u8 codes never reach the upper half of their range"


def test_int8_input_minus_128_is_read_as_minus_127(emulator, cpu_ref):
    rng = np.random.default_rng(5)
    layer = random_layer(rng, conv=False, in_channels=64, out_channels=9, group_size=32, signed=True, layer_index=0)
    host = HostLayer.from_layer(layer)
    codes = activation_codes(random_input(rng, layer, 11, 1, 1, True), layer.act_scale, True)
    foreign = codes.copy()
    foreign[:, ::3] = -128
    clamped = np.where(foreign == -128, np.int8(-127), foreign)
    for backend in ("int4_pipe", "int8_pipe"):
        got, _ = emulate(emulator, host, foreign, np.array([32], np.int32), backend)
        want, _ = emulate(emulator, host, clamped, np.array([32], np.int32), backend)
        np.testing.assert_array_equal(got, want, err_msg=backend)
        np.testing.assert_array_equal(got, cpu_forward(cpu_ref, host, clamped, 32)[0], err_msg=backend)


# ---- the int8 pipelined kernel's effective weights ---------------------------------------------------

@pytest.mark.parametrize("tile", ["64x64", "128x128"])  # 128 x 128: the 4-bit phase runs in unrolled rounds
def test_int8_pipelined_4bit_tiles_read_the_effective_weights(emulator, cpu_ref, tile):
    """The INT8 pipelined kernel's 4-bit K-tiles take B from weightEffective (w4 * step_w, made with the device
    weights): with the emulator's own buffer (args null: makeEffectiveWeights, as DeviceWeights makes it) it is
    bit-exact; one wrong element of group 1 at the centre tap changes exactly that output channel's
    accumulators once group 1 is 4-bit, and nothing before (the 8-bit phase never reads the buffer)."""
    rng = np.random.default_rng(31)
    layer = random_layer(rng, conv=True, in_channels=64, out_channels=20, group_size=32, signed=True,
                         geometry=ConvGeometry((3, 3), (1, 1), (1, 1, 1, 1)), layer_index=0)
    x = random_input(rng, layer, 2, 6, 5, True)
    own = HostLayer.from_layer(layer)
    own.args.weightEffective = None
    bad = HostLayer.from_layer(layer)
    eff = bad.arrays["weightEffective"]  # args point at it: corrupt in place
    n_bad, k_bad = 7, 4 * 64 + 32 + 9  # centre tap (1, 1), group 1, channel 9 of it
    eff[n_bad, k_bad] = eff[n_bad, k_bad] + 1 if eff[n_bad, k_bad] < 112 else eff[n_bad, k_bad] - 1
    for n4 in (0, 32, 64):
        m4 = np.array([n4], np.int32)
        want, _ = cpu_forward(cpu_ref, own, x, n4)
        np.testing.assert_array_equal(emulate(emulator, own, x, m4, "int8_pipe", tile)[0], want, err_msg=f"n4={n4}")
        diff = emulate(emulator, bad, x, m4, "int8_pipe", tile)[0] != want
        others = np.delete(diff, n_bad, axis=1)
        assert not others.any(), f"n4={n4}: a channel other than {n_bad} changed"
        assert diff[:, n_bad].any() == (n4 == 64), f"n4={n4}: group 1 is {'4' if n4 == 64 else '8'}-bit"


SLOW_CASES = [
    (False, 257, 256, 200, 1, 1, 32, None, True, ShiftMode.DYNAMIC, t, f) for t in TILES for f in (False, True)
] + [
    (True, 2, 96, 136, 10, 9, 64, ConvGeometry((3, 3), (1, 1), (1, 1, 1, 1)), s, m, t, False)
    for t in TILES for s in (True, False) for m in ShiftMode
]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["int4_pipe", "int8_pipe"])
@pytest.mark.parametrize("case", SLOW_CASES, ids=_case_id)
def test_pipelined_kernels_bit_exact_larger_sweep(emulator, cpu_ref, case, backend):
    _check_case(emulator, cpu_ref, case, backend)


# ---- planted faults -------------------------------------------------------------------------------

FAULT_CASE = (False, 65, 96, 65, 1, 1, 32, None, True, ShiftMode.DYNAMIC, "64x64", False)


def _fault_layer():
    rng = np.random.default_rng(7)
    layer = random_layer(rng, conv=False, in_channels=96, out_channels=65, group_size=32, signed=True, layer_index=0)
    return HostLayer.from_layer(layer), random_input(rng, layer, 65, 1, 1, True)


@pytest.mark.parametrize("backend", ["int4_pipe", "int8_pipe"])
def test_fault_build_without_a_fault_is_clean(fault_emulator, cpu_ref, backend):
    fault_emulator.flexiqEmulateSetFault(0)
    _check_case(fault_emulator, cpu_ref, FAULT_CASE, backend, n4_values=[32])


def test_planted_fault_off_by_one_reads_past_the_effective_weights(fault_emulator):
    """The int8 pipelined 4-bit phase copies weight row N of weightEffective, which is bounds-checked too."""
    host, x = _fault_layer()
    fault_emulator.flexiqEmulateSetFault(1)
    try:
        with pytest.raises(EmulatorCheckFailed, match=r"weight_effective\+"):
            emulate(fault_emulator, host, x, np.array([96], np.int32), "int8_pipe", "64x64")
    finally:
        fault_emulator.flexiqEmulateSetFault(0)


@pytest.mark.parametrize(("fault", "expected"), [
    (1, "weight_int8+"),  # off-by-one: weight row n == N is read, past the buffer
    (2, "missing __syncthreads"),  # no barrier after the wait: a warp reads bytes another thread's copy wrote
    (3, "in flight"),  # no wait_group: the copies have not landed
], ids=["off_by_one", "missing_barrier", "missing_wait"])
def test_planted_fault_is_caught(fault_emulator, fault, expected):
    host, x = _fault_layer()
    fault_emulator.flexiqEmulateSetFault(fault)
    try:
        with pytest.raises(EmulatorCheckFailed, match=expected.replace("+", r"\+")):
            emulate(fault_emulator, host, x, np.array([0], np.int32), "int8_pipe", "64x64")
    finally:
        fault_emulator.flexiqEmulateSetFault(0)


# ---- shared-memory layout -------------------------------------------------------------------------

@pytest.mark.parametrize("row_chunks", [1, 2, 4])
def test_swizzle_is_a_bijection_and_ldmatrix_phases_are_conflict_free(emulator, row_chunks):
    rows = 128
    phys = {(r, c): emulator.flexiqEmulateSwizzle(r, c, row_chunks) for r in range(rows) for c in range(row_chunks)}
    assert sorted(phys.values()) == list(range(rows * row_chunks))  # a permutation of the tile's chunks
    for r0 in range(0, rows, 8):  # one ldmatrix phase: 8 consecutive rows (8-aligned), one logical chunk
        for c in range(row_chunks):
            quads = {phys[(r0 + i, c)] % 8 for i in range(8)}  # 16-byte bank quad of each row address
            assert len(quads) == 8, f"bank conflict: rows {r0}..{r0 + 7} chunk {c} of {row_chunks}"


def test_tile_shapes_match_the_kernel_configs():
    assert TILE_SHAPES == {0: (128, 128), 1: (128, 64), 2: (64, 64)}
