"""Workspace edges (docs/design.md §2.8): a producer writes its one reader's input-pass image, the reader reads it.

The proof without a GPU, in two parts:
  * C++ CPU reference: producer -> reader through a workspace edge gives the reader the same int32
    accumulators and float32 outputs, bit for bit, as the same chain through an FP32 tensor (s8/u8, dynamic
    and static shifts, G 32/64 on either side, N not a multiple of the reader's G, both image formats, several
    n4 of each layer); the producer's own accumulators are its original ones in the reader's channel order.
  * CTA emulator (tests/unit/kernels/emulation): the pipelined kernels' workspace epilogue (codes staged in
    shared memory, then the input pass's per-(row, group) step) and the first-version kernels' second launch
    write the CPU reference's image byte for byte (untouched bytes included), with the emulator's bounds and
    race checks; the pipelined reader reading an image (no input pass, weightStepWide from the device weights)
    gives the FP32 chain's results.
A larger emulator sweep is in the slow tier. On a machine with a GPU (marker `gpu`), the same checks run the
real kernels through the kernels' C ABI (compiled here, not executed: no GPU in CI).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _utils.configs import NO_BLOCK_ROUNDING
from flexiq_kernel_ctypes import (
    EmulatorCheckFailed,
    HostLayer,
    build_emulator,
    cpu_forward,
    cpu_forward_edge,
    edge_bytes_per_row,
    emulate_edge,
    gpu_forward_edge,
    host_layer_from_node,
    load_kernels_capi,
    permuted_producer,
    random_input,
    random_layer,
    workspace_host,
)

from flexiq_trt.plugin_spec import Activation, ShiftMode
from flexiq_trt.quantization.layer import ConvGeometry

CONV3 = ConvGeometry((3, 3), (1, 1), (1, 1, 1, 1))
CONV1 = ConvGeometry((1, 1), (1, 1), (0, 0, 0, 0))


@dataclasses.dataclass(frozen=True)
class Chain:
    """producer (conv or gemm) -> reader of the same kind, and the shapes of one call."""

    conv: bool
    rows: int  # gemm: M; conv: batch
    cin: int
    n: int  # producer outputs = reader inputs
    m: int  # reader outputs
    hw: tuple[int, int]
    g_p: int
    g_r: int
    signed_r: bool
    mode_r: ShiftMode

    def id(self) -> str:
        return (f"{'conv' if self.conv else 'gemm'}{self.rows}x{self.cin}x{self.n}x{self.m}_gp{self.g_p}gr{self.g_r}"
                f"_{'s8' if self.signed_r else 'u8'}_{self.mode_r.name.lower()}")


def _layers(chain: Chain, seed: int):
    rng = np.random.default_rng(seed)
    geo_p, geo_r = (CONV3, CONV1 if chain.g_r == 64 else CONV3) if chain.conv else (None, None)
    producer = random_layer(rng, conv=chain.conv, in_channels=chain.cin, out_channels=chain.n, group_size=chain.g_p,
                            signed=True, geometry=geo_p, activation=Activation.HARD_SWISH, layer_index=0)
    reader = random_layer(rng, conv=chain.conv, in_channels=chain.n, out_channels=chain.m, group_size=chain.g_r,
                          signed=chain.signed_r, shift_mode=chain.mode_r, geometry=geo_r,
                          activation=Activation.RELU, layer_index=1)
    x = random_input(rng, producer, chain.rows, *chain.hw, True)
    return rng, producer, reader, x


def _float_chain(cpu_ref, producer, reader, x, n4_p: int, n4_r: int):
    """The FP32 chain: producer's float32 output read by the reader (accumulators and outputs of both)."""
    acc_p, y = cpu_forward(cpu_ref, HostLayer.from_layer(producer), x, n4_p)
    acc_r, out_r = cpu_forward(cpu_ref, HostLayer.from_layer(reader), y, n4_r)
    return acc_p, y, acc_r, out_r


def _with_reader_scale(reader, y: np.ndarray):
    """A reader quantizer fitted to the producer's outputs: codes span the range, a few saturate."""
    return dataclasses.replace(reader, act_scale=float(np.float32(np.abs(y).max() / 150.0)))


def _out_hw(layer, hw: tuple[int, int]) -> tuple[int, int]:
    return layer.geometry.output_hw(*hw) if layer.is_conv else (1, 1)


