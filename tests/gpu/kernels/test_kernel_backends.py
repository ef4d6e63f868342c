"""Every CUDA backend against the C++ CPU reference: int32 accumulators bit-exact, outputs close.

Shapes sit on tile edges (the CTA tile is 64 x 64 outputs, the MMA atom m16n8k32): M and N at one
alignment unit, at tile multiples and one past them; K from one group to several; every n4 from 0
to C_pad in steps of G; both shift modes; signed and unsigned activations; FP32 and FP16; INT8
edges (docs/design.md §2.3): INT8 input codes and INT8 output codes (s8 and u8) on every backend.
"""

from __future__ import annotations

import numpy as np
import pytest
from flexiq_kernel_ctypes import (
    HostLayer,
    Int8Io,
    activation_codes,
    cpu_forward,
    gpu_forward,
    random_input,
    random_layer,
)

from flexiq_trt.plugin_spec import Activation, ShiftMode
from flexiq_trt.quantization.layer import ConvGeometry

pytestmark = pytest.mark.gpu

GEMM_SHAPES = [  # (rows M, in_channels, out_channels N, G)
    (1, 32, 8, 32), (16, 32, 1, 32), (63, 96, 63, 32), (64, 64, 64, 32), (65, 160, 65, 32),
    (130, 45, 129, 32), (7, 64, 24, 64), (65, 200, 70, 64),
]
CONV_SHAPES = [  # (batch, in_ch, out_ch, H, W, G, geometry)
    (1, 32, 8, 8, 8, 32, ConvGeometry((1, 1))),
    (2, 40, 65, 9, 7, 32, ConvGeometry((3, 3), (1, 1), (1, 1, 1, 1))),
    (1, 64, 16, 11, 10, 32, ConvGeometry((3, 3), (2, 2), (1, 0, 1, 2))),
    (1, 70, 9, 9, 9, 64, ConvGeometry((3, 2), (1, 2), (2, 1, 0, 1), (2, 1))),
    (3, 33, 5, 6, 6, 32, ConvGeometry((5, 5), (1, 1), (2, 2, 2, 2))),
]


def _compare(kernels_capi, cpu_ref, layer, x, backend, fp16, tile=None):
    lib, _ = kernels_capi
    host = HostLayer.from_layer(layer)
    x_ref = x.astype(np.float16).astype(np.float32) if fp16 else x  # the GPU sees the same values
    for n4 in range(0, layer.padded_channels + 1, layer.group_size):
        want_acc, want_y = cpu_forward(cpu_ref, host, x_ref, n4)
        max4bit = np.array([-1, n4, 12345], np.int32)  # layer_index 1: the kernel must read its own entry
        got_acc, got_y, _ = gpu_forward(lib, host, x, max4bit, backend, fp16, tile=tile)
        np.testing.assert_array_equal(got_acc, want_acc, err_msg=f"{backend} {tile} {layer.name} n4={n4}")
        tol = dict(rtol=2e-3, atol=2e-3) if fp16 else dict(rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got_y, want_y, **tol, err_msg=f"{backend} {layer.name} n4={n4}")


def _gemm_case(shape, mode, signed, seed):
    rows, cin, cout, g = shape
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, conv=False, in_channels=cin, out_channels=cout, group_size=g, signed=signed,
                         shift_mode=mode, activation=Activation(int(rng.integers(0, len(Activation)))),
                         layer_index=1)
    return layer, random_input(rng, layer, rows, 1, 1, signed)


def _conv_case(shape, mode, signed, seed):
    batch, cin, cout, h, w, g, geo = shape
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, conv=True, in_channels=cin, out_channels=cout, group_size=g, signed=signed,
                         shift_mode=mode, geometry=geo, activation=Activation(int(rng.integers(0, len(Activation)))),
                         layer_index=1)
    return layer, random_input(rng, layer, batch, h, w, signed)


