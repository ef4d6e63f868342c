"""`QuantizedLayer`: everything one FlexiQ layer needs at run time, in canonical layouts.

This is the hand-off between quantization and the graph passes: the plugin node's fields and the
simulation subgraph are both derived from it, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flexiq_trt.plugin_spec import CONV_OP, GEMM_OP, Activation, ShiftMode


@dataclass(frozen=True)
class ConvGeometry:
    """2-D convolution geometry in ONNX conventions (pads = [top, left, bottom, right])."""

    kernel_shape: tuple[int, int] = (1, 1)
    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilations: tuple[int, int] = (1, 1)

    def output_hw(self, h: int, w: int) -> tuple[int, int]:
        """Output spatial size for an input of size h x w."""
        (r, s), (sh, sw), (pt, pl, pb, pr), (dh, dw) = (
            self.kernel_shape, self.strides, self.pads, self.dilations)
        return (h + pt + pb - dh * (r - 1) - 1) // sh + 1, (w + pl + pr - dw * (s - 1) - 1) // sw + 1


@dataclass
class QuantizedLayer:
    """One eligible layer after quantization.

    Weight arrays are in permuted channel order with the padded channels last. Conv weights are
    ``[N, R, S, C_pad]`` (so flattening gives the plugin's ``(r, s, c)`` K order), Gemm weights
    ``[N, C_pad]``. ``weight_int4`` holds the stored 4-bit codes and ``weight_step`` one stored
    step per channel group ``[C_pad / G]`` (docs/design.md §2.6); the kernels never recompute either.
    """

    name: str
    op_type: str  # plugin_spec.CONV_OP or GEMM_OP
    layer_index: int
    group_size: int
    in_channels: int
    out_channels: int
    permutation: np.ndarray  # int32 [C_pad]
    act_scale: float
    act_signed: bool
    act_shift_mode: ShiftMode
    act_static_shift: np.ndarray  # int8 [G_count]
    weight_int8: np.ndarray  # int8 [N, R, S, C_pad] or [N, C_pad]
    weight_int4: np.ndarray  # int8 codes in [-8, 7], same shape as weight_int8
    weight_step: np.ndarray  # int8 [G_count], 1..16: effective 4-bit weight w4 * step
    weight_scale: np.ndarray  # float32 [N]
    bias: np.ndarray  # float32 [N]
    activation: Activation = Activation.NONE
    activation_alpha: float = 0.0
    activation_beta: float = 0.0
    geometry: ConvGeometry | None = None  # conv only
    # float64 [G_count, N] (π group order): mean output change when the group goes 4-bit; None = no
    # ratio-aware bias correction (every rung uses `bias`). See quantization/bias_rungs.py.
    group_bias_shift: np.ndarray | None = None
    extra: dict = field(default_factory=dict)  # provenance (not part of the runtime contract)

    @property
    def padded_channels(self) -> int:
        """C_pad: C_in rounded up to a multiple of G."""
        return int(self.permutation.shape[0])

    @property
    def group_count(self) -> int:
        """Number of channel groups."""
        return self.padded_channels // self.group_size

    @property
    def is_conv(self) -> bool:
        """True for FlexiQConv layers."""
        return self.op_type == CONV_OP

    @property
    def reduction_length(self) -> int:
        """K = R * S * C_pad for a conv, C_pad for a Gemm."""
        return int(np.prod(self.weight_int8.shape[1:]))

    def out_scale(self) -> np.ndarray:
        """float32 s_a * s_w[n], rounded once in float32 exactly as every backend computes it."""
        return (np.float32(self.act_scale) * self.weight_scale.astype(np.float32)).astype(np.float32)

    def weight4_effective(self) -> np.ndarray:
        """int32 ``w4 * step_w[g]`` in the layout of ``weight_int4``: what a 4-bit weight stands for (§2.6)."""
        step = np.repeat(self.weight_step.astype(np.int32), self.group_size)  # [C_pad]
        return self.weight_int4.astype(np.int32) * step

    def bias_table(self) -> np.ndarray:
        """float32 [G_count + 1, N], the plugin's `bias` field: row k = the bias with k groups in 4-bit (§2.8)."""
        from flexiq_trt.quantization.bias_rungs import bias_table

        return bias_table(self.bias, self.group_bias_shift, self.group_count)

    def bias_row(self, n4: int) -> np.ndarray:
        """float32 [N]: the bias applied at `n4` 4-bit channels (already clamped to whole groups)."""
        return self.bias_table()[n4 // self.group_size]

    def validate(self) -> None:
        """Check shapes and ranges so a broken layer fails here, not in a backend."""
        g, cp, n = self.group_size, self.padded_channels, self.out_channels
        checks = [
            (self.op_type in (CONV_OP, GEMM_OP), f"op_type {self.op_type!r}"),
            (cp % g == 0 and cp >= self.in_channels, f"C_pad {cp} vs C_in {self.in_channels}, G {g}"),
            (sorted(self.permutation.tolist()) == list(range(cp)), "permutation is not a permutation"),
            (bool(np.all(self.permutation[: self.in_channels] < self.in_channels)),
             "padded channels must come last in the permutation"),
            (self.weight_int8.shape == self.weight_int4.shape, "int8/int4 weight shapes differ"),
            (self.weight_int8.shape[0] == n and self.weight_int8.shape[-1] == cp, "weight shape"),
            (self.weight_step.shape == (self.group_count,), "weight_step shape"),
            (int(self.weight_step.min(initial=1)) >= 1 and int(self.weight_step.max(initial=1)) <= 16,
             "weight_step out of 1..16"),
            (int(np.abs(self.weight_int8).max(initial=0)) <= 127, "int8 codes out of range"),
            (int(self.weight_int4.min(initial=0)) >= -8 and int(self.weight_int4.max(initial=0)) <= 7,
             "int4 codes out of range"),
            (self.act_scale > 0, "act_scale must be > 0"),
            (self.bias.shape == (n,), "bias shape"),
            (self.group_bias_shift is None or self.group_bias_shift.shape == (self.group_count, n),
             "group_bias_shift shape"),
        ]
        for ok, what in checks:
            if not ok:
                from flexiq_trt.errors import FlexiqInternalError

                raise FlexiqInternalError(f"layer {self.name}: invalid quantized layer ({what})")
