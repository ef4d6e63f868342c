"""A FlexiQ layer whose stored 4-bit codes are learned roundings (AdaRound), everything else as stored.

The layer's INT8 codes, scales, π order and each group's weight step stay exactly as quantized; only
the direction in which each 4-bit code rounds is learned. A code is `base + h(V)`: `base` is the
float weight in the group's 4-bit units (`w / (s_w · step)`) rounded down, kept within one of the
stored (GPTQ) code so the stored code is always reachable, and `h(V) = clamp(σ(V)·(ζ − γ) + γ, 0, 1)`
AdaRound's rectified sigmoid, started on the stored code's side. A regularizer pushes every `h` to 0
or 1; `hard` switches to the rounded codes. The epilogue's bias rung follows the codes (§2.8), as
the stored model's does (`bias_rungs.group_bias_shift`).
"""

from __future__ import annotations

import numpy as np
import torch

from flexiq_trt.finetune.fake_quant import FakeQuantLayer
from flexiq_trt.quantization.layer import QuantizedLayer

ZETA, GAMMA = 1.1, -0.1  # AdaRound's stretch of the sigmoid, so h reaches 0 and 1 exactly
START_SIDE = 0.75  # h at the start: 0.75 towards the stored code's side (0.25 when it rounds down)


class RoundingLayer(FakeQuantLayer):
    """`final` (a stored layer in its final π order) with learnable 4-bit rounding (module docstring).

    `weight` is the float weight the 4-bit codes approximate, in the INT8 weight's units (the layer's,
    or the finetuned `LayerSource.weight4`); the INT8 codes and scales are read from `final`.
    """

    def __init__(self, final: QuantizedLayer, weight: np.ndarray, bias: np.ndarray,
                 code_means: tuple[np.ndarray, np.ndarray] | None) -> None:
        super().__init__(final, weight, bias, code_means, four_bit_only=True)
        self.weight_steps.requires_grad_(False)  # the float weight is the fixed target, not a parameter here
        g = final.group_size
        self.register_buffer("stored_w8", torch.from_numpy(final.weight_int8.astype(np.float32)))
        self.register_buffer("stored_scale", torch.from_numpy(np.asarray(final.weight_scale, dtype=np.float32)))
        self.register_buffer("step4", torch.from_numpy(np.repeat(final.weight_step.astype(np.float32), g)))
        stored = torch.from_numpy(final.weight_int4.astype(np.float32))
        with torch.no_grad():
            units = self._channels_last(self.weight0 / self._rows(self.stored_scale, self.weight0.dim())) / self.step4
        base = torch.minimum(torch.maximum(torch.floor(units), stored - 1), stored)
        self.register_buffer("base", base)
        h0 = torch.where(stored > base, START_SIDE, 1 - START_SIDE)
        p = (h0 - GAMMA) / (ZETA - GAMMA)
        self.rounding = torch.nn.Parameter(torch.log(p / (1 - p)))
        self.hard = False

    def h(self) -> torch.Tensor:
        """The soft rounding in [0, 1] of every code (channels last, π order)."""
        return torch.clamp(torch.sigmoid(self.rounding) * (ZETA - GAMMA) + GAMMA, 0, 1)

    def codes4(self, hard: bool | None = None) -> torch.Tensor:
        """The 4-bit codes: soft while learning, rounded once `hard` is set (the codes that are stored)."""
        h = self.h()
        return torch.clamp(self.base + ((h >= 0.5).to(h.dtype) if (self.hard if hard is None else hard) else h), -8, 7)

    def regularizer(self, beta: float) -> torch.Tensor:
        """AdaRound's sum of 1 − |2h − 1|^β over the codes: zero when every code has picked its side."""
        return (1 - (2 * self.h() - 1).abs().pow(beta)).sum()

    def stored_codes(self) -> np.ndarray:
        """int8 [N, ..., C_pad] in π order: the hard codes."""
        with torch.no_grad():
            return self.codes4(hard=True).numpy().astype(np.int8)

    def _scale(self) -> torch.Tensor:
        return self.stored_scale

    def _weight_codes(self, dtype: torch.dtype, n4: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mixed codes, stored w8, effective 4-bit codes of the prefix): the learned codes times each group's step."""
        w8 = self.stored_w8.to(dtype)
        if n4 == 0:
            return w8, w8, w8[..., :0]
        eff = (self.codes4() * self.step4)[..., :n4].to(dtype)
        return torch.cat([eff, w8[..., n4:]], dim=-1), w8, eff
