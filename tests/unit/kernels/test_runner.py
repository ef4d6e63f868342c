"""The per-device runner's selection logic (flexiqRunnerCreate / flexiqRunnerSelectTile), on a CPU.

flexiqCapiRunnerSelect builds a runner from a described device (no CUDA call) and reports the
backend (the device's, or for a layer its group size's: flexiqRunnerLayerBackend) and the pipelined
tile configuration it picks for a layer shape.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from flexiq_kernel_ctypes import TILES, HostLayer, random_layer

from flexiq_trt.quantization.layer import ConvGeometry

INT4_PIPE, INT8_PIPE = 4, 5


def _select(lib, sm: tuple[int, int], sms: int, host: HostLayer | None, batch: int, h: int = 1, w: int = 1):
    tile = ctypes.c_int32(-9)
    backend = lib.flexiqCapiRunnerSelect(sm[0], sm[1], sms, ctypes.byref(host.args) if host else None, batch, h, w,
                                         ctypes.byref(tile))
    return backend, tile.value


@pytest.mark.parametrize(("sm", "want"), [((8, 0), INT4_PIPE), ((8, 6), INT4_PIPE), ((8, 7), INT4_PIPE),
                                          ((8, 9), INT4_PIPE), ((9, 0), INT8_PIPE), ((12, 0), INT8_PIPE),
                                          ((7, 5), 0)])
def test_backend_per_compute_capability(capi, monkeypatch, sm, want):
    monkeypatch.delenv("FLEXIQ_FORCE_INT4", raising=False)
    assert _select(capi, sm, 80, None, 1)[0] == want


def test_force_int4_on_sm90(capi, monkeypatch):
    monkeypatch.setenv("FLEXIQ_FORCE_INT4", "1")
    assert _select(capi, (9, 0), 132, None, 1)[0] == INT4_PIPE


def _gemm(n: int, cin: int = 64, group_size: int = 32) -> HostLayer:
    return HostLayer.from_layer(random_layer(np.random.default_rng(0), conv=False, in_channels=cin, out_channels=n,
                                             group_size=group_size))


@pytest.mark.parametrize(("rows", "n", "sms", "want"), [
    (128 * 16, 128 * 6, 82, "128x128"),  # 96 CTAs of 128 x 128 >= 82 SMs
    (128 * 8, 128 * 6, 82, "128x64"),  # 48 big CTAs < 82; 96 of 128 x 64
    (128 * 8, 64, 8, "128x64"),  # N = 64: never 128 wide
    (64, 64, 82, "64x64"),  # a small layer: the smallest tile
    (128 * 16, 128 * 6, 200, "64x64"),  # many SMs: smaller tiles to fill them
])
def test_tile_selection_per_shape_and_sm_count(capi, rows, n, sms, want):
    assert _select(capi, (8, 6), sms, _gemm(n), rows)[1] == TILES[want]


def test_tile_selection_uses_the_conv_output_size(capi):
    rng = np.random.default_rng(1)
    layer = random_layer(rng, conv=True, in_channels=64, out_channels=256, geometry=ConvGeometry((3, 3), (2, 2)))
    host = HostLayer.from_layer(layer)
    # 16 x 56 x 56 input, stride 2 -> 16 x 27 x 27 = 11664 output rows: 92 x 2 = 184 CTAs of 128 x 128.
    assert _select(capi, (8, 0), 108, host, 16, 56, 56)[1] == TILES["128x128"]
    assert _select(capi, (8, 0), 108, host, 1, 56, 56)[1] == TILES["64x64"]  # 729 rows: 12 x 4 = 48 CTAs


def test_int8_pipelined_needs_the_effective_weights(capi):
    """INT8_PIPELINED runs only with weightEffective (16-byte aligned, made with the device weights); without
    it the runner falls back to INT8_MMA, which expands w4 itself. INT4_PIPELINED does not use it."""
    if not hasattr(capi, "flexiqCapiResolveBackend"):
        pytest.skip("stale libflexiq_kernels_capi.so without flexiqCapiResolveBackend (rebuild it)")
    int8_mma = 2
    host = _gemm(64)
    assert host.args.weightEffective  # HostLayer carries it, as DeviceWeights does for an int8 backend

    def resolve(requested: int) -> int:
        return capi.flexiqCapiResolveBackend(9, 0, requested, ctypes.byref(host.args))

    assert resolve(INT8_PIPE) == INT8_PIPE
    assert resolve(0) == INT8_PIPE  # AUTO on sm_90
    host.args.weightEffective = host.args.weightEffective + 4  # misaligned
    assert resolve(INT8_PIPE) == int8_mma
    host.args.weightEffective = None
    assert resolve(INT8_PIPE) == int8_mma
    assert resolve(0) == int8_mma
    assert resolve(INT4_PIPE) == INT4_PIPE


# The backend per (device, layer group size), flexiqSelectLayerBackend: sm_80 (GA100) at G = 32 runs the int8
# pipelined backend (PREDICTED 1.0x the int8 path against the int4 path's 0.84x, docs/performance.md), every
# other layer its device's backend.
LAYER_BACKENDS = [((8, 0), 32, INT8_PIPE), ((8, 0), 64, INT4_PIPE), ((8, 6), 32, INT4_PIPE), ((8, 6), 64, INT4_PIPE),
                  ((8, 7), 32, INT4_PIPE), ((8, 9), 32, INT4_PIPE), ((8, 9), 64, INT4_PIPE), ((9, 0), 32, INT8_PIPE),
                  ((9, 0), 64, INT8_PIPE), ((12, 0), 32, INT8_PIPE), ((7, 5), 32, 0)]


def _select_layer_backend(capi, sm: tuple[int, int], group_size: int) -> int:
    if not hasattr(capi, "flexiqCapiSelectLayerBackend"):
        pytest.skip("stale libflexiq_kernels_capi.so without flexiqCapiSelectLayerBackend (rebuild it)")
    fn = capi.flexiqCapiSelectLayerBackend
    fn.argtypes, fn.restype = [ctypes.c_int32] * 3, ctypes.c_int32
    return fn(sm[0], sm[1], group_size)


@pytest.mark.parametrize(("sm", "group_size", "want"), LAYER_BACKENDS)
def test_backend_per_compute_capability_and_group_size(capi, monkeypatch, sm, group_size, want):
    """The rule, and the runner that applies it to a layer (flexiqRunnerLayerBackend via flexiqCapiRunnerSelect)."""
    monkeypatch.delenv("FLEXIQ_FORCE_INT4", raising=False)
    assert _select_layer_backend(capi, sm, group_size) == want
    assert _select(capi, sm, 108, _gemm(64, group_size=group_size), 1)[0] == want


def test_device_backend_ignores_the_group_size_exception(capi, monkeypatch):
    """flexiqSelectBackend / a runner asked without a layer give the device's backend: int4 on sm_80."""
    monkeypatch.delenv("FLEXIQ_FORCE_INT4", raising=False)
    assert capi.flexiqCapiSelectBackend(8, 0) == INT4_PIPE
    assert _select(capi, (8, 0), 108, None, 1)[0] == INT4_PIPE


