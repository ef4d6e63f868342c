"""The CUDA kernels' own device code, run on the CPU by the host warp emulator, against the CPU reference.

tests/unit/kernels/emulation/flexiqWarpEmulator.cpp compiles plugins/kernels/flexiqInputPass.cuh and
flexiqMixedGemm.cuh with g++ (one std::thread per CUDA thread, mma.sync emulated with the PTX ISA
semantics through the ISA-checked fragment mappings). Int32 accumulators must be bit-exact for both
tensor-core backends over tile-edge shapes and every n4. This checks the kernels' logic without a
GPU; it cannot check the hardware itself (that is tests/gpu/kernels).
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from flexiq_kernel_ctypes import (
    HostLayer,
    build_emulator,
    cpu_forward,
    output_shape,
    random_input,
    random_layer,
)

from flexiq_trt.plugin_spec import Activation, ShiftMode
from flexiq_trt.quantization.layer import ConvGeometry


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """Build and load the emulator library (skips without g++ or the CUDA headers)."""
    lib = build_emulator(tmp_path_factory.mktemp("emulator") / "libflexiq_warp_emulator.so")
    if lib is None:
        pytest.skip("the warp emulator needs g++ (C++20) and the CUDA headers (cuda_runtime_api.h)")
    return lib


def _emulate(lib, host: HostLayer, x: np.ndarray, max4bit: np.ndarray, backend: int):
    layer = host.layer
    batch = x.shape[0]
    h, w = (x.shape[2], x.shape[3]) if layer.is_conv else (1, 1)
    shape = output_shape(layer, batch, h, w)
    acc, out = np.zeros(shape, np.int32), np.zeros(shape, np.float32)
    xc = np.ascontiguousarray(x, np.float32)
    m4 = np.ascontiguousarray(max4bit, np.int32)
    why = ctypes.create_string_buffer(256)
    status = lib.flexiqEmulateForward(backend, ctypes.byref(host.args), batch, h, w, xc.ctypes.data, m4.ctypes.data,
                                      acc.ctypes.data, out.ctypes.data, why, len(why))
    assert status == 0, why.value.decode()
    return acc, out


CASES = [  # (conv?, batch/rows, in_ch, out_ch, H, W, G, geometry, signed, mode)
    (False, 65, 96, 65, 1, 1, 32, None, True, ShiftMode.DYNAMIC),  # one past the 64 x 64 CTA tile in M and N
    (False, 7, 150, 9, 1, 1, 64, None, False, ShiftMode.STATIC),  # G = 64, u4 x s4
    (False, 16, 32, 8, 1, 1, 32, None, False, ShiftMode.DYNAMIC),  # one MMA atom
    (False, 65, 128, 70, 1, 1, 64, None, True, ShiftMode.DYNAMIC),  # G = 64: m16n8k64 int4 atoms
    (True, 2, 40, 12, 6, 5, 32, ConvGeometry((3, 3), (1, 1), (1, 1, 1, 1)), True, ShiftMode.DYNAMIC),
    (True, 1, 64, 70, 9, 8, 32, ConvGeometry((3, 3), (2, 2), (1, 0, 1, 2)), True, ShiftMode.STATIC),
    (True, 1, 70, 5, 9, 9, 64, ConvGeometry((3, 2), (1, 2), (2, 1, 0, 1), (2, 1)), False, ShiftMode.DYNAMIC),
]


@pytest.mark.parametrize("backend", [1, 2], ids=["int4_mma", "int8_mma"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{'conv' if c[0] else 'gemm'}{c[1]}x{c[2]}x{c[3]}g{c[6]}")
def test_emulated_kernels_bit_exact_with_cpu_reference(emulator, cpu_ref, case, backend):
    conv, batch, cin, cout, h, w, g, geo, signed, mode = case
    rng = np.random.default_rng(cin * 1000 + cout)
    layer = random_layer(rng, conv=conv, in_channels=cin, out_channels=cout, group_size=g, signed=signed,
                         shift_mode=mode, geometry=geo, activation=Activation.HARD_SWISH, layer_index=2)
    x = random_input(rng, layer, batch, h, w, signed)
    host = HostLayer.from_layer(layer)
    for n4 in range(0, layer.padded_channels + 1, g):
        want_acc, want_y = cpu_forward(cpu_ref, host, x, n4)
        got_acc, got_y = _emulate(emulator, host, x, np.array([7, -3, n4 + g - 1], np.int32), backend)
        np.testing.assert_array_equal(got_acc, want_acc, err_msg=f"n4={n4}")
        np.testing.assert_allclose(got_y, want_y, rtol=1e-6, atol=1e-6, err_msg=f"n4={n4}")
