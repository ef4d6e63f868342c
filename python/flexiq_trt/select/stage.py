"""The selection stage: build the SelectionProblem, run the chosen selector, fix the final channel orders.

Selection only reorders whole groups of the base-order layers, so every selector's result applies
to any quantization variant of the same layers (the report's baselines use that).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flexiq_trt.log import get_logger, stage
from flexiq_trt.quantization.layer import QuantizedLayer
from flexiq_trt.quantization.quantize_layer import LayerQuantResult, reorder_groups
from flexiq_trt.quantization.stage import QuantizedRecord
from flexiq_trt.ratios import LayerEntry, RatioTable, common_group_size
from flexiq_trt.select.base import Fitness, GlobalOrder, LayerGroups, SelectionProblem

_log = get_logger(__name__)


@dataclass(frozen=True)
class SelectedRecord:
    """A quantized layer with its groups in the selected priority order: what the writers need."""

    quantized: QuantizedRecord
    final: QuantizedLayer  # groups reordered by the global order, padded group last

    @property
    def eligible(self):
        """The intake's view of the layer (graph names, MACs)."""
        return self.quantized.eligible


def group_macs(macs: float, in_channels: int, base_order: np.ndarray, group_size: int) -> np.ndarray:
    """MACs of each group, proportional to its real (non-padding) channels."""
    real = (base_order < in_channels).reshape(-1, group_size).sum(axis=1)
    return macs * real.astype(np.float64) / in_channels


def build_problem(records: list[QuantizedRecord], ladder: tuple[float, ...], seed: int,
                  fitness: Fitness | None = None, holdout_fitness: Fitness | None = None) -> SelectionProblem:
    """One LayerGroups per layer (in layer_index order); each layer is cut by its own G."""
    groups = []
    for i, rec in enumerate(records):
        res, cl = rec.result, rec.calibrated
        g = res.layer.group_size
        ranges = np.pad(cl.channel_range, (0, rec.base_order.shape[0] - cl.channel_range.shape[0]))
        groups.append(LayerGroups(
            name=res.layer.name, layer_index=i,
            group_macs=group_macs(float(rec.eligible.macs), res.layer.in_channels, rec.base_order, g),
            error_score=res.error_score.astype(np.float64),
            value_range=ranges[rec.base_order].reshape(-1, g).max(axis=1),
            weight_float=rec.source.weight,
            extra={"padded_group": res.layer.group_count - 1
                   if res.layer.padded_channels > res.layer.in_channels else None}))
    return SelectionProblem(groups, tuple(ladder), seed, fitness, holdout_fitness)


def padded_last(order: GlobalOrder, problem: SelectionProblem, layers: list[QuantizedLayer]) -> GlobalOrder:
    """Keep each layer's slots in the global order but give its padded group the layer's last slot.

    docs/design.md §2 puts padding channels last in pi; the padded group is always the last base group.
    """
    ranks = order.group_rank(problem)
    fixed: list[list[int]] = []
    for li, rank in enumerate(ranks):
        last = layers[li].group_count - 1
        if layers[li].padded_channels > layers[li].in_channels and rank[-1] != last:
            rank = [g for g in rank if g != last] + [last]
        fixed.append(rank)
    cursor = [0] * len(fixed)
    items = []
    for li, _ in order.items:
        items.append((li, fixed[li][cursor[li]]))
        cursor[li] += 1
    return GlobalOrder(items, order.selector, order.log)


def run_selector(name: str, problem: SelectionProblem, config=None) -> GlobalOrder:
    """Look the selector up in the registry and run it."""
    from flexiq_trt.select.registry import create_selector

    with stage(f"channel selection ({name})", _log):
        order = create_selector(name, config).select(problem)
    order.validate(problem)
    return order


def apply_order(results: list[LayerQuantResult], problem: SelectionProblem,
                order: GlobalOrder) -> list[QuantizedLayer]:
    """Every layer with its groups reordered as the global order says (padded group last)."""
    base = [r.layer for r in results]
    ranks = padded_last(order, problem, base).group_rank(problem)
    return [reorder_groups(layer, rank) for layer, rank in zip(base, ranks, strict=True)]


def finalize(records: list[QuantizedRecord], problem: SelectionProblem,
             order: GlobalOrder) -> tuple[list[SelectedRecord], RatioTable]:
    """Reorder every layer's groups by the global order and build the ratio table."""
    base = [rec.layer for rec in records]
    order = padded_last(order, problem, base)
    ranks = order.group_rank(problem)
    final = [reorder_groups(layer, rank) for layer, rank in zip(base, ranks, strict=True)]
    position = [{g: pos for pos, g in enumerate(rank)} for rank in ranks]
    entries = [LayerEntry(name=q.name, op_type=q.op_type, layer_index=q.layer_index, in_channels=q.in_channels,
                          padded_channels=q.padded_channels, macs=float(rec.eligible.macs),
                          group_macs=[float(problem.layers[i].group_macs[g]) for g in ranks[i]],
                          group_size=q.group_size)
               for i, (q, rec) in enumerate(zip(final, records, strict=True))]
    items = [(li, position[li][g]) for li, g in order.items]
    table = RatioTable(common_group_size([q.group_size for q in base]), entries, items, list(problem.ladder), order.selector)
    return [SelectedRecord(rec, q) for rec, q in zip(records, final, strict=True)], table
