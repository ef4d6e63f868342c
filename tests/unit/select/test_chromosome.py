import numpy as np
import pytest
from _select_helpers import make_problem

from flexiq_trt.select.chromosome import ItemSpace, crossover, greedy_fill, mutate, perturb, repair
from flexiq_trt.select.padding import valid


@pytest.fixture
def space() -> ItemSpace:
    return ItemSpace.from_problem(make_problem(seed=3, layers=8))


def _is_minimal_cover(flags, locked, budget, space):
    """Covers the budget, keeps the padding rule, and no removable item is surplus."""
    total = space.macs[flags].sum()
    free = np.flatnonzero(space.removable(flags, locked))
    return (total >= budget and np.all(total - space.macs[free] < budget)
            and valid(flags, space.tail, space.layer_of, space.layer_count))


@pytest.mark.parametrize("ratio", [0.1, 0.33, 0.5, 0.9])
def test_repair_keeps_budget_within_one_group(space, ratio):
    rng = np.random.default_rng(0)
    budget = space.budget(ratio)
    locked = np.zeros(space.size, dtype=bool)
    for _ in range(50):
        flags = rng.random(space.size) < rng.random()
        fixed = repair(flags, locked, budget, space, rng)
        total = space.macs[fixed].sum()
        assert budget <= total < budget + space.macs.max()
        assert _is_minimal_cover(fixed, locked, budget, space)


def test_repair_never_drops_locked(space):
    rng = np.random.default_rng(1)
    locked = greedy_fill(np.zeros(space.size, dtype=bool), space.budget(0.3), space)
    budget = space.budget(0.6)
    for _ in range(20):
        fixed = repair(rng.random(space.size) < 0.2, locked, budget, space, rng)
        assert np.all(fixed[locked])
        assert _is_minimal_cover(fixed, locked, budget, space)


def test_greedy_fill_takes_cheapest_first_and_is_minimal(space):
    locked = np.zeros(space.size, dtype=bool)
    budget = space.budget(0.5)
    flags = greedy_fill(locked, budget, space)
    assert _is_minimal_cover(flags, locked, budget, space)
    rank = list(space.greedy_rank())
    chosen_pos = [rank.index(i) for i in np.flatnonzero(flags)]
    # the cheapest item is always in, the costliest never (budget is half the MACs)
    assert 0 in chosen_pos and len(rank) - 1 not in chosen_pos


def test_crossover_swaps_whole_layers(space):
    rng = np.random.default_rng(2)
    a = rng.random(space.size) < 0.5
    b = ~a
    for _ in range(20):
        child = crossover(a, b, space, rng)
        for layer in range(space.layer_count):
            sl = slice(space.offsets[layer], space.offsets[layer + 1])
            assert np.array_equal(child[sl], a[sl]) or np.array_equal(child[sl], b[sl])


def test_mutation_moves_flags_inside_layers_only(space):
    rng = np.random.default_rng(4)
    locked = np.zeros(space.size, dtype=bool)
    locked[space.offsets[0]] = True
    flags = repair(rng.random(space.size) < 0.5, locked, space.budget(0.5), space, rng)
    for _ in range(30):
        child = mutate(flags, locked, 0.3, space, rng)
        assert not np.array_equal(child, flags)
        assert np.all(child[locked])
        for layer in range(space.layer_count):
            sl = slice(space.offsets[layer], space.offsets[layer + 1])
            assert child[sl].sum() == flags[sl].sum()


def test_perturb_keeps_count_and_locked(space):
    rng = np.random.default_rng(5)
    locked = np.zeros(space.size, dtype=bool)
    locked[:3] = True
    flags = locked.copy()
    flags[10:20] = True
    out = perturb(flags, locked, 4, space, rng)
    assert out.sum() == flags.sum() and np.all(out[locked]) and not np.array_equal(out, flags)


def test_canonical_fixes_padding_violations(space):
    rng = np.random.default_rng(6)
    assert space.tail.sum() == space.layer_count
    locked = np.zeros(space.size, dtype=bool)
    for _ in range(30):
        flags = rng.random(space.size) < 0.5
        fixed = space.canonical(flags, locked, rng)
        assert valid(fixed, space.tail, space.layer_of, space.layer_count)
        assert np.array_equal(np.bincount(space.layer_of[fixed], minlength=space.layer_count),
                              np.bincount(space.layer_of[flags], minlength=space.layer_count))


def test_operators_keep_candidates_inside_the_allowed_items(space):
    rng = np.random.default_rng(4)
    locked = greedy_fill(np.zeros(space.size, dtype=bool), space.budget(0.25), space)
    allowed = greedy_fill(locked, space.budget(0.75), space) | locked
    budget = space.budget(0.5)
    for _ in range(40):
        flags = repair(rng.random(space.size) < 0.6, locked, budget, space, rng, allowed)  # outside items dropped
        assert not np.any(flags & ~allowed) and np.all(flags[locked])
        assert _is_minimal_cover(flags, locked, budget, space)
        for child in (mutate(flags, locked, 0.5, space, rng, allowed), perturb(flags, locked, 5, space, rng, allowed)):
            fixed = repair(child, locked, budget, space, rng, allowed)
            assert not np.any(child & ~allowed) and not np.any(fixed & ~allowed)
            assert _is_minimal_cover(fixed, locked, budget, space)
