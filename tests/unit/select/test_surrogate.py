"""The linearized output model: exact where the math says so, faithful in ranking, and a deterministic search."""

import json
import logging

import numpy as np
import onnx
import pytest
from _select_helpers import build_mask_model

from flexiq_trt.errors import ConfigError
from flexiq_trt.select.base import LayerGroups, SelectionProblem
from flexiq_trt.select.chromosome import ItemSpace
from flexiq_trt.select.config import SearchConfig
from flexiq_trt.select.evaluator import MaskFitnessEvaluator
from flexiq_trt.select.evolutionary import EvolutionarySelector
from flexiq_trt.select.surrogate import (
    ItemResponses,
    LinearizedFitness,
    _Projector,
    build_item_responses,
    supports_responses,
)

GROUPS = (3, 4, 3)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("sim") / "mask.onnx"
    onnx.save(build_mask_model(GROUPS, classes=6, seed=3), path)
    return str(path)


@pytest.fixture(scope="module")
def feeds():
    return {"x": np.random.default_rng(1).normal(0, 1, (48, GROUPS[0] * 4)).astype(np.float32)}


def _problem(fitness=None, holdout=None) -> SelectionProblem:
    layers = [LayerGroups(f"l{i}", i, np.full(gc, 100.0 * (i + 1)), np.linspace(0.2, 1.0, gc), np.ones(gc))
              for i, gc in enumerate(GROUPS)]
    return SelectionProblem(layers, ladder=(0.25, 0.5, 0.75), seed=0, fitness=fitness, holdout_fitness=holdout)


def _flags(space: ItemSpace, items) -> np.ndarray:
    f = np.zeros(space.size, dtype=bool)
    f[list(items)] = True
    return f


def test_one_item_is_exact(model_path, feeds):
    ev = MaskFitnessEvaluator(model_path, feeds)
    space = ItemSpace.from_problem(_problem())
    model = LinearizedFitness(build_item_responses(ev, space, 16))
    for i in range(space.size):
        flags = _flags(space, [i])
        assert model(flags) == pytest.approx(ev(space.to_masks(flags), n_samples=16), rel=1e-5, abs=1e-9)
    assert model(np.zeros(space.size, bool)) == 0.0


def test_groups_of_the_last_layer_add_exactly(model_path, feeds):
    # the last layer feeds the logits linearly, so its groups' errors add exactly there
    ev = MaskFitnessEvaluator(model_path, feeds)
    space = ItemSpace.from_problem(_problem())
    model = LinearizedFitness(build_item_responses(ev, space, 16))
    last = range(space.offsets[-2], space.offsets[-1])
    flags = _flags(space, last)
    assert model(flags) == pytest.approx(ev(space.to_masks(flags), n_samples=16), rel=1e-5)


def test_ranking_follows_the_real_simulation(model_path, feeds):
    ev = MaskFitnessEvaluator(model_path, feeds)
    space = ItemSpace.from_problem(_problem())
    model = LinearizedFitness(build_item_responses(ev, space, 48))
    rng = np.random.default_rng(0)
    cands = [rng.random(space.size) < rng.uniform(0.1, 0.6) for _ in range(40)]
    modelled = np.array(model.many(cands))
    real = np.array([ev(space.to_masks(c)) for c in cands])
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    spearman = np.corrcoef(rank(modelled), rank(real))[0, 1]
    assert spearman > 0.8, spearman
    assert model.many(cands[:5]) == model.many(cands[:5])  # batched == batched again
    assert model.many(cands[:3]) == pytest.approx([model(c) for c in cands[:3]], rel=1e-12)


def test_linear_outputs_use_raw_distances(model_path, feeds):
    ev = MaskFitnessEvaluator(model_path, feeds, output_kind="raw")
    assert ev.output_segments == [(6, "linear")]
    space = ItemSpace.from_problem(_problem())
    model = LinearizedFitness(build_item_responses(ev, space, 8))
    flags = _flags(space, [0])
    assert model(flags) == pytest.approx(ev(space.to_masks(flags), n_samples=8), rel=1e-5)


def test_wide_linear_outputs_are_sketched_keeping_norms():
    projector = _Projector([(10, "softmax"), (20000, "linear")], sketch_dim=2048, seed=0)
    assert projector.segments == [(10, "softmax"), (2048, "linear")]
    rows = np.random.default_rng(0).normal(0, 1, (6, 20010))
    out = projector(rows)
    assert out.shape == (6, 2058)
    np.testing.assert_array_equal(out[:, :10], rows[:, :10])
    ratio = np.linalg.norm(out[:, 10:], axis=1) / np.linalg.norm(rows[:, 10:], axis=1)
    assert np.all(np.abs(ratio - 1.0) < 0.1), ratio


