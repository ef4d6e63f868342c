"""The FlexiQ plugin-node contract: op names, domain, version and every field, defined once.

`convert` writes nodes with exactly these fields; the C++ plugin creators read exactly these
(`plugins/common/flexiqFields.h` mirrors this table and `tests/unit/test_plugin_spec_parity.py`
checks that both agree). A change to any field bumps `PLUGIN_VERSION`.

Layouts (all little-endian, row-major):

* ``K`` is the reduction length: ``R * S * C_pad`` for a conv (im2col order ``(r, s, c)``, ``c``
  fastest, ``c`` in permutation order) and ``C_pad`` for a Gemm/MatMul.
* ``weight_int8``  int8  ``[N, K]``      8-bit codes in [-127, 127].
* ``weight_int4``  int8  ``[N, K / 2]``  two 4-bit two's-complement codes per byte: element
  ``2j`` in the low nibble, ``2j + 1`` in the high nibble (``NIBBLE_ORDER = "low_first"``).
* ``weight_step``  int8  ``[C_pad / G]``   one 4-bit weight step ``step_w`` per channel group, in [1, 16]
  (a 4-bit weight stands for ``w4 * step_w[g]``, docs/design.md §2.6).
* ``permutation``  int32 ``[C_pad]``     priority order ``pi``; entries >= ``in_channels`` are
  zero padding and come last.
* ``act_static_shift`` int8 ``[C_pad / G]`` static activation shifts (ignored when dynamic).
* ``bias``         float32 ``[G_count + 1, N]`` one bias row per rung: row ``k = clamp_n4(n4) / G``
  applies when the first ``k`` groups of ``pi`` are 4-bit; row 0 is the INT8 model's bias
  (ratio-aware bias correction, docs/design.md §2.8; all rows equal when it is off).
* INT8 edges (docs/design.md §2.8, "INT8 codes between layers"): with ``input_int8`` the input ``x`` is an
  INT8 tensor of the layer's own activation codes (same layout as the float input, original channel
  order; unsigned codes as their uint8 bit patterns); with ``output_int8`` the output is the consumers'
  codes ``quantize(y, output_scale, output_signed)`` of the float32 epilogue value ``y``.
* Workspace edges (``input_int8`` / ``output_int8`` = 2, `EdgeKind.WORKSPACE`): an INT8 edge with exactly one
  reader carries the reader's input-pass image (plugins/kernels/flexiqEdgeImage.h), shape
  ``[rows dims..., workspace_bytes_per_row(C_pad_r, G_r)]`` (conv ``[B, P, Q, X]``). The producer's output
  channels (weight rows, ``weight_scale``, bias columns) are stored in the reader's ``pi`` order, and
  ``reader_*`` describe the reader's input pass; ``R_G_count = ceil(N / reader_group_size)``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

PLUGIN_DOMAIN = "flexiq.trt"
PLUGIN_NAMESPACE = "flexiq"
PLUGIN_VERSION = "6"  # 2: `bias` is the per-rung table [G_count + 1, N]; 3: INT8 codes between layers; 4: workspace edges; 5: integer activation steps (docs/design.md §2.5); 6: one integer weight step per group (§2.6)
CONV_OP = "FlexiQConv"
GEMM_OP = "FlexiQGemm"
PLUGIN_OPS = (CONV_OP, GEMM_OP)
RUNTIME_INPUT = "flexiq_max_4bit_ch"
NIBBLE_ORDER = "low_first"
SUPPORTED_GROUP_SIZES = (32, 64)
MAX_K_SIGNED = 131_071  # int32 accumulator cannot overflow below this (docs/design.md §2)
MAX_K_UNSIGNED = 66_311  # u8 x s8 products

# The artifacts `convert` writes next to each other (docs/design.md §3) and the metadata key that
# carries the ratio table inside both ONNX files.
FLEXIQ_ONNX_SUFFIX = ".flexiq.onnx"
SIM_ONNX_SUFFIX = ".flexiq-sim.onnx"
RATIO_TABLE_SUFFIX = ".flexiq.json"
METADATA_KEY = "flexiq_trt.ratio_table"

# Names the graph passes write and the selection/evaluation code reads back (defined here only).
MASK_INPUT_PREFIX = "flexiq_group_mask_"  # mask-mode simulation: one bool [G_count] input per layer
SIM_ACC_SUFFIX = "__flexiq_acc"  # debug output carrying a layer's int32 accumulator


def mask_input_name(layer_index: int) -> str:
    """The mask-mode simulation's graph input that switches one layer's groups to 4-bit."""
    return f"{MASK_INPUT_PREFIX}{layer_index}"


def sim_node_prefix(layer_index: int) -> str:
    """Name prefix of every node the simulation writes for one FlexiQ layer (cuts find layers by it)."""
    return f"flexiq{layer_index}_"


class Activation(enum.IntEnum):
    """Fused epilogue activations; alpha/beta meanings are given per member."""

    NONE = 0
    RELU = 1
    CLIP = 2  # clamp(y, alpha, beta)
    HARD_SWISH = 3  # y * clamp(y / 6 + 0.5, 0, 1)
    SILU = 4  # y * sigmoid(y)
    SIGMOID = 5
    LEAKY_RELU = 6  # y if y >= 0 else alpha * y
    HARD_SIGMOID = 7  # clamp(alpha * y + beta, 0, 1)
    GELU = 8  # 0.5 * y * (1 + erf(y / sqrt(2)))
    TANH = 9


class EdgeKind(enum.IntEnum):
    """Values of `input_int8` / `output_int8`: how a tensor between two FlexiQ layers is carried."""

    FLOAT = 0  # float32/float16 values
    CODES = 1  # INT8 activation codes of the reader(s), the float tensor's layout (an INT8 edge)
    WORKSPACE = 2  # the one reader's input-pass image (planes of docs/design.md §2.8, "workspace edges")


def workspace_bytes_per_row(padded_channels: int, group_size: int) -> int:
    """Bytes per reader pixel of a workspace edge: codes8 C_pad, codes4 C_pad/2, factorA 4 G_count, shiftA G_count.

    Mirrors plugins/kernels/flexiqEdgeImage.h (edgeBytesPerRow); the tensor is [rows dims..., this].
    """
    groups = padded_channels // group_size
    return padded_channels + padded_channels // 2 + 5 * groups


class ShiftMode(enum.IntEnum):
    """How activation shifts are chosen for the 4-bit groups."""

    DYNAMIC = 0  # per row (token / input pixel) and group, at run time
    STATIC = 1  # per group, from calibration (act_static_shift)


class FieldKind(enum.Enum):
    """How a field is stored as an ONNX attribute and what TensorRT passes to createPlugin."""

    INT = "INT"  # -> kINT32 scalar
    FLOAT = "FLOAT"  # -> kFLOAT32 scalar
    INTS = "INTS"  # -> kINT32 array
    TENSOR_INT8 = "TENSOR_INT8"  # -> kINT8 array (flattened)
    TENSOR_INT32 = "TENSOR_INT32"  # -> kINT32 array (flattened)
    TENSOR_FLOAT32 = "TENSOR_FLOAT32"  # -> kFLOAT32 array (flattened)


@dataclass(frozen=True)
class FieldSpec:
    """One plugin field: its name, storage kind, length rule and value range."""

    name: str
    kind: FieldKind
    length: str  # "1" for scalars, else a formula over N, K, C_pad, G_count
    low: float | None = None
    high: float | None = None
    conv_only: bool = False
    doc: str = ""


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("layer_index", FieldKind.INT, "1", 0, None, doc="index into flexiq_max_4bit_ch"),
    FieldSpec("group_size", FieldKind.INT, "1", 32, 64, doc="G, 32 or 64"),
    FieldSpec("in_channels", FieldKind.INT, "1", 1, None, doc="real C_in (before padding)"),
    FieldSpec("out_channels", FieldKind.INT, "1", 1, None, doc="N"),
    FieldSpec("act_scale", FieldKind.FLOAT, "1", 0.0, None, doc="s_a > 0, per-tensor"),
    FieldSpec("act_signed", FieldKind.INT, "1", 0, 1, doc="1: s8/s4 codes, 0: u8/u4 codes"),
    FieldSpec("act_shift_mode", FieldKind.INT, "1", 0, 1, doc="ShiftMode"),
    FieldSpec("act_static_shift", FieldKind.TENSOR_INT8, "G_count", 0, 4, doc="static p_a per group"),
    FieldSpec("permutation", FieldKind.TENSOR_INT32, "C_pad", 0, None, doc="pi, a permutation of 0..C_pad-1"),
    FieldSpec("weight_int8", FieldKind.TENSOR_INT8, "N*K", -127, 127, doc="8-bit weight codes [N, K]"),
    FieldSpec("weight_int4", FieldKind.TENSOR_INT8, "N*K/2", None, None, doc="packed 4-bit codes [N, K/2]"),
    FieldSpec("weight_step", FieldKind.TENSOR_INT8, "G_count", 1, 16, doc="step_w per channel group [C_pad/G]"),
    FieldSpec("weight_scale", FieldKind.TENSOR_FLOAT32, "N", 0.0, None, doc="s_w per output channel"),
    FieldSpec("bias", FieldKind.TENSOR_FLOAT32, "(G_count+1)*N", None, None,
              doc="bias [G_count+1, N]: row k applies with k = n4/G groups in 4-bit"),
    FieldSpec("activation", FieldKind.INT, "1", 0, max(Activation), doc="Activation enum"),
    FieldSpec("activation_alpha", FieldKind.FLOAT, "1", None, None, doc="see Activation"),
    FieldSpec("activation_beta", FieldKind.FLOAT, "1", None, None, doc="see Activation"),
    FieldSpec("input_int8", FieldKind.INT, "1", 0, 2,
              doc="1: x is an INT8 tensor of this layer's own activation codes (an INT8 edge); "
                  "2: x is a workspace edge, the image of this layer's input pass its producer wrote"),
    FieldSpec("output_int8", FieldKind.INT, "1", 0, 2,
              doc="1: y is written as INT8 codes of the consumers' quantizer (output_scale, output_signed); "
                  "2: y is written as the workspace edge of the one reader (reader_* fields)"),
    FieldSpec("output_scale", FieldKind.FLOAT, "1", 0.0, None, doc="the consumers' s_a (1.0 when output_int8 = 0)"),
    FieldSpec("output_signed", FieldKind.INT, "1", 0, 1, doc="the consumers' act_signed"),
    FieldSpec("reader_layer_index", FieldKind.INT, "1", 0, None,
              doc="output_int8 = 2: the reader's layer_index (its n4); else 0"),
    FieldSpec("reader_group_size", FieldKind.INT, "1", 32, 64,
              doc="output_int8 = 2: the reader's G; else 32 (the reader's C_pad is N rounded up to it)"),
    FieldSpec("reader_act_shift_mode", FieldKind.INT, "1", 0, 1,
              doc="output_int8 = 2: the reader's act_shift_mode; else 0"),
    FieldSpec("reader_act_static_shift", FieldKind.TENSOR_INT8, "R_G_count", 0, 4,
              doc="output_int8 = 2: the reader's act_static_shift; else zeros (R_G_count = ceil(N / reader_group_size))"),
    FieldSpec("kernel_shape", FieldKind.INTS, "2", 1, None, conv_only=True, doc="[R, S]"),
    FieldSpec("strides", FieldKind.INTS, "2", 1, None, conv_only=True, doc="[stride_h, stride_w]"),
    FieldSpec("pads", FieldKind.INTS, "4", 0, None, conv_only=True, doc="[top, left, bottom, right]"),
    FieldSpec("dilations", FieldKind.INTS, "2", 1, None, conv_only=True, doc="[dil_h, dil_w]"),
)


def fields_for(op_type: str) -> tuple[FieldSpec, ...]:
    """The fields a node of `op_type` must carry, in canonical order."""
    if op_type not in PLUGIN_OPS:
        raise KeyError(f"unknown FlexiQ plugin op {op_type!r}; expected one of {PLUGIN_OPS}")
    return tuple(f for f in FIELDS if op_type == CONV_OP or not f.conv_only)


def padded_channels(in_channels: int, group_size: int) -> int:
    """C_in rounded up to a multiple of the group size."""
    return -(-in_channels // group_size) * group_size


AUTO_GROUP_SIZE = 0  # a group-size setting meaning "G per layer by `auto_group_size`" (the converter default)


def auto_group_size(in_channels: int) -> int:
    """G of a layer under the default setting (docs/design.md §2.2, decided by the kernel owner).

    64 when C_in >= 64 and G = 64 adds no padding over G = 32 (the int4 path beats int8 only at
    G = 64 on Ampere/Ada, docs/performance.md), else 32 (keeps narrow layers eligible, their padding
    small and their ladder fine; docs/accuracy.md found no accuracy difference between the two).
    """
    wide = in_channels >= 64 and padded_channels(in_channels, 64) == padded_channels(in_channels, 32)
    return 64 if wide else 32


def layer_group_size(setting: int, in_channels: int) -> int:
    """The G a layer of `in_channels` gets under a group-size setting (32, 64 or AUTO_GROUP_SIZE)."""
    return auto_group_size(in_channels) if setting == AUTO_GROUP_SIZE else int(setting)


def clamp_n4(n4: int, c_pad: int, group_size: int) -> int:
    """docs/design.md §2: clamp to [0, C_pad] then round down to a multiple of G (every backend does this)."""
    n4 = min(max(int(n4), 0), c_pad)
    return (n4 // group_size) * group_size
