"""MixQuant (arXiv 2309.17341) as a selector: per-layer bit-widths from weight quantization error.

MixQuant's rule, with its own quantizer (uniform symmetric b-bit, per output channel, on the float
weights): a layer gets the lowest bit-width b in 2..8 whose weight MSE is at most QEM x its 8-bit
MSE. Our format only has 4 and 8 bits, so a QEM sweep maps onto whole layers going to 4-bit: a layer
enters the 4-bit set at the smallest QEM at which MixQuant gives it <= 4 bits, and the global order
lists layers by that threshold (all of a layer's groups together, in base order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flexiq_trt.errors import ConfigError
from flexiq_trt.select.base import GlobalOrder, LayerGroups, SelectionProblem
from flexiq_trt.select.config import SearchConfig

BITS = tuple(range(2, 9))


def quantize_uniform(weight: np.ndarray, bits: int) -> np.ndarray:
    """Dequantized symmetric b-bit weights: per output channel (axis 0) scale max|w| / (2^(b-1) - 1)."""
    if bits < 2:
        raise ConfigError(f"MixQuant bit-width {bits} must be >= 2")
    w = np.asarray(weight, dtype=np.float64).reshape(weight.shape[0], -1)
    qmax = 2 ** (bits - 1) - 1
    amax = np.abs(w).max(axis=1, keepdims=True)
    scale = np.where(amax > 0, amax / qmax, 1.0)
    return (np.clip(np.round(w / scale), -qmax, qmax) * scale).reshape(weight.shape)


def weight_mse(weight: np.ndarray, bits: int) -> float:
    """Mean squared error of `quantize_uniform` against the float weights."""
    w = np.asarray(weight, dtype=np.float64)
    return float(np.mean((quantize_uniform(w, bits) - w) ** 2))


def mse_table(weight: np.ndarray) -> dict[int, float]:
    """Weight MSE at every bit-width MixQuant considers (2..8)."""
    return {b: weight_mse(weight, b) for b in BITS}


def bits_for_qem(table: dict[int, float], qem: float) -> int:
    """MixQuant's rule: the lowest b with MSE_b <= QEM x MSE_8."""
    if qem < 1.0:
        raise ConfigError(f"MixQuant QEM={qem} must be >= 1 (the 8-bit error is the reference)")
    limit = qem * table[8]
    return min(b for b in BITS if table[b] <= limit)


def qem_threshold_4bit(table: dict[int, float]) -> float:
    """The smallest QEM at which the rule gives <= 4 bits (min over b <= 4 of MSE_b / MSE_8)."""
    low = min(table[b] for b in (2, 3, 4))
    if table[8] == 0.0:
        return 1.0 if low == 0.0 else float("inf")
    return max(1.0, low / table[8])


@dataclass
class MixQuantAllocation:
    """MixQuant's own answer for one QEM: bits per layer, and what share of MACs is at <= 4 bits."""

    qem: float
    bits: dict[str, int]
    ratio_4bit: float  # eligible MACs of layers at <= 4 bits (our 4/8 mapping)
    mean_bits: float  # MAC-weighted mean bit-width of MixQuant's own 2..8 allocation


def _layer_table(layer: LayerGroups) -> dict[int, float]:
    if layer.weight_float is None:
        raise ConfigError(f"MixQuant needs the float weights of layer {layer.name!r} (weight_float is None)")
    return mse_table(layer.weight_float)


def allocate(problem: SelectionProblem, qem: float) -> MixQuantAllocation:
    """MixQuant's 2..8-bit allocation for one QEM."""
    tables = [_layer_table(lg) for lg in problem.layers]
    macs = np.array([lg.group_macs.sum() for lg in problem.layers], dtype=np.float64)
    bits = [bits_for_qem(t, qem) for t in tables]
    total = max(float(macs.sum()), 1e-30)
    return MixQuantAllocation(
        qem=qem, bits={lg.name: b for lg, b in zip(problem.layers, bits, strict=True)},
        ratio_4bit=float(macs[np.array(bits) <= 4].sum() / total),
        mean_bits=float(np.dot(macs, bits) / total))


def qem_sweep(problem: SelectionProblem, qems: list[float]) -> list[MixQuantAllocation]:
    """Allocations over a list of QEMs (for the report's MixQuant table)."""
    return [allocate(problem, q) for q in qems]


class MixQuantSelector:
    """Whole layers in order of the QEM at which MixQuant first puts them at <= 4 bits."""

    name = "mixquant"

    def __init__(self, config: SearchConfig | None = None):
        self.config = config

    def select(self, problem: SelectionProblem) -> GlobalOrder:
        """Global order from the 4-bit thresholds; the log records each layer's threshold and MSEs."""
        tables = [_layer_table(lg) for lg in problem.layers]
        thresholds = np.array([qem_threshold_4bit(t) for t in tables])
        layer_order = np.argsort(thresholds, kind="stable")
        items = [(int(li), g) for li in layer_order for g in range(problem.layers[li].group_count)]
        log = [{"layer": problem.layers[li].name, "qem_4bit": float(thresholds[li]),
                "mse": {str(b): tables[li][b] for b in BITS}} for li in layer_order]
        qems = self.config.mixquant_qems if self.config is not None else SearchConfig().mixquant_qems
        log += [allocation_event(a) for a in qem_sweep(problem, list(qems))]
        return GlobalOrder(items, self.name, log)


def allocation_event(allocation: MixQuantAllocation) -> dict:
    """A log entry for MixQuant's own allocation at one QEM (the report's MixQuant tables read these)."""
    return {"event": "mixquant_allocation", "qem": allocation.qem, "bits": dict(allocation.bits),
            "ratio_4bit": allocation.ratio_4bit, "mean_bits": allocation.mean_bits}
