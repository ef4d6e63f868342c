"""Quantization options (one frozen dataclass; the CLI generates its flags from the field metadata)."""

from __future__ import annotations

from dataclasses import dataclass

from flexiq_trt.errors import ConfigError
from flexiq_trt.options import option
from flexiq_trt.plugin_spec import AUTO_GROUP_SIZE, SUPPORTED_GROUP_SIZES, layer_group_size

WEIGHT_ROUNDING = ("gptq", "recon", "plain", "naive")
GPTQ_ROUNDINGS = ("gptq", "recon")  # the roundings that run GPTQ (and so read `gptq_damp`)
ACT_SHIFTS = ("dynamic", "static", "naive")
CHANNEL_GROUPING = ("max", "rms", "p99")  # CalibratedLayer.channel_range / channel_rms / channel_p99


@dataclass(frozen=True)
class QuantConfig:
    """How layers are quantized to INT8 and how their 4-bit codes are formed."""

    group_size: int = option(
        AUTO_GROUP_SIZE, "channels per group G: 0 = auto, per layer (64 where C_in >= 64 and 64 adds no padding "
        "over 32, else 32; docs/design.md §2.2), or 32 / 64 for every layer",
        choices=(AUTO_GROUP_SIZE, *SUPPORTED_GROUP_SIZES))
    weight_rounding: str = option(
        "gptq", "stored 4-bit weight codes: gptq (error-compensating on the float input, default), recon "
        "(activation-aware reconstruction of the W4A4 output; docs/accuracy.md), plain (each group's smallest "
        "step, round), naive (top bits, step 16); one integer step per group either way (docs/design.md §2.6)", choices=WEIGHT_ROUNDING)
    act_shift: str = option(
        "dynamic", "4-bit activation steps: dynamic integer step per row and group (default; docs/design.md §2.5), "
        "static power-of-two shift per group, naive (step 16)", choices=ACT_SHIFTS)
    channel_grouping: str = option(
        "max", "per-channel statistic of the calibrated |x| that sorts each layer's input channels into "
        "G-channel groups sharing a 4-bit step: max (default), rms or p99 (99th percentile; "
        "docs/accuracy.md, \"Channel grouping by a typical magnitude\")", choices=CHANNEL_GROUPING)
    unsigned_activations: bool = option(True, "use u8/u4 codes for inputs that are provably non-negative")
    offset_inputs: bool = option(
        True, "shift a layer's signed input that is bounded below (HardSwish, SiLU, GELU outputs) to non-negative "
        "values, the shift folded into the bias, so it gets unsigned codes (Gemm, MatMul and unpadded Conv; "
        "needs unsigned_activations; docs/design.md §2.3)")
    gptq_damp: tuple[float, ...] = option(
        (0.01, 0.1, 0.3), "GPTQ diagonal damping (fraction of the mean diagonal): one value fixes it; several are "
        "candidates chosen per channel group by two-fold cross-validation on the calibration samples (even "
        "against odd; the first is used where a layer saw fewer than two samples; docs/accuracy.md, "
        "\"Cross-validated GPTQ damping\")")
    hessian_floor: float = option(
        0.001, "smallest Hessian diagonal a channel is given, as a share of the layer's median, so a channel that "
        "(almost) never fires on the calibration data gets 4-bit weights close to its float weights instead of "
        "arbitrary ones (0 = off; docs/accuracy.md, \"Channels silent in calibration\")")
    recon_sweeps: int = option(
        2, "integer refinement sweeps of the reconstructed 4-bit codes (0 = GPTQ rounding of the target only)")
    recon_act_share: float = option(
        0.5, "reconstruction objective: share of calibration rows whose input is 4-bit quantized (QDrop-style "
        "mix; 1 = always, 0 = float input, i.e. GPTQ plus integer refinement)")
    bias_correction: bool = option(
        True, "ratio-aware bias correction: per layer, one bias per number of 4-bit groups, cancelling the mean "
        "output shift the 4-bit groups cause on the calibration data (the INT8 bias is unchanged; "
        "docs/accuracy.md)")
    max_rows_per_batch: int = option(
        2048, "im2col rows sampled per calibration batch for the Hessian (bounds memory)")

    def __post_init__(self) -> None:
        if self.group_size not in (AUTO_GROUP_SIZE, *SUPPORTED_GROUP_SIZES):
            raise ConfigError(f"group_size must be {AUTO_GROUP_SIZE} (auto, per layer) or one of "
                              f"{SUPPORTED_GROUP_SIZES}, got {self.group_size}")
        if self.weight_rounding not in WEIGHT_ROUNDING:
            raise ConfigError(f"weight_rounding must be one of {WEIGHT_ROUNDING}, got {self.weight_rounding!r}")
        if self.act_shift not in ACT_SHIFTS:
            raise ConfigError(f"act_shift must be one of {ACT_SHIFTS}, got {self.act_shift!r}")
        if self.channel_grouping not in CHANNEL_GROUPING:
            raise ConfigError(f"channel_grouping must be one of {CHANNEL_GROUPING}, got {self.channel_grouping!r}")
        if not 0 <= self.hessian_floor <= 1:
            raise ConfigError(f"hessian_floor must be in [0, 1], got {self.hessian_floor}")
        if self.recon_sweeps < 0:
            raise ConfigError(f"recon_sweeps must be >= 0, got {self.recon_sweeps}")
        if not 0 <= self.recon_act_share <= 1:
            raise ConfigError(f"recon_act_share must be in [0, 1], got {self.recon_act_share}")
        damp = (self.gptq_damp,) if isinstance(self.gptq_damp, (int, float)) else tuple(self.gptq_damp)
        object.__setattr__(self, "gptq_damp", tuple(float(d) for d in damp))  # a plain number fixes it
        if not self.gptq_damp or not all(0 <= d < 1 for d in self.gptq_damp):
            raise ConfigError(f"gptq_damp must be one or more values in [0, 1), got {self.gptq_damp}")

    @property
    def cross_validates_damp(self) -> bool:
        """Whether GPTQ's damping is chosen per group (several candidates, GPTQ-based rounding)."""
        return len(self.gptq_damp) > 1 and self.weight_rounding in GPTQ_ROUNDINGS

    def group_size_for(self, in_channels: int) -> int:
        """G of a layer with `in_channels` inputs (the setting, or the per-layer rule when auto)."""
        return layer_group_size(self.group_size, in_channels)
