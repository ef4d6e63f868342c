"""The selector interface: turn per-(layer, group) information into one global, nested priority order.

Groups are fixed before selection: a layer's channels are first sorted (smallest value range first,
padding last) and cut into groups of G; group ``j`` of a layer is ``base_order[j*G:(j+1)*G]``.
A selector only decides the *order* in which (layer, group) items become 4-bit. Because the output
is one global order, the 4-bit set at any ratio is a prefix of it, so sets are nested by construction
(docs/design.md §2) and each layer's groups enter in the order they appear (which defines its permutation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from flexiq_trt.errors import FlexiqInternalError

# A fitness function: per layer a bool mask [G_count] (True = that group is 4-bit) -> distance
# to the INT8 model (lower is better), evaluated on calibration data.
Fitness = Callable[[Sequence[np.ndarray]], float]


@dataclass
class LayerGroups:
    """What selectors may know about one layer's groups (index = group index in base order)."""

    name: str
    layer_index: int
    group_macs: np.ndarray  # float64 [G_count], MACs of the real channels of each group
    error_score: np.ndarray  # float64 [G_count], estimated output error if the group goes 4-bit
    value_range: np.ndarray  # float64 [G_count], max |x| range of the group's channels (activations)
    weight_float: np.ndarray | None = None  # float32 canonical weights, for weight-based selectors
    extra: dict = field(default_factory=dict)

    @property
    def group_count(self) -> int:
        """Number of channel groups in this layer."""
        return int(self.group_macs.shape[0])


@dataclass
class SelectionProblem:
    """Everything a selector gets: the layers, the ratio ladder, a seed and an optional fitness."""

    layers: list[LayerGroups]
    ladder: tuple[float, ...]
    seed: int = 0
    fitness: Fitness | None = None
    holdout_fitness: Fitness | None = None  # for guarding against fitting the calibration set

    @property
    def total_macs(self) -> float:
        """All eligible MACs (the denominator of a ratio)."""
        return float(sum(lg.group_macs.sum() for lg in self.layers))

    def items(self) -> list[tuple[int, int]]:
        """Every (layer position, group) item."""
        return [(li, g) for li, lg in enumerate(self.layers) for g in range(lg.group_count)]


@dataclass
class GlobalOrder:
    """The selector's result: all (layer position, group) items, most 4-bit-friendly first."""

    items: list[tuple[int, int]]
    selector: str
    log: list[dict] = field(default_factory=list)  # per-generation / per-step diagnostics

    def validate(self, problem: SelectionProblem) -> None:
        """Every item exactly once."""
        if sorted(self.items) != sorted(problem.items()):
            raise FlexiqInternalError(f"selector {self.selector} returned an order that is not a permutation")

    def prefix_length(self, problem: SelectionProblem, ratio: float) -> int:
        """Length of the shortest prefix whose MACs cover `ratio` of the eligible MACs."""
        if ratio <= 0:
            return 0
        macs = np.array([problem.layers[li].group_macs[g] for li, g in self.items], dtype=np.float64)
        cum = np.cumsum(macs)
        target = ratio * cum[-1] - 1e-9 * cum[-1]
        return int(min(np.searchsorted(cum, target) + 1, len(self.items)))

    def group_rank(self, problem: SelectionProblem) -> list[list[int]]:
        """Per layer, its groups in the order they enter the 4-bit set."""
        ranks: list[list[int]] = [[] for _ in problem.layers]
        for li, g in self.items:
            ranks[li].append(g)
        return ranks

    def masks_at(self, problem: SelectionProblem, ratio: float) -> list[np.ndarray]:
        """Per layer bool [G_count]: which base-order groups are 4-bit at `ratio`."""
        masks = [np.zeros(lg.group_count, dtype=bool) for lg in problem.layers]
        for li, g in self.items[: self.prefix_length(problem, ratio)]:
            masks[li][g] = True
        return masks


class Selector(Protocol):
    """A channel-selection strategy (registered by name in `flexiq_trt.select.registry`)."""

    name: str

    def select(self, problem: SelectionProblem) -> GlobalOrder:
        """Return the global priority order for `problem`."""
        ...