def _assert_bits(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape, what
    assert np.array_equal(np.ascontiguousarray(got).view(np.uint8), np.ascontiguousarray(want).view(np.uint8)), what


CPU_CHAINS = [
    Chain(False, 37, 96, 70, 40, (1, 1), 32, 32, True, ShiftMode.DYNAMIC),
    Chain(False, 19, 64, 70, 33, (1, 1), 64, 64, False, ShiftMode.STATIC),
    Chain(False, 8, 150, 130, 9, (1, 1), 32, 64, True, ShiftMode.STATIC),
    Chain(False, 11, 64, 96, 20, (1, 1), 64, 32, False, ShiftMode.DYNAMIC),
    Chain(True, 2, 40, 50, 12, (6, 5), 32, 32, True, ShiftMode.STATIC),
    Chain(True, 1, 64, 70, 17, (5, 4), 64, 64, False, ShiftMode.DYNAMIC),
]


@pytest.mark.parametrize("int4_format", [True, False], ids=["int4fmt", "int8fmt"])
@pytest.mark.parametrize("chain", CPU_CHAINS, ids=Chain.id)
def test_cpu_reference_workspace_edge_equals_the_fp32_chain(cpu_ref, chain, int4_format):
    rng, producer, reader, x = _layers(chain, chain.cin * 7 + chain.n)
    _, y, _, _ = _float_chain(cpu_ref, producer, reader, x, 0, 0)
    reader = _with_reader_scale(reader, y)
    order = np.asarray(reader.permutation[: chain.n])
    assert not np.array_equal(order, np.arange(chain.n))
    host_p = workspace_host(permuted_producer(producer, reader), reader)
    host_r = workspace_host(reader)
    hw_r = _out_hw(producer, chain.hw)
    c_pad_r = reader.padded_channels
    for n4_p, n4_r in [(0, 0), (producer.padded_channels, c_pad_r), (chain.g_p, c_pad_r - chain.g_r),
                       (0, chain.g_r + 5), (10_000, -3)]:
        acc_p, _, acc_r, out_r = _float_chain(cpu_ref, producer, reader, x, n4_p, n4_r)
        got_acc_p, image = cpu_forward_edge(cpu_ref, host_p, x, chain.hw, n4_p, in_edge=False, out_edge=True,
                                            reader_n4=n4_r, int4_format=int4_format)
        msg = f"{chain.id()} n4 producer {n4_p} reader {n4_r}"
        np.testing.assert_array_equal(got_acc_p, np.take(acc_p, order, axis=1), err_msg=msg)
        rows = image.size // edge_bytes_per_row(c_pad_r, chain.g_r)
        assert rows == acc_p.size // chain.n, msg
        got_acc_r, got_out_r = cpu_forward_edge(cpu_ref, host_r, image, hw_r, n4_r, in_edge=True, out_edge=False,
                                                int4_format=int4_format)
        _assert_bits(got_acc_r, acc_r, "reader accumulators " + msg)
        _assert_bits(got_out_r, out_r, "reader outputs " + msg)
    # The test reaches the interesting codes: 4-bit groups with several activation steps, saturated codes.
    codes = np.abs(np.clip(np.rint(y / np.float32(reader.act_scale)), -127 if chain.signed_r else 0, 255))
    assert (codes >= 127).any() and (codes < 16).any()
    del rng


def test_cpu_reference_rejects_workspace_types_without_the_edge_entry(cpu_ref):
    chain = CPU_CHAINS[0]
    _, producer, reader, x = _layers(chain, 1)
    host_p = workspace_host(permuted_producer(producer, reader), reader)
    with pytest.raises(ValueError, match="cpuForwardEdge|reader_group_size"):
        bad = workspace_host(permuted_producer(producer, reader), reader)
        bad.args.readerGroupSize = 48
        cpu_forward_edge(cpu_ref, bad, x, chain.hw, 0, in_edge=False, out_edge=True)
    cpu_forward_edge(cpu_ref, host_p, x, chain.hw, 0, in_edge=False, out_edge=True)  # the valid one runs


# ---- CTA emulator --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    lib = build_emulator(tmp_path_factory.mktemp("emulator_ws") / "libflexiq_cta_emulator.so")
    if lib is None:
        pytest.skip("the CTA emulator needs g++ (C++20) and the CUDA headers (cuda_runtime_api.h)")
    return lib


def _check_emulated(emulator, cpu_ref, chain: Chain, backend: str, tile: str, n4s) -> None:
    _, producer, reader, x = _layers(chain, chain.cin * 3 + chain.m)
    _, y, _, _ = _float_chain(cpu_ref, producer, reader, x, 0, 0)
    reader = _with_reader_scale(reader, y)
    host_p = workspace_host(permuted_producer(producer, reader), reader)
    host_r = workspace_host(reader)
    hw_r = _out_hw(producer, chain.hw)
    int4_format = backend in ("int4", "int4_pipe")
    for n4_p, n4_r in n4s:
        max4bit = np.array([n4_p, n4_r], np.int32)
        msg = f"{chain.id()} {backend} {tile} n4 producer {n4_p} reader {n4_r}"
        want_acc_p, want_image = cpu_forward_edge(cpu_ref, host_p, x, chain.hw, n4_p, in_edge=False, out_edge=True,
                                                  reader_n4=n4_r, int4_format=int4_format)
        got_acc_p, got_image = emulate_edge(emulator, host_p, x, chain.hw, max4bit, backend, tile, in_edge=False,
                                            out_edge=True)
        np.testing.assert_array_equal(got_acc_p, want_acc_p, err_msg=msg)
        np.testing.assert_array_equal(got_image, want_image, err_msg="edge image " + msg)
        if backend.endswith("_pipe"):  # the reader side: no input pass, s_w widened from the device weights
            _, _, acc_r, out_r = _float_chain(cpu_ref, producer, reader, x, n4_p, n4_r)
            got_acc_r, got_out_r = emulate_edge(emulator, host_r, got_image, hw_r, max4bit, backend, tile,
                                                in_edge=True, out_edge=False)
            _assert_bits(got_acc_r, acc_r, "reader accumulators " + msg)
            _assert_bits(got_out_r, out_r, "reader outputs " + msg)


# (chain, backend, tile): pipelined epilogue on both paths, reader G 32 and 64, one first-version producer
EMU_CASES = [
    (Chain(False, 70, 64, 70, 20, (1, 1), 32, 32, True, ShiftMode.DYNAMIC), "int4_pipe", "64x64"),
    (Chain(False, 20, 64, 130, 9, (1, 1), 64, 64, False, ShiftMode.STATIC), "int8_pipe", "128x128"),
    (Chain(True, 1, 40, 50, 12, (6, 5), 32, 64, True, ShiftMode.DYNAMIC), "int4_pipe", "128x64"),
    (Chain(False, 9, 64, 40, 9, (1, 1), 32, 32, False, ShiftMode.DYNAMIC), "int8", "64x64"),
]


@pytest.mark.parametrize("case", EMU_CASES, ids=lambda c: f"{c[0].id()}_{c[1]}_{c[2]}")
def test_emulated_workspace_epilogue_writes_the_cpu_image(emulator, cpu_ref, case):
    chain, backend, tile = case
    _check_emulated(emulator, cpu_ref, chain, backend, tile, [(chain.g_p, 2 * chain.g_r - 1), (0, 10_000)])


SLOW_EMU_CASES = [
    (Chain(conv, rows, 64, n, 11, hw, g_p, g_r, s, mode), backend, tile)
    for conv, rows, n, hw in ((False, 130, 100, (1, 1)), (True, 1, 70, (9, 8)))
    for g_p, g_r in ((32, 64), (64, 32))
    for s, mode in ((True, ShiftMode.STATIC), (False, ShiftMode.DYNAMIC))
    for backend, tile in (("int4_pipe", "128x128"), ("int8_pipe", "64x64"), ("int4", "64x64"))
]


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW_EMU_CASES, ids=lambda c: f"{c[0].id()}_{c[1]}_{c[2]}")
def test_emulated_workspace_epilogue_larger_sweep(emulator, cpu_ref, case):
    chain, backend, tile = case
    _check_emulated(emulator, cpu_ref, chain, backend, tile,
                    [(0, 0), (chain.g_p, chain.g_r), (10_000, 10_000), (0, 3 * chain.g_r)])


