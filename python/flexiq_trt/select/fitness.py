"""Calling a `SelectionProblem.fitness` from the search: subsets when supported, and a bounded cache.

A fitness callback may advertise cheap calibration subsets with two attributes (the evaluator in
`flexiq_trt.select.evaluator` does): ``supports_subsets = True`` and ``num_samples``; it is then
called as ``fitness(masks, n_samples=n)`` and must use a fixed subset (the first ``n`` samples).
A plain ``Callable[[masks], float]`` is always called on its full set. A fitness may also offer
``evaluate_many(list_of_masks, n_samples=None) -> list[float]`` to score a generation's candidates
together (batched or concurrently); results must not depend on how candidates are grouped.
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
        return self.many([flags], n_samples)[0]

    def many(self, candidates: list[np.ndarray], n_samples: int | None = None) -> list[float]:
        """Fitness of several candidates; uncached ones go to the callback together."""
        keys = [(np.packbits(f).tobytes(), n_samples) for f in candidates]
        todo = {k: f for k, f in zip(keys, candidates, strict=True) if k not in self._cache}
        if todo:
            values = self._evaluate([self.space.to_masks(f) for f in todo.values()], n_samples)
            for key, value in zip(todo, values, strict=True):
                self._store(key, value)
        out = []
        for key in keys:
            self._cache.move_to_end(key)
            out.append(self._cache[key])
        return out

    def _evaluate(self, masks: list[list[np.ndarray]], n_samples: int | None) -> list[float]:
        self.calls += len(masks)
        kwargs = {} if n_samples is None else {"n_samples": n_samples}
        many = getattr(self.fitness, "evaluate_many", None)
        if many is not None and len(masks) > 1:
            return [float(v) for v in many(masks, **kwargs)]
        return [float(self.fitness(m, **kwargs)) for m in masks]

    def _store(self, key: tuple[bytes, int | None], value: float) -> None:
        self._cache[key] = value
        if len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