def test_memory_cap_reduces_samples_and_says_so(model_path, feeds, caplog):
    ev = MaskFitnessEvaluator(model_path, feeds)
    space = ItemSpace.from_problem(_problem())
    responses = build_item_responses(ev, space, 16, max_bytes=4 * space.size * 6 * 5)
    assert responses.num_samples == 5
    assert "instead of 16" in caplog.text


def test_needs_raw_outputs():
    assert not supports_responses(lambda masks: 0.0)
    with pytest.raises(ConfigError, match="raw outputs"):
        build_item_responses(lambda masks: 0.0, ItemSpace.from_problem(_problem()), 4)


def test_search_ranks_with_the_model_and_is_deterministic(model_path, feeds):
    ev = MaskFitnessEvaluator(model_path, feeds)
    hold = MaskFitnessEvaluator(model_path, {"x": feeds["x"][::-1].copy()}, shuffle_seed=1)
    cfg = SearchConfig(population=8, generations=4, surrogate_samples=16)
    a = EvolutionarySelector(cfg).select(_problem(ev, hold))
    b = EvolutionarySelector(cfg).select(_problem(ev, hold))
    assert a.items == b.items
    screening = [e for e in a.log if e.get("event") == "screening"]
    assert screening and screening[0]["samples"] == 16 and 0 < screening[0]["items"] < sum(GROUPS)
    gens = [e for e in a.log if "best" in e]
    assert gens and all(e["n_samples"] == "surrogate" for e in gens)
    for e in (e for e in a.log if e.get("event") == "ratio_result"):
        assert e["calib_fitness_best"] <= e["calib_fitness_greedy"]  # only real scores pick the result
        assert e["holdout_fitness_chosen"] <= e["holdout_fitness_greedy"]


class _Interrupt(Exception):
    pass


class _StopAfter:
    """The evaluator, interrupted after `calls` real fitness evaluations."""

    def __init__(self, inner: MaskFitnessEvaluator, calls: int):
        self.inner, self.left = inner, calls
        self.supports_subsets, self.num_samples = True, inner.num_samples
        self.raw_outputs, self.reference_raw, self.output_segments = (inner.raw_outputs, inner.reference_raw,
                                                                      inner.output_segments)

    def __call__(self, masks, n_samples=None):
        self.left -= 1
        if self.left < 0:
            raise _Interrupt
        return self.inner(masks, n_samples)


def test_resumed_search_with_the_model_ends_where_an_uninterrupted_one_does(model_path, feeds, tmp_path):
    ev = MaskFitnessEvaluator(model_path, feeds)
    cfg = SearchConfig(population=8, generations=5, surrogate_samples=16)
    ref = EvolutionarySelector(cfg).select(_problem(ev))
    ckpt = cfg.with_overrides(checkpoint_path=str(tmp_path / "s.json"))
    with pytest.raises(_Interrupt):
        EvolutionarySelector(ckpt).select(_problem(_StopAfter(ev, 6)))
    assert json.loads((tmp_path / "s.json").read_text())["state"]["log"]
    resumed = EvolutionarySelector(ckpt).select(_problem(ev))
    assert resumed.items == ref.items
    strip = lambda log: [{k: v for k, v in e.items() if k != "seconds"} for e in log]  # noqa: E731
    assert strip(resumed.log) == strip(ref.log)


def test_plain_fitness_falls_back_to_subsets(caplog):
    p = _problem(lambda masks: float(sum(np.sum(m) for m in masks)))
    with caplog.at_level(logging.INFO, logger="flexiq_trt"):
        order = EvolutionarySelector(SearchConfig(population=6, generations=2)).select(p)
    assert "instead" in caplog.text
    assert not any(e.get("event") == "screening" for e in order.log)


def test_anchored_model_is_exact_at_and_next_to_its_anchor(model_path, feeds):
    ev = MaskFitnessEvaluator(model_path, feeds)
    space = ItemSpace.from_problem(_problem())
    anchor = _flags(space, [0, 3, 4, 7])
    locked = _flags(space, [0, 3])
    free = np.flatnonzero(~locked)
    model = LinearizedFitness(build_item_responses(ev, space, 16, anchor=anchor, items=free))
    assert model(anchor) == pytest.approx(ev(space.to_masks(anchor), n_samples=16), rel=1e-5)
    for i in free:
        flags = anchor.copy()
        flags[i] = not flags[i]
        assert model(flags) == pytest.approx(ev(space.to_masks(flags), n_samples=16), rel=1e-5, abs=1e-9)
    with pytest.raises(ConfigError, match="anchor"):
        model(anchor & ~locked)  # a locked item cannot change