def test_int8_pipelined_reader_needs_no_weight_step_wide(emulator, cpu_ref):
    """The int8 pipelined kernel copies no weight step (its 4-bit B is the effective weights), so an int8
    reader of an image runs without weightStepWide and matches the CPU reference."""
    chain = EMU_CASES[0][0]
    _, producer, reader, x = _layers(chain, 5)
    host_p = workspace_host(permuted_producer(producer, reader), reader)
    _, image = cpu_forward_edge(cpu_ref, host_p, x, (1, 1), 0, in_edge=False, out_edge=True,
                                reader_n4=reader.group_size)
    host_r = workspace_host(reader)
    host_r.args.weightStepWide = None
    m4 = np.array([0, reader.group_size], np.int32)  # producer layer 0, reader layer 1 (one 4-bit group)
    want, _ = cpu_forward_edge(cpu_ref, host_r, image, (1, 1), reader.group_size, in_edge=True, out_edge=False)
    got, _ = emulate_edge(emulator, host_r, image, (1, 1), m4, "int8_pipe", in_edge=True, out_edge=False)
    np.testing.assert_array_equal(got, want)


def test_pipelined_reader_without_weight_step_wide_is_rejected(emulator, cpu_ref):
    chain = EMU_CASES[0][0]
    _, producer, reader, x = _layers(chain, 5)
    host_r = workspace_host(reader)
    host_r.args.weightStepWide = None
    image = np.zeros(chain.rows * edge_bytes_per_row(reader.padded_channels, reader.group_size), np.int8)
    with pytest.raises(ValueError, match="weightStepWide"):
        emulate_edge(emulator, host_r, image, (1, 1), np.zeros(2, np.int32), "int4_pipe", in_edge=True,
                     out_edge=False)


