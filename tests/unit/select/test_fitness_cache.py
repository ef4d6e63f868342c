import numpy as np
import pytest
from _select_helpers import QuadraticFitness, make_problem

from flexiq_trt.select.chromosome import ItemSpace
from flexiq_trt.select.fitness import CachedFitness, effective_subset


class Batched(QuadraticFitness):
    supports_subsets, num_samples = True, 10

    def __init__(self, problem):
        super().__init__(problem)
        self.batches = []

    def __call__(self, masks, n_samples=None):
        return super().__call__(masks) + (0.0 if n_samples is None else 1000.0 * n_samples)

    def evaluate_many(self, cands, n_samples=None):
        self.batches.append(len(cands))
        return [self(c, n_samples) for c in cands]


def test_cache_dedups_and_batches_uncached_candidates():
    p = make_problem()
    fit = Batched(p)
    space = ItemSpace.from_problem(p)
    cached = CachedFitness(fit, space)
    rng = np.random.default_rng(0)
    cands = [rng.random(space.size) < 0.5 for _ in range(5)]
    first = cached.many(cands + cands[:2], n_samples=4)
    assert fit.batches == [5] and cached.calls == 5
    assert first[:2] == first[5:]
    assert cached.many(cands, n_samples=4) == first[:5] and fit.batches == [5]
    # another subset size is another fitness
    assert cached(cands[0], None) == pytest.approx(first[0] - 4000.0)


def test_effective_subset_rules():
    p = make_problem()
    fit = Batched(p)
    assert effective_subset(fit, 0) is None and effective_subset(fit, 10) is None
    assert effective_subset(fit, 4) == 4
    assert effective_subset(QuadraticFitness(p), 4) is None  # a plain callable has no subsets
