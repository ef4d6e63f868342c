import numpy as np
import pytest
from _select_helpers import QuadraticFitness, make_problem

from flexiq_trt.errors import ConfigError
from flexiq_trt.select.chromosome import ItemSpace
from flexiq_trt.select.config import PRESETS, SearchConfig, preset
from flexiq_trt.select.padding import padded_group, valid
from flexiq_trt.select.registry import DEFAULT_SELECTOR, create_selector, selector_names
from flexiq_trt.select.simple import GreedySelector, RandomSelector, RangeSelector


def test_registry_names_and_default():
    assert selector_names()[0] == DEFAULT_SELECTOR == "evolutionary"
    assert set(selector_names()) == {"evolutionary", "greedy", "range", "random", "mixquant"}
    for name in selector_names():
        assert create_selector(name).name == name
    with pytest.raises(ConfigError, match="unknown selector 'nope'"):
        create_selector("nope")


def _check_sorted_with_padded_last(p, order, key):
    """Unpadded items by ascending key; each padded group after its layer's other groups."""
    padded = {(li, padded_group(lg)) for li, lg in enumerate(p.layers) if padded_group(lg) is not None}
    assert padded  # make_problem pads every layer's last group
    keys = [key(li, g) for li, g in order.items if (li, g) not in padded]
    assert keys == sorted(keys)
    for li, g in padded:
        pos = order.items.index((li, g))
        assert pos > max(order.items.index((li, o)) for o in range(p.layers[li].group_count) if o != g)


def test_greedy_orders_by_error_per_mac():
    p = make_problem()
    order = GreedySelector().select(p)
    order.validate(p)
    _check_sorted_with_padded_last(p, order, lambda li, g: p.layers[li].error_score[g] / p.layers[li].group_macs[g])


def test_range_orders_by_value_range():
    p = make_problem()
    order = RangeSelector().select(p)
    _check_sorted_with_padded_last(p, order, lambda li, g: p.layers[li].value_range[g])


@pytest.mark.parametrize("name", ["greedy", "range", "random", "mixquant", "evolutionary"])
def test_every_selector_keeps_padded_groups_last(name):
    p = make_problem(layers=7)
    p.fitness = QuadraticFitness(p)
    order = create_selector(name, SearchConfig(population=8, generations=3, subset_sizes=(0,))).select(p)
    space = ItemSpace.from_problem(p)
    assert space.tail.sum() == 7
    for r in np.linspace(0, 1, 41):
        assert valid(np.concatenate(order.masks_at(p, r)), space.tail, space.layer_of, space.layer_count)


def test_padded_group_can_be_given_explicitly():
    p = make_problem()
    p.layers[0].extra["padded_group"] = None
    p.layers[1].extra["padded_group"] = 0
    assert padded_group(p.layers[0]) is None and padded_group(p.layers[1]) == 0


def test_random_is_seeded():
    p = make_problem()
    a, b = RandomSelector().select(p), RandomSelector().select(p)
    c = RandomSelector(SearchConfig(seed=1)).select(p)
    a.validate(p)
    assert a.items == b.items and a.items != c.items


def test_nested_sets_for_any_order():
    p = make_problem(layers=7)
    order = RandomSelector().select(p)
    prev = np.zeros(sum(lg.group_count for lg in p.layers), dtype=bool)
    for r in np.linspace(0, 1, 21):
        cur = np.concatenate(order.masks_at(p, r))
        assert np.all(cur[prev])
        prev = cur
    assert prev.all()


def test_presets_and_config_validation():
    assert PRESETS["paper"].population == 50 and PRESETS["paper"].generations == 50
    fast = preset("fast")
    assert fast.preset == "fast" and fast.population * fast.generations < 50 * 50
    assert preset("paper", seed=3).seed == 3
    with pytest.raises(ConfigError, match="unknown search preset"):
        preset("turbo")
    with pytest.raises(ConfigError, match="elite_count"):
        SearchConfig(population=4, elite_count=4)
    with pytest.raises(ConfigError, match="mutation_rate"):
        SearchConfig(mutation_rate=1.5)
