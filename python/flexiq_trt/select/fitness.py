"""Calling a `SelectionProblem.fitness` from the search: subsets when supported, and a bounded cache.

A fitness callback may advertise cheap calibration subsets with two attributes (the evaluator in
`flexiq_trt.select.evaluator` does): ``supports_subsets = True`` and ``num_samples``; it is then
called as ``fitness(masks, n_samples=n)`` and must use a fixed subset (the first ``n`` samples).
A plain ``Callable[[masks], float]`` is always called on its full set.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from flexiq_trt.select.base import Fitness
from flexiq_trt.select.chromosome import ItemSpace


def supports_subsets(fitness: Fitness) -> bool:
    """Whether `fitness` accepts ``n_samples=`` (see module docstring)."""
    return bool(getattr(fitness, "supports_subsets", False)) and getattr(fitness, "num_samples", None)


def effective_subset(fitness: Fitness, requested: int) -> int | None:
    """The sample count to ask for: None (full set) for 0, for plain callables, or when >= the set."""
    if requested <= 0 or not supports_subsets(fitness):
        return None
    total = int(fitness.num_samples)  # type: ignore[attr-defined]
    return None if requested >= total else requested


class CachedFitness:
    """Evaluate flag vectors through a fitness callback, remembering recent results.

    Repeated candidates (elites, duplicate children, resumed generations) cost nothing; the cache
    holds at most `max_entries` results (least recently used dropped first).
    """

    def __init__(self, fitness: Fitness, space: ItemSpace, max_entries: int = 20000):
        self.fitness, self.space, self.max_entries = fitness, space, max_entries
        self._cache: OrderedDict[tuple[bytes, int | None], float] = OrderedDict()
        self.calls = 0  # real (uncached) evaluations

    def __call__(self, flags: np.ndarray, n_samples: int | None = None) -> float:
        """Fitness of one candidate on the first `n_samples` samples (None = full set)."""
        key = (np.packbits(flags).tobytes(), n_samples)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        masks = self.space.to_masks(flags)
        value = float(self.fitness(masks) if n_samples is None else self.fitness(masks, n_samples=n_samples))
        self.calls += 1
        self._cache[key] = value
        if len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return value