def test_item_responses_shape():
    r = ItemResponses(np.zeros((3, 2, 4), np.float32), np.zeros((2, 4)), ((4, "softmax"),), np.zeros((2, 4)),
                      np.zeros(3, bool), np.arange(3))
    assert r.num_samples == 2 and LinearizedFitness(r).many([np.ones(3, bool)]) == [0.0]


@pytest.mark.parametrize("kind", ["auto", "softmax"])
def test_several_outputs_are_modelled_per_segment(tmp_path, feeds, kind):
    model = build_mask_model(GROUPS, classes=6, seed=3)
    # a second, rank-3 output: the first layer's activations (so "auto" treats every output as raw)
    model.graph.node.append(onnx.helper.make_node("Unsqueeze", ["r0", "ax"], ["features"]))
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.array([1], np.int64), "ax"))
    model.graph.output.append(onnx.helper.make_tensor_value_info("features", onnx.TensorProto.FLOAT, ["N", 1, 16]))
    onnx.save(model, tmp_path / "two.onnx")
    ev = MaskFitnessEvaluator(str(tmp_path / "two.onnx"), feeds, output_kind=kind)
    expected = "linear" if kind == "auto" else "softmax"
    assert [k for _, k in ev.output_segments] == [expected, expected]
    space = ItemSpace.from_problem(_problem())
    model_fit = LinearizedFitness(build_item_responses(ev, space, 16))
    for i in (0, space.size - 1):
        flags = _flags(space, [i])
        assert model_fit(flags) == pytest.approx(ev(space.to_masks(flags), n_samples=16), rel=1e-5, abs=1e-9)


def test_concurrent_item_runs_give_the_same_responses(model_path, feeds):
    """The items of a layer run side by side on single-threaded suffix runs: the responses are bit-identical
    to one item at a time, in the same item order."""
    from flexiq_trt.select.evaluator import parallel_runs

    assert 1 <= parallel_runs() <= 4
    ev = MaskFitnessEvaluator(model_path, feeds)
    space = ItemSpace.from_problem(_problem())
    anchor = _flags(space, [0, 3, 4, 7])
    free = np.flatnonzero(~_flags(space, [0]))
    ev.batch_workers = 1
    one = build_item_responses(ev, space, 16, anchor=anchor, items=free)
    ev.batch_workers = 3
    several = build_item_responses(ev, space, 16, anchor=anchor, items=free)
    np.testing.assert_array_equal(several.deltas, one.deltas)
    np.testing.assert_array_equal(several.items, free)
    assert np.count_nonzero(np.abs(one.deltas).sum(axis=(1, 2))) == len(free)  # every item moves the outputs


def test_greedy_set_outside_the_next_ratios_greedy_set(tmp_path):
    """At 50% the greedy fill overshoots with a 30-MAC group and drops the two 10-MAC groups the 25% greedy
    set holds, so that set is not inside the next ratio's greedy set (the allowed items). The search then
    fills its greedy candidate from the allowed items (it used to stop: a candidate outside the measured items)."""
    from flexiq_trt.select.chromosome import greedy_fill

    groups = (1, 1, 2)
    macs = [np.array([10.0]), np.array([30.0]), np.array([10.0, 10.0])]
    errors = [np.array([0.015]), np.array([0.688]), np.array([0.99, 0.092])]
    layers = [LayerGroups(f"l{i}", i, macs[i], errors[i], np.ones(g)) for i, g in enumerate(groups)]
    path = tmp_path / "mask.onnx"
    onnx.save(build_mask_model(groups, classes=6, seed=3), path)
    ev = MaskFitnessEvaluator(str(path), {"x": np.random.default_rng(1).normal(0, 1, (24, 4)).astype(np.float32)})
    problem = SelectionProblem(layers, ladder=(0.25, 0.5), seed=0, fitness=ev)
    space = ItemSpace.from_problem(problem)
    none = np.zeros(space.size, bool)
    at_25, at_50 = greedy_fill(none, space.budget(0.25), space), greedy_fill(none, space.budget(0.5), space)
    assert np.any(at_25 & ~at_50)  # the case this test is about
    order = EvolutionarySelector(SearchConfig(population=6, generations=2, ladder=(0.25, 0.5))).select(problem)
    order.validate(problem)
    allowed = {space.item(i) for i in np.flatnonzero(at_50)}
    covered, prefix = 0.0, []
    for layer, group in order.items:  # the 25% set: the shortest prefix covering a quarter of the MACs
        if covered >= space.budget(0.25):
            break
        prefix.append((layer, group))
        covered += float(macs[layer][group])
    assert set(prefix) <= allowed