BACKEND_PARAMS = [
    pytest.param("int4_pipe", marks=pytest.mark.needs_int4_mma),  # the default on sm_80/86/87/89
    "int8_pipe",  # the default on sm_90+
    pytest.param("int4", marks=pytest.mark.needs_int4_mma),  # first-version kernels (fallback)
    "int8",
    "reference",
]


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
@pytest.mark.parametrize("signed", [True, False], ids=["s8", "u8"])
@pytest.mark.parametrize("mode", list(ShiftMode), ids=["dynamic", "static"])
@pytest.mark.parametrize("shape", GEMM_SHAPES, ids=lambda s: f"m{s[0]}k{s[1]}n{s[2]}g{s[3]}")
def test_gemm_backend_bit_exact(kernels_capi, cpu_ref, request, shape, mode, signed, fp16, backend):
    if backend.startswith("int4"):
        request.getfixturevalue("int4_allowed")
    layer, x = _gemm_case(shape, mode, signed, seed=sum(shape) + int(mode) * 7 + signed)
    _compare(kernels_capi, cpu_ref, layer, x, backend, fp16)


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
@pytest.mark.parametrize("signed", [True, False], ids=["s8", "u8"])
@pytest.mark.parametrize("mode", list(ShiftMode), ids=["dynamic", "static"])
@pytest.mark.parametrize("shape", CONV_SHAPES, ids=lambda s: f"c{s[1]}n{s[2]}k{s[6].kernel_shape}s{s[6].strides}")
def test_conv_backend_bit_exact(kernels_capi, cpu_ref, request, shape, mode, signed, fp16, backend):
    if backend.startswith("int4"):
        request.getfixturevalue("int4_allowed")
    layer, x = _conv_case(shape, mode, signed, seed=shape[1] * 31 + shape[3] + int(mode) * 7 + signed)
    _compare(kernels_capi, cpu_ref, layer, x, backend, fp16)


def test_n4_is_clamped_and_rounded_on_the_device(kernels_capi, cpu_ref):
    lib, _ = kernels_capi
    layer, x = _gemm_case((33, 96, 17, 32), ShiftMode.DYNAMIC, True, seed=5)
    host = HostLayer.from_layer(layer)
    for raw, effective in ((-40, 0), (31, 0), (63, 32), (95, 64), (4000, 96)):
        want, _ = cpu_forward(cpu_ref, host, x, effective)
        got, _, _ = gpu_forward(lib, host, x, np.array([0, raw], np.int32), "auto", False)
        np.testing.assert_array_equal(got, want, err_msg=f"raw n4 {raw}")


def test_auto_backend_follows_the_device(kernels_capi, monkeypatch):
    lib, sm = kernels_capi
    monkeypatch.delenv("FLEXIQ_FORCE_INT4", raising=False)
    assert lib.flexiqCapiSelectBackend(8, 6) == 4 and lib.flexiqCapiSelectBackend(8, 9) == 4  # int4 pipelined
    assert lib.flexiqCapiSelectBackend(9, 0) == 5 and lib.flexiqCapiSelectBackend(12, 0) == 5  # int8 pipelined
    assert lib.flexiqCapiSelectBackend(7, 5) == 0  # unsupported
    monkeypatch.setenv("FLEXIQ_FORCE_INT4", "1")
    assert lib.flexiqCapiSelectBackend(9, 0) == 4
    assert lib.flexiqCapiSelectBackend(7, 5) == 0


def test_int8_pipelined_without_effective_weights_falls_back_bit_exact(kernels_capi, cpu_ref):
    """Without weightEffective INT8_PIPELINED runs as INT8_MMA (flexiqRunnerResolveBackend): still bit-exact;
    with a wrong element of it (group 0, row 3) the pipelined kernel's accumulators of channel 3 differ."""
    lib, _ = kernels_capi
    layer, x = _gemm_case((65, 96, 17, 32), ShiftMode.DYNAMIC, True, seed=11)
    host = HostLayer.from_layer(layer)
    want, _ = cpu_forward(cpu_ref, host, x, 32)
    m4 = np.array([0, 32], np.int32)
    np.testing.assert_array_equal(gpu_forward(lib, host, x, m4, "int8_pipe", False)[0], want)
    eff = host.arrays["weightEffective"]
    eff[3, 5] = eff[3, 5] + 1 if eff[3, 5] < 112 else eff[3, 5] - 1
    bad = gpu_forward(lib, host, x, m4, "int8_pipe", False)[0] != want
    assert bad[:, 3].any() and not np.delete(bad, 3, axis=1).any()
    host.args.weightEffective = None
    np.testing.assert_array_equal(gpu_forward(lib, host, x, m4, "int8_pipe", False)[0], want)


def test_invalid_layer_is_rejected_not_run(kernels_capi):
    lib, _ = kernels_capi
    layer, x = _gemm_case((4, 32, 8, 32), ShiftMode.DYNAMIC, True, seed=9)
    host = HostLayer.from_layer(layer)
    host.args.groupSize = 16
    with pytest.raises(RuntimeError, match="group_size"):
        gpu_forward(lib, host, x, np.array([0, 0], np.int32), "int8", False)