def test_missing_barrier_in_the_workspace_epilogue_is_caught(tmp_path_factory, cpu_ref):
    """The fault build drops the barrier between staging the code tile and reading it: the race check fires."""
    lib = build_emulator(tmp_path_factory.mktemp("emulator_ws_fault") / "libflexiq_cta_emulator_faults.so",
                         ("FLEXIQ_FAULT_INJECTION",))
    if lib is None:
        pytest.skip("the CTA emulator needs g++ (C++20) and the CUDA headers (cuda_runtime_api.h)")
    chain, backend, tile = EMU_CASES[0]
    _, producer, reader, x = _layers(chain, 11)
    host_p = workspace_host(permuted_producer(producer, reader), reader)
    max4bit = np.array([0, chain.g_r], np.int32)
    lib.flexiqEmulateSetFault(0)
    emulate_edge(lib, host_p, x, chain.hw, max4bit, backend, tile, in_edge=False, out_edge=True)  # clean
    lib.flexiqEmulateSetFault(4)  # pipe::kFaultEdgeNoBarrier
    try:
        with pytest.raises(EmulatorCheckFailed, match="race"):
            emulate_edge(lib, host_p, x, chain.hw, max4bit, backend, tile, in_edge=False, out_edge=True)
    finally:
        lib.flexiqEmulateSetFault(0)


# ---- a real conversion: what `convert --workspace-edges` writes runs bit-identically ----------------------


