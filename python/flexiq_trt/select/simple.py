"""Baseline selectors that need no fitness function: greedy error score, value range, and random."""

from __future__ import annotations

import numpy as np

from flexiq_trt.select.base import GlobalOrder, SelectionProblem
from flexiq_trt.select.chromosome import ItemSpace
from flexiq_trt.select.config import SearchConfig


def _order_by_key(problem: SelectionProblem, key: np.ndarray, name: str) -> GlobalOrder:
    """All items by ascending key; ties keep layer order, then group order (a stable sort).

    A layer's padded group is moved after its other groups (`flexiq_trt.select.padding`).
    """
    space = ItemSpace.from_problem(problem)
    order = space.tail_last([int(i) for i in np.argsort(key, kind="stable")])
    return GlobalOrder([space.item(i) for i in order], name)


class GreedySelector:
    """Smallest estimated error per MAC first: the cheapest 4-bit work gets picked first."""

    name = "greedy"

    def __init__(self, config: SearchConfig | None = None):
        self.config = config

    def select(self, problem: SelectionProblem) -> GlobalOrder:
        """Order every item by error score / MACs."""
        return _order_by_key(problem, ItemSpace.from_problem(problem).cost, self.name)


class RangeSelector:
    """Smallest activation value range first (FlexiQ's intuition without any error model)."""

    name = "range"

    def __init__(self, config: SearchConfig | None = None):
        self.config = config

    def select(self, problem: SelectionProblem) -> GlobalOrder:
        """Order every item by its group's value range."""
        key = np.concatenate([np.asarray(lg.value_range, dtype=np.float64) for lg in problem.layers])
        return _order_by_key(problem, key, self.name)


class RandomSelector:
    """A seeded random order: the floor every informed selector must beat."""

    name = "random"

    def __init__(self, config: SearchConfig | None = None):
        self.config = config

    def select(self, problem: SelectionProblem) -> GlobalOrder:
        """A random permutation of the items (seed: config.seed, else problem.seed)."""
        seed = self.config.seed if self.config is not None and self.config.seed is not None else problem.seed
        space = ItemSpace.from_problem(problem)
        perm = space.tail_last([int(i) for i in np.random.default_rng([int(seed), 7]).permutation(space.size)])
        return GlobalOrder([space.item(i) for i in perm], self.name, [{"seed": int(seed)}])
