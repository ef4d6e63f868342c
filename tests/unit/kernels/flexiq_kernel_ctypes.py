"""ctypes bindings of the kernel-side C ABIs, shared by the CPU and GPU kernel tests.

`FlexiqLayerArgs`/`FlexiqProblem` mirror plugins/kernels/flexiqLayerArgs.h field by field;
`HostLayer` turns a `QuantizedLayer` into those structs over host arrays it keeps alive.
Random layers are built directly from random codes (the tests check arithmetic, not quantization).
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flexiq_trt.plugin_spec import CONV_OP, GEMM_OP, Activation, ShiftMode
from flexiq_trt.quantization import bits
from flexiq_trt.quantization.layer import ConvGeometry, QuantizedLayer

REPO_ROOT = Path(__file__).resolve().parents[3]
_P = ctypes.c_void_p
_I = ctypes.c_int32
_F = ctypes.c_float


class FlexiqLayerArgs(ctypes.Structure):
    """Mirror of `FlexiqLayerArgs` (plugins/kernels/flexiqLayerArgs.h)."""

    _fields_ = [
        ("isConv", _I), ("inChannels", _I), ("paddedChannels", _I), ("outChannels", _I),
        ("groupSize", _I), ("kernelR", _I), ("kernelS", _I), ("strideH", _I), ("strideW", _I),
        ("padTop", _I), ("padLeft", _I), ("padBottom", _I), ("padRight", _I),
        ("dilationH", _I), ("dilationW", _I), ("actScale", _F), ("actSigned", _I),
        ("actShiftMode", _I), ("activation", _I), ("alpha", _F), ("beta", _F), ("layerIndex", _I),
        ("outputScale", _F), ("outputSigned", _I), ("permutation", _P), ("weightInt8", _P), ("weightInt4", _P), ("weightStep", _P),
        ("outScale", _P), ("bias", _P), ("actStaticShift", _P),
        ("readerLayerIndex", _I), ("readerGroupSize", _I), ("readerShiftMode", _I), ("readerStaticShift", _P),
        ("weightStepWide", _P), ("weightEffective", _P),
    ]


class FlexiqProblem(ctypes.Structure):
    """Mirror of `FlexiqProblem` (plugins/kernels/flexiqLayerArgs.h)."""

    _fields_ = [
        ("batch", _I), ("height", _I), ("width", _I), ("dataType", _I), ("outputType", _I),
        ("input", _P), ("output", _P), ("max4bit", _P), ("accOut", _P),
    ]


# FlexiqDataType (flexiqLayerArgs.h): element types of a layer's input and output.
FP32, FP16, INT8, WORKSPACE = 0, 1, 2, 3
EDGE_POISON = np.int8(-91)  # 0xA5: bytes of a workspace edge that no step writes keep it (compared as well)


def _ptr(a: np.ndarray) -> int:
    return a.ctypes.data


def effective_weights(w4_packed: np.ndarray, weight_step: np.ndarray, group_size: int) -> np.ndarray:
    """The int8 backends' effective weights [N, K]: w4[n, k] * step_w[g(k)], k = tap * C_pad + c, g = c // G
    (FlexiqLayerArgs::weightEffective; the NumPy oracle of flexiq::makeEffectiveWeights)."""
    w4 = bits.unpack_int4(np.asarray(w4_packed, np.int8))
    steps = np.repeat(np.asarray(weight_step, np.int32), group_size)  # [C_pad]
    return np.ascontiguousarray((w4.reshape(w4.shape[0], -1, steps.size) * steps).reshape(w4.shape), np.int8)


@dataclass(frozen=True)
class Int8Io:
    """Which side of a layer is an INT8 edge (docs/design.md §2.3) and the consumers' quantizer.

    `input_int8`: the input holds the layer's own activation codes (s8 as int8, u8 as uint8 bits);
    `output_int8`: the output holds `quantize(y, output_scale, output_signed)` as int8 bytes.
    """

    input_int8: bool = False
    output_int8: bool = False
    output_scale: float = 1.0
    output_signed: bool = True


def activation_codes(x: np.ndarray, scale: float, signed: bool) -> np.ndarray:
    """The INT8 tensor an INT8 edge carries for float values `x` (the NumPy oracle's rule, bits.py)."""
    q = bits.quantize_activation(np.asarray(x, np.float32), np.float32(scale), signed)
    return np.asarray(q).astype(np.int64).astype(np.uint8).view(np.int8)


def code_values(stored: np.ndarray, signed: bool) -> np.ndarray:
    """The codes an INT8 tensor stands for: s8 clamped to [-127, 127], u8 as [0, 255] (int32)."""
    s = np.asarray(stored, np.int8)
    return np.clip(s.astype(np.int32), -127, 127) if signed else s.view(np.uint8).astype(np.int32)


@dataclass
class HostLayer:
    """A `QuantizedLayer` in plugin layouts (host arrays) plus the `FlexiqLayerArgs` pointing at them."""

    layer: QuantizedLayer
    arrays: dict[str, np.ndarray]
    args: FlexiqLayerArgs

    @classmethod
    def from_layer(cls, layer: QuantizedLayer, io: Int8Io | None = None) -> HostLayer:
        """Flatten weights to [N, K], pack int4 low-nibble-first, precompute out_scale in float32.

        `io`: the consumers' quantizer of an INT8 output (outputScale / outputSigned); the I/O types
        themselves travel with each call, as in FlexiqProblem.
        """
        io = io or Int8Io()
        n = layer.out_channels
        arrays = {
            "permutation": np.ascontiguousarray(layer.permutation, dtype=np.int32),
            "weightInt8": np.ascontiguousarray(layer.weight_int8.reshape(n, -1), dtype=np.int8),
            "weightInt4": np.ascontiguousarray(bits.pack_int4(layer.weight_int4.reshape(n, -1))),
            "weightStep": np.ascontiguousarray(layer.weight_step, dtype=np.int8),
            "outScale": np.ascontiguousarray(layer.out_scale(), dtype=np.float32),
            "bias": np.ascontiguousarray(layer.bias_table(), dtype=np.float32),  # [G_count + 1, N] rungs
            "actStaticShift": np.ascontiguousarray(layer.act_static_shift, dtype=np.int8),
        }
        # As DeviceWeights makes it for the int8 backends: without it INT8_PIPELINED falls back to INT8_MMA.
        arrays["weightEffective"] = effective_weights(arrays["weightInt4"], arrays["weightStep"], layer.group_size)
        geo = layer.geometry or ConvGeometry()
        args = FlexiqLayerArgs(
            isConv=int(layer.is_conv), inChannels=layer.in_channels, paddedChannels=layer.padded_channels,
            outChannels=n, groupSize=layer.group_size, kernelR=geo.kernel_shape[0], kernelS=geo.kernel_shape[1],
            strideH=geo.strides[0], strideW=geo.strides[1], padTop=geo.pads[0], padLeft=geo.pads[1],
            padBottom=geo.pads[2], padRight=geo.pads[3], dilationH=geo.dilations[0], dilationW=geo.dilations[1],
            actScale=layer.act_scale, actSigned=int(layer.act_signed), actShiftMode=int(layer.act_shift_mode),
            activation=int(layer.activation), alpha=layer.activation_alpha, beta=layer.activation_beta,
            layerIndex=layer.layer_index, outputScale=io.output_scale, outputSigned=int(io.output_signed),
            **{k: _ptr(v) for k, v in arrays.items()})
        return cls(layer, arrays, args)


def edge_bytes_per_row(padded_channels: int, group_size: int) -> int:
    """plugins/kernels/flexiqEdgeImage.h edgeBytesPerRow (plugin_spec.workspace_bytes_per_row)."""
    return padded_channels + padded_channels // 2 + 5 * (padded_channels // group_size)


def permuted_producer(producer: QuantizedLayer, reader: QuantizedLayer) -> QuantizedLayer:
    """`producer` with its output channels in the reader's pi order (what plugin_fields.py writes for a
    workspace edge): weight rows, scales, bias and its per-rung shifts permuted alike (the weight steps
    belong to the input groups: unchanged)."""
    rows = np.asarray(reader.permutation[:producer.out_channels], np.int64)
    gbs = producer.group_bias_shift
    return dataclasses.replace(
        producer, weight_int8=producer.weight_int8[rows], weight_int4=producer.weight_int4[rows],
        weight_scale=producer.weight_scale[rows], bias=producer.bias[rows],
        group_bias_shift=None if gbs is None else gbs[:, rows])


def workspace_host(layer: QuantizedLayer, reader: QuantizedLayer | None = None, io: Int8Io | None = None) -> HostLayer:
    """HostLayer of one side of a workspace edge: step_w widened to int32 (weightStepWide, as DeviceWeights makes it),
    and for a producer (`reader` given, `layer` already permuted) the reader's fields and quantizer."""
    if reader is not None:
        io = Int8Io(False, True, float(np.float32(reader.act_scale)), bool(reader.act_signed))
    host = HostLayer.from_layer(layer, io)
    host.arrays["weightStepWide"] = np.ascontiguousarray(layer.weight_step, dtype=np.int32)
    host.args.weightStepWide = _ptr(host.arrays["weightStepWide"])
    if reader is not None:
        host.arrays["readerStaticShift"] = np.ascontiguousarray(
            np.asarray(reader.act_static_shift, np.int8)[: -(-layer.out_channels // reader.group_size)])
        host.args.readerStaticShift = _ptr(host.arrays["readerStaticShift"])
        host.args.readerLayerIndex = reader.layer_index
        host.args.readerGroupSize = reader.group_size
        host.args.readerShiftMode = int(reader.act_shift_mode)
    return host


def _with_non_pow2_first(steps: np.ndarray) -> np.ndarray:
    """`steps` with a power of two in group 0 moved to a neighbouring non-power (1, 2 -> 3; 4 -> 5; 8 -> 9;
    16 -> 15), drawing nothing more from the generator."""
    steps[0] = {1: 3, 2: 3, 4: 5, 8: 9, 16: 15}.get(int(steps[0]), int(steps[0]))
    return steps


def random_layer(rng: np.random.Generator, *, conv: bool, in_channels: int, out_channels: int,
                 group_size: int = 32, signed: bool = True, shift_mode: ShiftMode = ShiftMode.DYNAMIC,
                 geometry: ConvGeometry | None = None, activation: Activation = Activation.NONE,
                 layer_index: int = 0, bias_rungs: bool = True) -> QuantizedLayer:
    """A valid `QuantizedLayer` with random codes, steps, permutation, scales and bias.

    Weight steps are drawn from 1..16 and group 0's is never a power of two, so every layer has a step that
    a shift could not stand for.

    `bias_rungs`: a random per-group bias shift, so every rung of the bias table differs and each
    backend's choice of row (docs/design.md §2.8) is checked at every n4 the tests run.
    """
    c_pad = -(-in_channels // group_size) * group_size
    groups = c_pad // group_size
    geo = (geometry or ConvGeometry()) if conv else None
    r, s = geo.kernel_shape if geo else (1, 1)
    wshape = (out_channels, r, s, c_pad) if conv else (out_channels, c_pad)
    perm = np.concatenate([rng.permutation(in_channels), np.arange(in_channels, c_pad)]).astype(np.int32)
    alpha, beta = {Activation.CLIP: (-0.5, 0.75), Activation.LEAKY_RELU: (0.1, 0.0),
                   Activation.HARD_SIGMOID: (0.2, 0.5)}.get(activation, (0.0, 0.0))
    return QuantizedLayer(
        name=f"rand_{'conv' if conv else 'gemm'}", op_type=CONV_OP if conv else GEMM_OP, layer_index=layer_index,
        group_size=group_size, in_channels=in_channels, out_channels=out_channels, permutation=perm,
        act_scale=float(rng.uniform(0.01, 0.1)), act_signed=signed, act_shift_mode=shift_mode,
        act_static_shift=rng.integers(0, 5, groups).astype(np.int8),
        weight_int8=rng.integers(-127, 128, wshape).astype(np.int8),
        weight_int4=rng.integers(-8, 8, wshape).astype(np.int8),
        weight_step=_with_non_pow2_first(rng.integers(1, 17, groups)).astype(np.int8),
        weight_scale=rng.uniform(0.001, 0.02, out_channels).astype(np.float32),
        bias=rng.normal(0, 1, out_channels).astype(np.float32),
        activation=activation, activation_alpha=alpha, activation_beta=beta, geometry=geo,
        group_bias_shift=rng.normal(0, 0.5, (groups, out_channels)) if bias_rungs else None)


def random_input(rng: np.random.Generator, layer: QuantizedLayer, batch: int, height: int, width: int,
                 signed: bool) -> np.ndarray:
    """Float input spanning small and saturating codes, with exact half-way points to test rounding."""
    shape = (batch, layer.in_channels, height, width) if layer.is_conv else (batch, layer.in_channels)
    # Per-channel ranges so some groups use small activation steps and others large ones.
    span = rng.choice([2.0, 10.0, 40.0, 140.0, 300.0], size=layer.in_channels)  # 300: saturates s8 and u8
    span = span.reshape((1, -1, 1, 1) if layer.is_conv else (1, -1))
    codes = rng.uniform(-1, 1, shape) * span
    codes = np.where(rng.random(shape) < 0.2, np.round(codes) + 0.5, codes)  # half-way points
    x = (codes * np.float32(layer.act_scale)).astype(np.float32)
    return x if signed else np.abs(x)


# ---- library loading -------------------------------------------------------------------------

def _candidates(name: str, env: str) -> list[Path]:
    paths = [Path(os.environ[env])] if os.environ.get(env) else []
    return paths + sorted(REPO_ROOT.glob(f"build*/**/{name}"))


def load_cpu_reference(build_dir: Path) -> ctypes.CDLL | None:
    """Load libflexiq_cpu_reference.so: $FLEXIQ_CPU_REFERENCE_LIB, a CMake build dir, or a fresh g++ build."""
    found = [p for p in _candidates("libflexiq_cpu_reference.so", "FLEXIQ_CPU_REFERENCE_LIB") if p.is_file()]
    if not found:
        if shutil.which(os.environ.get("CXX", "g++")) is None:
            return None
        script = REPO_ROOT / "plugins" / "reference" / "build_standalone.sh"
        subprocess.run([str(script), str(build_dir)], check=True, capture_output=True)
        found = [build_dir / "libflexiq_cpu_reference.so"]
    lib = ctypes.CDLL(str(found[0]))
    lib.flexiqCpuForward.argtypes = [ctypes.POINTER(FlexiqLayerArgs), _I, _I, _I, _P, _I, _P, _P,
                                     ctypes.c_char_p, ctypes.c_size_t]
    lib.flexiqCpuForward.restype = _I
    lib.flexiqCpuForwardEdge.argtypes = [ctypes.POINTER(FlexiqLayerArgs), _I, _I, _I, _I, _P, _I, _P, _I, _P, _I, _I,
                                         ctypes.c_char_p, ctypes.c_size_t]
    lib.flexiqCpuForwardEdge.restype = _I
    lib.flexiqCpuForwardIo.argtypes = [ctypes.POINTER(FlexiqLayerArgs), _I, _I, _I, _I, _P, _I, _P, _I, _P,
                                       ctypes.c_char_p, ctypes.c_size_t]
    lib.flexiqCpuForwardIo.restype = _I
    lib.flexiqCpuActivationCodeFromInt8.argtypes, lib.flexiqCpuActivationCodeFromInt8.restype = [_I, _I], _I
    lib.flexiqCpuActivationCodeBits.argtypes, lib.flexiqCpuActivationCodeBits.restype = [_F, _F, _I], _I
    for fn in ("flexiqCpuQuantizeActivation",):
        getattr(lib, fn).argtypes, getattr(lib, fn).restype = [_F, _F, _I], _I
    for fn in ("flexiqCpuMagnitudeBits", "flexiqCpuActStepFromMagnitude"):
        getattr(lib, fn).argtypes, getattr(lib, fn).restype = [_I, _I], _I
    for fn in ("flexiqCpuExtract4Step", "flexiqCpuEffectiveCodeStep", "flexiqCpuClampN4"):
        getattr(lib, fn).argtypes, getattr(lib, fn).restype = [_I, _I, _I], _I
    lib.flexiqCpuUnpackNibble.argtypes, lib.flexiqCpuUnpackNibble.restype = [_P, ctypes.c_int64, _I], _I
    lib.flexiqCpuApplyActivation.argtypes, lib.flexiqCpuApplyActivation.restype = [_F, _I, _F, _F], _F
    if hasattr(lib, "flexiqCpuEffectiveWeights"):  # absent from a stale prebuilt library (older build)
        lib.flexiqCpuEffectiveWeights.argtypes = [ctypes.POINTER(FlexiqLayerArgs), _P]
        lib.flexiqCpuEffectiveWeights.restype = _I
    lib.flexiqFragmentIndex.argtypes = [_I, _I, _I, ctypes.POINTER(_I), ctypes.POINTER(_I)]
    lib.flexiqFragmentIndex.restype = _I
    return lib


def output_shape(layer: QuantizedLayer, batch: int, height: int, width: int) -> tuple[int, ...]:
    """NCHW output shape of a conv, [M, N] of a gemm."""
    if not layer.is_conv:
        return (batch, layer.out_channels)
    p, q = layer.geometry.output_hw(height, width)
    return (batch, layer.out_channels, p, q)


def cpu_forward(lib: ctypes.CDLL, host: HostLayer, x: np.ndarray, n4: int,
                output_int8: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Run the C++ CPU reference: (int32 accumulators, output) in the NumPy reference's layouts.

    An int8 `x` is an INT8 edge (the layer's own codes); otherwise x is float32. `output_int8`: the
    output is the consumers' int8 codes (host.args.outputScale / outputSigned), else float32.
    """
    layer = host.layer
    batch = x.shape[0]
    height, width = (x.shape[2], x.shape[3]) if layer.is_conv else (1, 1)
    int8_in = x.dtype == np.int8
    xc = np.ascontiguousarray(x, dtype=np.int8 if int8_in else np.float32)
    shape = output_shape(layer, batch, height, width)
    acc, out = np.zeros(shape, np.int32), np.zeros(shape, np.int8 if output_int8 else np.float32)
    why = ctypes.create_string_buffer(256)
    status = lib.flexiqCpuForwardIo(ctypes.byref(host.args), batch, height, width, INT8 if int8_in else FP32,
                                    _ptr(xc), n4, _ptr(acc), INT8 if output_int8 else FP32, _ptr(out), why, len(why))
    if status != 0:
        raise ValueError(f"flexiqCpuForwardIo rejected layer {layer.name}: {why.value.decode()}")
    return acc, out


def _edge_out(host: HostLayer, batch: int, height: int, width: int, out_edge: bool):
    layer = host.layer
    shape = output_shape(layer, batch, height, width)
    if not out_edge:
        return shape, np.zeros(shape, np.float32)
    rows = int(np.prod(shape)) // layer.out_channels
    c_pad_r = -(-layer.out_channels // host.args.readerGroupSize) * host.args.readerGroupSize
    return shape, np.full(rows * edge_bytes_per_row(c_pad_r, host.args.readerGroupSize), EDGE_POISON, np.int8)


def _edge_buffers(host: HostLayer, x: np.ndarray, hw: tuple[int, int], in_edge: bool, out_edge: bool):
    """(batch, H, W, accumulators, output buffer, contiguous input) of a call with workspace edges."""
    height, width = hw
    layer = host.layer
    batch = x.shape[0] if not in_edge else x.size // (
        height * width * edge_bytes_per_row(layer.padded_channels, layer.group_size))
    shape, out = _edge_out(host, batch, height, width, out_edge)
    return (batch, height, width, np.zeros(shape, np.int32), out,
            np.ascontiguousarray(x, np.int8 if in_edge else np.float32))


def cpu_forward_edge(lib: ctypes.CDLL, host: HostLayer, x: np.ndarray, hw: tuple[int, int], n4: int, *,
                     in_edge: bool, out_edge: bool, reader_n4: int = 0,
                     int4_format: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The CPU reference with workspace edges (flexiqCpuForwardEdge): `x` is float32, or with `in_edge` the
    flat int8 image; `hw` the input's (H, W) (gemm (1, 1)). Returns (accumulators, float32 output or the
    flat int8 image written for `reader_n4` in the int4 / int8 format)."""
    layer = host.layer
    batch, height, width, acc, out, xc = _edge_buffers(host, x, hw, in_edge, out_edge)
    why = ctypes.create_string_buffer(256)
    status = lib.flexiqCpuForwardEdge(ctypes.byref(host.args), batch, height, width, WORKSPACE if in_edge else FP32,
                                      _ptr(xc), n4, _ptr(acc), WORKSPACE if out_edge else FP32, _ptr(out),
                                      reader_n4, int(int4_format), why, len(why))
    if status != 0:
        raise ValueError(f"flexiqCpuForwardEdge rejected layer {layer.name}: {why.value.decode()}")
    return acc, out


def emulate_edge(lib: ctypes.CDLL, host: HostLayer, x: np.ndarray, hw: tuple[int, int], max4bit: np.ndarray,
                 backend: str, tile: str = "64x64", *, in_edge: bool, out_edge: bool) -> tuple[np.ndarray, np.ndarray]:
    """The emulated kernels with workspace edges (as cpu_forward_edge; n4 values come from `max4bit`)."""
    layer = host.layer
    batch, height, width, acc, out, xc = _edge_buffers(host, x, hw, in_edge, out_edge)
    m4 = np.ascontiguousarray(max4bit, np.int32)
    why = ctypes.create_string_buffer(512)
    status = lib.flexiqEmulateForwardEx(EMULATOR_BACKENDS[backend], TILES[tile], WORKSPACE if in_edge else FP32,
                                        WORKSPACE if out_edge else FP32, ctypes.byref(host.args), batch, height,
                                        width, _ptr(xc), _ptr(m4), m4.size, _ptr(acc), _ptr(out), why, len(why))
    if status == 2:
        raise EmulatorCheckFailed(why.value.decode())
    if status != 0:
        raise ValueError(f"flexiqEmulateForwardEx({backend}, {tile}) rejected {layer.name}: {why.value.decode()}")
    return acc, out


# ---- CPU CTA emulator (tests/unit/kernels/emulation/flexiqWarpEmulator.cpp) -----------------------

EMULATOR_SOURCE = Path(__file__).parent / "emulation" / "flexiqWarpEmulator.cpp"
EMULATOR_BACKENDS = {"int4": 1, "int8": 2, "int4_pipe": 4, "int8_pipe": 5}
TILES = {"128x128": 0, "128x64": 1, "64x64": 2}
TILE_SHAPES = {0: (128, 128), 1: (128, 64), 2: (64, 64)}


class EmulatorCheckFailed(AssertionError):
    """The emulator's bounds, race or cp.async checks found a fault (status 2)."""


def cuda_include() -> Path | None:
    """The CUDA headers directory (cuda_runtime_api.h, cuda_fp16.h), or None."""
    cands = [os.environ.get("CUDA_HOME", ""), "/usr/local/cuda"]
    nvcc = shutil.which("nvcc")
    if nvcc:
        cands.append(str(Path(nvcc).resolve().parent.parent))
    for c in cands:
        if c and (Path(c) / "include" / "cuda_runtime_api.h").is_file():
            return Path(c) / "include"
    return None


def build_emulator(out: Path, defines: tuple[str, ...] = ()) -> ctypes.CDLL | None:
    """Compile the emulator with g++ (C++20) into `out` and load it; None without g++ or CUDA headers.

    `defines` are extra -D switches, e.g. the kernels' FLEXIQ_FAULT_* fault switches.
    """
    cxx = shutil.which(os.environ.get("CXX", "g++"))
    inc = cuda_include()
    if cxx is None or inc is None:
        return None
    kernels = REPO_ROOT / "plugins" / "kernels"
    # FLEXIQ_SANITIZE=1: ASan + UBSan (tests/unit/hardening runs these tests so, with libasan preloaded).
    sanitize = (["-O1", "-g1", "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
                if os.environ.get("FLEXIQ_SANITIZE") == "1" else [])
    subprocess.run([cxx, "-std=c++20", "-O2", "-fPIC", "-shared", "-pthread", "-ffp-contract=off", *sanitize,
                    "-DFLEXIQ_WARP_EMULATION", "-DFLEXIQ_EMULATE_FP16", *(f"-D{d}" for d in defines), f"-I{inc}",
                    f"-I{REPO_ROOT / 'plugins' / 'common'}", f"-I{kernels}", str(EMULATOR_SOURCE),
                    str(kernels / "flexiqShape.cpp"), str(kernels / "flexiqParams.cpp"), "-o", str(out)], check=True)
    lib = ctypes.CDLL(str(out))
    lib.flexiqEmulateForward.argtypes = [_I, ctypes.POINTER(FlexiqLayerArgs), _I, _I, _I, _P, _P, _P, _P,
                                         ctypes.c_char_p, ctypes.c_size_t]
    lib.flexiqEmulateForward.restype = _I
    lib.flexiqEmulateForwardEx.argtypes = [_I, _I, _I, _I, ctypes.POINTER(FlexiqLayerArgs), _I, _I, _I, _P, _P, _I,
                                           _P, _P, ctypes.c_char_p, ctypes.c_size_t]
    lib.flexiqEmulateForwardEx.restype = _I
    lib.flexiqEmulateSwizzle.argtypes, lib.flexiqEmulateSwizzle.restype = [_I, _I, _I], ctypes.c_uint32
    lib.flexiqEmulateSetFault.argtypes, lib.flexiqEmulateSetFault.restype = [_I], None
    return lib


_NP_TYPES = {FP32: np.float32, FP16: np.float16, INT8: np.int8}


def _io_types(x: np.ndarray, fp16: bool, output_int8: bool) -> tuple[int, int]:
    """(input, output) FlexiqDataType of a call: an int8 `x` is an INT8 edge, whose float output is FP32."""
    in_type = INT8 if x.dtype == np.int8 else (FP16 if fp16 else FP32)
    out_type = INT8 if output_int8 else (FP16 if fp16 and in_type != INT8 else FP32)
    return in_type, out_type


def emulate(lib: ctypes.CDLL, host: HostLayer, x: np.ndarray, max4bit: np.ndarray, backend: str,
            tile: str = "64x64", fp16: bool = False, output_int8: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Run a layer on the emulator: (int32 accumulators, output as float32, or int8 codes with `output_int8`).

    An int8 `x` is an INT8 edge (the layer's own codes). Raises EmulatorCheckFailed when a
    bounds/race/cp.async check fails, ValueError on bad arguments.
    """
    layer = host.layer
    batch = x.shape[0]
    h, w = (x.shape[2], x.shape[3]) if layer.is_conv else (1, 1)
    in_type, out_type = _io_types(x, fp16, output_int8)
    shape = output_shape(layer, batch, h, w)
    acc = np.zeros(shape, np.int32)
    out = np.zeros(shape, _NP_TYPES[out_type])
    xc = np.ascontiguousarray(x, _NP_TYPES[in_type])
    m4 = np.ascontiguousarray(max4bit, np.int32)
    why = ctypes.create_string_buffer(512)
    status = lib.flexiqEmulateForwardEx(EMULATOR_BACKENDS[backend], TILES[tile], in_type, out_type,
                                        ctypes.byref(host.args), batch, h, w, _ptr(xc), _ptr(m4), m4.size, _ptr(acc),
                                        _ptr(out), why, len(why))
    if status == 2:
        raise EmulatorCheckFailed(why.value.decode())
    if status != 0:
        raise ValueError(f"flexiqEmulateForwardEx({backend}, {tile}) rejected {layer.name}: {why.value.decode()}")
    return acc, out if output_int8 else out.astype(np.float32)


# ---- GPU C ABI (libflexiq_kernels_capi.so) ---------------------------------------------------------

BACKENDS = {"auto": 0, "int4": 1, "int8": 2, "reference": 3, "int4_pipe": 4, "int8_pipe": 5}
NATIVE_INT4_SMS = {(8, 0), (8, 6), (8, 7), (8, 9)}


def load_kernels_capi() -> tuple[ctypes.CDLL | None, str]:
    """(library, "") or (None, reason): $FLEXIQ_KERNELS_CAPI_LIB or a CMake build dir under the repo."""
    found = [p for p in _candidates("libflexiq_kernels_capi.so", "FLEXIQ_KERNELS_CAPI_LIB") if p.is_file()]
    if not found:
        return None, "libflexiq_kernels_capi.so not built (set FLEXIQ_KERNELS_CAPI_LIB or build plugins/kernels)"
    try:
        lib = ctypes.CDLL(str(found[0]))
    except OSError as exc:  # e.g. no libcudart on this machine
        return None, f"cannot load {found[0]}: {exc}"
    lib.flexiqCapiDeviceInfo.argtypes = [ctypes.POINTER(_I)] * 3
    lib.flexiqCapiDeviceInfo.restype = _I
    lib.flexiqCapiSelectBackend.argtypes, lib.flexiqCapiSelectBackend.restype = [_I, _I], _I
    lib.flexiqCapiRunLayer.argtypes = [_I, ctypes.POINTER(FlexiqLayerArgs), _I, _I, _I, _I, _P, _P, _I, _P, _P,
                                       _I, ctypes.POINTER(_F), ctypes.c_char_p, ctypes.c_size_t]
    lib.flexiqCapiRunLayer.restype = _I
    lib.flexiqCapiRunLayerTile.argtypes = [_I, _I, ctypes.POINTER(FlexiqLayerArgs), _I, _I, _I, _I, _P, _P, _I, _P,
                                           _P, _I, ctypes.POINTER(_F), ctypes.c_char_p, ctypes.c_size_t]
    lib.flexiqCapiRunLayerTile.restype = _I
    lib.flexiqCapiRunLayerIo.argtypes = [_I, _I, ctypes.POINTER(FlexiqLayerArgs), _I, _I, _I, _I, _I, _P, _P, _I, _P,
                                         _P, _I, ctypes.POINTER(_F), ctypes.c_char_p, ctypes.c_size_t]
    lib.flexiqCapiRunLayerIo.restype = _I
    lib.flexiqCapiRunnerSelect.argtypes = [_I, _I, _I, ctypes.POINTER(FlexiqLayerArgs), _I, _I, _I, ctypes.POINTER(_I)]
    lib.flexiqCapiRunnerSelect.restype = _I
    if hasattr(lib, "flexiqCapiResolveBackend"):  # absent from a stale prebuilt library (older build)
        lib.flexiqCapiResolveBackend.argtypes = [_I, _I, _I, ctypes.POINTER(FlexiqLayerArgs)]
        lib.flexiqCapiResolveBackend.restype = _I
    return lib, ""


def device_info(lib: ctypes.CDLL) -> tuple[int, tuple[int, int]]:
    """(number of CUDA devices, (major, minor) of device 0)."""
    count, major, minor = _I(), _I(), _I()
    lib.flexiqCapiDeviceInfo(ctypes.byref(count), ctypes.byref(major), ctypes.byref(minor))
    return count.value, (major.value, minor.value)


def gpu_forward(lib: ctypes.CDLL, host: HostLayer, x: np.ndarray, max4bit: np.ndarray, backend: str,
                fp16: bool, iterations: int = 1, tile: str | None = None,
                output_int8: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """Run a layer on the GPU: (int32 accumulators, output as float32 or int8 codes, ms per call when timed).

    `tile` forces a pipelined tile configuration ("128x128", "128x64", "64x64"); None: the runner's choice.
    An int8 `x` is an INT8 edge (the layer's own codes); `output_int8` writes the consumers' codes.
    """
    layer = host.layer
    batch = x.shape[0]
    height, width = (x.shape[2], x.shape[3]) if layer.is_conv else (1, 1)
    in_type, out_type = _io_types(x, fp16, output_int8)
    xin = np.ascontiguousarray(x, dtype=_NP_TYPES[in_type])
    shape = output_shape(layer, batch, height, width)
    acc = np.zeros(shape, np.int32)
    out = np.zeros(shape, _NP_TYPES[out_type])
    m4 = np.ascontiguousarray(max4bit, dtype=np.int32)
    ms = _F(0.0)
    why = ctypes.create_string_buffer(256)
    status = lib.flexiqCapiRunLayerIo(BACKENDS[backend], TILES[tile] if tile else -1, ctypes.byref(host.args),
                                      batch, height, width, in_type, out_type, _ptr(xin), _ptr(m4), m4.size,
                                      _ptr(out), _ptr(acc), iterations, ctypes.byref(ms), why, len(why))
    if status != 0:
        raise RuntimeError(f"flexiqCapiRunLayerIo({backend}) on {layer.name}: status {status}: {why.value.decode()}")
    return acc, out if output_int8 else out.astype(np.float32), ms.value


def gpu_forward_edge(lib: ctypes.CDLL, host: HostLayer, x: np.ndarray, hw: tuple[int, int], max4bit: np.ndarray,
                     backend: str, tile: str | None = None, *, in_edge: bool,
                     out_edge: bool) -> tuple[np.ndarray, np.ndarray]:
    """Run a layer on the GPU with workspace edges (flexiqCapiRunLayerIo), as `emulate_edge` does on the CPU."""
    layer = host.layer
    batch, height, width, acc, out, xc = _edge_buffers(host, x, hw, in_edge, out_edge)
    m4 = np.ascontiguousarray(max4bit, np.int32)
    ms = _F(0.0)
    why = ctypes.create_string_buffer(256)
    status = lib.flexiqCapiRunLayerIo(BACKENDS[backend], TILES[tile] if tile else -1, ctypes.byref(host.args), batch,
                                      height, width, WORKSPACE if in_edge else FP32, WORKSPACE if out_edge else FP32,
                                      _ptr(xc), _ptr(m4), m4.size, _ptr(out), _ptr(acc), 1, ctypes.byref(ms), why,
                                      len(why))
    if status != 0:
        raise RuntimeError(f"flexiqCapiRunLayerIo({backend}) on {layer.name}: status {status}: {why.value.decode()}")
    return acc, out


def host_layer_from_node(node) -> HostLayer:
    """HostLayer of a FlexiQ plugin node of a written `<stem>.flexiq.onnx`: its fields as the plugin reads them
    (weights already in the node's layouts), so tests run the C++ reference on exactly what `convert` wrote."""
    from onnx import helper, numpy_helper

    a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
    arr = {k: np.ascontiguousarray(numpy_helper.to_array(v)) for k, v in a.items() if hasattr(v, "dims")}
    n, g = int(a["out_channels"]), int(a["group_size"])
    c_pad = -(-int(a["in_channels"]) // g) * g
    arrays = {
        "permutation": arr["permutation"].astype(np.int32), "weightInt8": arr["weight_int8"].reshape(n, -1),
        "weightInt4": arr["weight_int4"].reshape(n, -1), "weightStep": arr["weight_step"].astype(np.int8),
        "outScale": (np.float32(a["act_scale"]) * arr["weight_scale"].astype(np.float32)).astype(np.float32),
        "bias": arr["bias"].astype(np.float32), "actStaticShift": arr["act_static_shift"].astype(np.int8),
        "readerStaticShift": arr["reader_act_static_shift"].astype(np.int8),
        "weightStepWide": arr["weight_step"].astype(np.int32),
    }
    arrays["weightEffective"] = effective_weights(arrays["weightInt4"], arrays["weightStep"], g)
    conv = node.op_type == CONV_OP
    ks, st = (a["kernel_shape"], a["strides"]) if conv else ((1, 1), (1, 1))
    pads, dil = (a["pads"], a["dilations"]) if conv else ((0, 0, 0, 0), (1, 1))
    args = FlexiqLayerArgs(
        isConv=int(conv), inChannels=int(a["in_channels"]), paddedChannels=c_pad, outChannels=n, groupSize=g,
        kernelR=ks[0], kernelS=ks[1], strideH=st[0], strideW=st[1], padTop=pads[0], padLeft=pads[1],
        padBottom=pads[2], padRight=pads[3], dilationH=dil[0], dilationW=dil[1], actScale=float(a["act_scale"]),
        actSigned=int(a["act_signed"]), actShiftMode=int(a["act_shift_mode"]), activation=int(a["activation"]),
        alpha=float(a["activation_alpha"]), beta=float(a["activation_beta"]), layerIndex=int(a["layer_index"]),
        outputScale=float(a["output_scale"]), outputSigned=int(a["output_signed"]),
        readerLayerIndex=int(a["reader_layer_index"]), readerGroupSize=int(a["reader_group_size"]),
        readerShiftMode=int(a["reader_act_shift_mode"]), **{k: _ptr(v) for k, v in arrays.items()})
    geo = ConvGeometry(tuple(ks), tuple(st), tuple(pads), tuple(dil)) if conv else None
    # A QuantizedLayer view for shapes only (output_shape, padded_channels); the arrays above are what runs.
    layer = QuantizedLayer(
        name=node.name, op_type=node.op_type, layer_index=int(a["layer_index"]), group_size=g,
        in_channels=int(a["in_channels"]), out_channels=n, permutation=arrays["permutation"],
        act_scale=float(a["act_scale"]), act_signed=bool(a["act_signed"]), act_shift_mode=ShiftMode(a["act_shift_mode"]),
        act_static_shift=arrays["actStaticShift"], weight_int8=arrays["weightInt8"], weight_int4=np.zeros(1, np.int8),
        weight_step=arrays["weightStep"], weight_scale=arr["weight_scale"], bias=arrays["bias"][:n],
        geometry=geo)
    return HostLayer(layer, arrays, args)