def test_real_conversion_workspace_edges_equal_its_int8_edges(cpu_ref, real_conversions, tmp_path):
    """fmnist ResNet converted with and without workspace edges: for every workspace edge, the producer node
    as written (rows in the reader's pi order) -> image -> reader gives the reader exactly what the codes-edge
    conversion's producer -> FP32 -> reader gives (same layers, same quantization: only the edge form differs)."""
    import onnx

    import flexiq_trt
    from flexiq_trt.calibration.model_io import input_specs
    from flexiq_trt.datasets.model_zoo import load_model_path
    from flexiq_trt.plugin_spec import PLUGIN_OPS

    path = load_model_path("fmnist_resnet")
    spec = input_specs(path)[0]
    calib = tmp_path / "calib.npz"
    np.savez(calib, **{spec.name: np.random.default_rng(0).uniform(0, 1, [16] + [d or 224 for d in spec.shape[1:]])
                       .astype(np.float32)})  # the session fixture's calibration (tests/conftest.py)
    cfg = flexiq_trt.ConvertConfig(selector="greedy", report=False, baselines=False, workspace_edges=True)
    ws = flexiq_trt.convert(path, calib=str(calib), output_dir=tmp_path / "ws", config=cfg, refine=NO_BLOCK_ROUNDING)
    plain = {n.name: n for n in onnx.load(str(real_conversions["fmnist_resnet"]["flexiq_onnx"])).graph.node
             if n.op_type in PLUGIN_OPS}
    nodes = {n.name: n for n in onnx.load(str(ws.files["flexiq_onnx"])).graph.node if n.op_type in PLUGIN_OPS}
    by_output = {n.output[0]: n for n in nodes.values()}
    readers = {n.input[0]: n for n in nodes.values()}
    checked = 0
    rng = np.random.default_rng(3)
    for name, node in nodes.items():
        attrs = {a.name: a for a in node.attribute}
        if attrs["output_int8"].i != 2:
            continue
        reader = readers[node.output[0]]
        assert by_output[node.output[0]] is node and {a.name: a.i for a in reader.attribute}["input_int8"] == 2
        host_p_ws, host_r = host_layer_from_node(node), host_layer_from_node(reader)
        host_p = host_layer_from_node(plain[name])  # original channel order, float output
        assert host_p_ws.args.readerLayerIndex == host_r.args.layerIndex
        hw = (7, 6)
        x = (rng.normal(0, 2, (2, host_p.layer.in_channels, *hw)) * host_p.args.actScale).astype(np.float32)
        if not host_p.args.actSigned:
            x = np.abs(x)
        out_hw = host_p.layer.geometry.output_hw(*hw)
        for n4_p, n4_r in [(0, 0), (host_p.args.groupSize, host_r.args.groupSize), (10_000, 10_000)]:
            _, y = cpu_forward_edge(cpu_ref, host_p, x, hw, n4_p, in_edge=False, out_edge=False)
            want_acc, want_out = cpu_forward_edge(cpu_ref, host_r, y, out_hw, n4_r, in_edge=False, out_edge=False)
            for fmt in (True, False):
                _, image = cpu_forward_edge(cpu_ref, host_p_ws, x, hw, n4_p, in_edge=False, out_edge=True,
                                            reader_n4=n4_r, int4_format=fmt)
                got_acc, got_out = cpu_forward_edge(cpu_ref, host_r, image, out_hw, n4_r, in_edge=True,
                                                    out_edge=False, int4_format=fmt)
                msg = f"{name} -> {reader.name} n4 {n4_p}/{n4_r} {'int4' if fmt else 'int8'} format"
                _assert_bits(got_acc, want_acc, msg)
                _assert_bits(got_out, want_out, msg)
        checked += 1
    assert checked >= 3, "the fmnist ResNet has three conv -> ReLU -> conv workspace edges"


# ---- GPU (marker gpu: skipped without a device) ------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["int4_pipe", "int8_pipe", "int4", "int8", "reference"])
@pytest.mark.parametrize("case", EMU_CASES[:3], ids=lambda c: c[0].id())
def test_gpu_workspace_edge_equals_cpu_image_and_fp32_chain(cpu_ref, case, backend):
    lib, why = load_kernels_capi()
    if lib is None:
        pytest.skip(why)
    chain, _, tile = case
    _, producer, reader, x = _layers(chain, chain.cin * 3 + chain.m)
    _, y, _, _ = _float_chain(cpu_ref, producer, reader, x, 0, 0)
    reader = _with_reader_scale(reader, y)
    host_p = workspace_host(permuted_producer(producer, reader), reader)
    host_r = workspace_host(reader)
    tile = tile if backend.endswith("_pipe") else None
    for n4_p, n4_r in [(0, 0), (chain.g_p, 2 * chain.g_r - 1), (10_000, 10_000)]:
        max4bit = np.array([n4_p, n4_r], np.int32)
        msg = f"{chain.id()} {backend} n4 producer {n4_p} reader {n4_r}"
        _, want_image = cpu_forward_edge(cpu_ref, host_p, x, chain.hw, n4_p, in_edge=False, out_edge=True,
                                         reader_n4=n4_r, int4_format=backend in ("int4", "int4_pipe"))
        _, image = gpu_forward_edge(lib, host_p, x, chain.hw, max4bit, backend, tile, in_edge=False, out_edge=True)
        np.testing.assert_array_equal(image, want_image, err_msg="edge image " + msg)
        _, _, acc_r, out_r = _float_chain(cpu_ref, producer, reader, x, n4_p, n4_r)
        got_acc_r, got_out_r = gpu_forward_edge(lib, host_r, image, _out_hw(producer, chain.hw), max4bit, backend,
                                                tile, in_edge=True, out_edge=False)
        _assert_bits(got_acc_r, acc_r, "reader accumulators " + msg)
        _assert_bits(got_out_r, out_r, "reader outputs " + msg)