@pytest.mark.parametrize("sm", [(8, 0), (8, 6), (9, 0)])
def test_force_int4_overrides_the_layer_rule(capi, monkeypatch, sm):
    """FLEXIQ_FORCE_INT4=1 gives int4 for every layer on sm_80+, the sm_80 G = 32 layers included."""
    monkeypatch.setenv("FLEXIQ_FORCE_INT4", "1")
    for g in (32, 64):
        assert _select_layer_backend(capi, sm, g) == INT4_PIPE
        assert _select(capi, sm, 108, _gemm(64, group_size=g), 1)[0] == INT4_PIPE


def test_sm80_g32_auto_needs_the_effective_weights(capi, monkeypatch):
    """On sm_80 AUTO runs a G = 32 layer as INT8_PIPELINED only with weightEffective (DeviceWeights makes it for
    that layer); without it the device's INT4_PIPELINED runs, not the first-version INT8_MMA. An explicit
    INT8_PIPELINED request without it still falls back to INT8_MMA; G = 64 layers never use it."""
    if not hasattr(capi, "flexiqCapiSelectLayerBackend"):
        pytest.skip("stale libflexiq_kernels_capi.so without the per-layer backend rule (rebuild it)")
    monkeypatch.delenv("FLEXIQ_FORCE_INT4", raising=False)
    int8_mma = 2
    g32, g64 = _gemm(64, group_size=32), _gemm(64, group_size=64)

    def resolve(host: HostLayer, requested: int) -> int:
        return capi.flexiqCapiResolveBackend(8, 0, requested, ctypes.byref(host.args))

    assert g32.args.weightEffective and g64.args.weightEffective
    assert resolve(g32, 0) == INT8_PIPE
    assert resolve(g64, 0) == INT4_PIPE
    assert resolve(g32, INT4_PIPE) == INT4_PIPE  # an explicit request is kept
    g32.args.weightEffective = g64.args.weightEffective = None
    assert resolve(g32, 0) == INT4_PIPE
    assert resolve(g32, INT8_PIPE) == int8_mma
    assert resolve(g64, 0) == INT4_PIPE
    monkeypatch.setenv("FLEXIQ_FORCE_INT4", "1")
    assert resolve(_gemm(64, group_size=32), 0) == INT4_PIPE