@pytest.mark.parametrize("tile", ["128x128", "128x64", "64x64"])
@pytest.mark.parametrize("backend", [pytest.param("int4_pipe", marks=pytest.mark.needs_int4_mma), "int8_pipe"])
@pytest.mark.parametrize("shape", [(257, 256, 200, 32), (130, 320, 129, 64)], ids=["g32", "g64"])
def test_every_pipelined_tile_config_bit_exact(kernels_capi, cpu_ref, request, shape, backend, tile):
    """Each tile configuration forced in turn (the runner would pick one), on shapes past every tile edge."""
    if backend.startswith("int4"):
        request.getfixturevalue("int4_allowed")
    layer, x = _gemm_case(shape, ShiftMode.DYNAMIC, True, seed=sum(shape))
    _compare(kernels_capi, cpu_ref, layer, x, backend, False, tile=tile)


INT8_IO = [  # (int8 input?, int8 output: "s8", "u8" or None)
    (True, None), (False, "s8"), (False, "u8"), (True, "s8"), (True, "u8"),
]


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@pytest.mark.parametrize("io", INT8_IO, ids=lambda io: f"in{'8' if io[0] else 'F'}_out{io[1] or 'F'}")
@pytest.mark.parametrize("signed", [True, False], ids=["s8", "u8"])
@pytest.mark.parametrize("case", ["gemm", "conv"])
def test_int8_edges_bit_exact(kernels_capi, cpu_ref, request, case, signed, io, backend):
    """INT8 input codes / INT8 output codes: accumulators and codes equal the CPU reference byte for byte."""
    if backend.startswith("int4"):
        request.getfixturevalue("int4_allowed")
    lib, _ = kernels_capi
    int8_in, out = io
    if case == "gemm":
        layer, x = _gemm_case((65, 200, 70, 64), ShiftMode.DYNAMIC, signed, seed=11 + signed)
    else:
        layer, x = _conv_case(CONV_SHAPES[1], ShiftMode.STATIC, signed, seed=13 + signed)
    _, y = cpu_forward(cpu_ref, HostLayer.from_layer(layer), x, 0)
    scale = float(np.abs(y).max()) / (150.0 if out == "s8" else 300.0) if out else 1.0
    host = HostLayer.from_layer(layer, Int8Io(int8_in, out is not None, scale, out == "s8"))
    x_in = activation_codes(x, layer.act_scale, signed) if int8_in else x
    for n4 in range(0, layer.padded_channels + 1, layer.group_size):
        want_acc, want_y = cpu_forward(cpu_ref, host, x_in, n4, output_int8=out is not None)
        got_acc, got_y, _ = gpu_forward(lib, host, x_in, np.array([-1, n4, 12345], np.int32), backend, False,
                                        output_int8=out is not None)
        msg = f"{backend} {layer.name} n4={n4}"
        np.testing.assert_array_equal(got_acc, want_acc, err_msg=msg)
        if out is not None:
            np.testing.assert_array_equal(got_y, want_y, err_msg=msg)
        else:
            np.testing.assert_allclose(got_y, want_y, rtol=1e-5, atol=1e-5, err_msg=msg)
        if int8_in:  # INT8 codes in = the float input's accumulators
            np.testing.assert_array_equal(got_acc, cpu_forward(cpu_ref, host, x, n4)[0], err_msg=msg)


@pytest.mark.parametrize("tile", ["128x128", "128x64", "64x64"])
@pytest.mark.parametrize("backend", [pytest.param("int4_pipe", marks=pytest.mark.needs_int4_mma), "int8_pipe"])
def test_int8_output_every_pipelined_tile_config(kernels_capi, cpu_ref, request, backend, tile):
    """The pipelined epilogue's INT8 store in each tile configuration (u8 codes above 127 included)."""
    if backend.startswith("int4"):
        request.getfixturevalue("int4_allowed")
    lib, _ = kernels_capi
    layer, x = _gemm_case((257, 256, 200, 32), ShiftMode.DYNAMIC, False, seed=3)
    _, y = cpu_forward(cpu_ref, HostLayer.from_layer(layer), x, 0)
    host = HostLayer.from_layer(layer, Int8Io(True, True, float(y.max()) / 300.0, False))
    codes = activation_codes(x, layer.act_scale, False)
    for n4 in (0, 128, 256):
        want_acc, want_y = cpu_forward(cpu_ref, host, codes, n4, output_int8=True)
        got_acc, got_y, _ = gpu_forward(lib, host, codes, np.array([-1, n4], np.int32), backend, False, tile=tile,
                                        output_int8=True)
        np.testing.assert_array_equal(got_acc, want_acc, err_msg=f"{backend} {tile} n4={n4}")
        np.testing.assert_array_equal(got_y, want_y, err_msg=f"{backend} {tile} n4={n4}")
