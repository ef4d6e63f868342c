import numpy as np
import onnx
import pytest
from _select_helpers import build_mask_model

from flexiq_trt.errors import CalibrationDataError, ConfigError, ModelError
from flexiq_trt.select.base import LayerGroups, SelectionProblem
from flexiq_trt.select.config import SearchConfig
from flexiq_trt.select.evaluator import MaskFitnessEvaluator
from flexiq_trt.select.evolutionary import EvolutionarySelector


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("sim") / "mask.onnx"
    onnx.save(build_mask_model((2, 3)), path)
    return str(path)


@pytest.fixture(scope="module")
def feeds():
    return {"x": np.random.default_rng(0).normal(0, 1, (40, 8)).astype(np.float32)}


def test_all_false_is_zero_and_any_4bit_group_is_positive(model_path, feeds):
    ev = MaskFitnessEvaluator(model_path, feeds, batch_size=16)
    assert ev.num_samples == 40 and ev.mask_names == ["flexiq_group_mask_0", "flexiq_group_mask_1"]
    assert ev(ev.all_false_masks()) == 0.0
    for li, g in [(0, 0), (0, 1), (1, 2)]:
        masks = ev.all_false_masks()
        masks[li][g] = True
        assert ev(masks) > 0.0
    everything = [np.ones(2, bool), np.ones(3, bool)]
    assert ev(everything) > 0.0
    # softmax outputs: each per-sample distance is below sqrt(2)
    assert np.all(ev.distances(everything) < np.sqrt(2))


def test_subsets_and_batching_agree_with_the_full_run(model_path, feeds):
    masks = [np.array([True, False]), np.array([False, True, True])]
    a = MaskFitnessEvaluator(model_path, feeds, batch_size=7)
    b = MaskFitnessEvaluator(model_path, feeds, batch_size=40)
    assert a(masks) == pytest.approx(b(masks), rel=1e-6)
    d = a.distances(masks)
    assert a(masks, n_samples=10) == pytest.approx(float(np.mean(d[:10])), rel=1e-6)
    assert a.distances(masks, n_samples=10).shape == (10,)


def test_top1_matches_come_with_the_distances(model_path, feeds):
    ev = MaskFitnessEvaluator(model_path, feeds)
    masks = [np.array([True, True]), np.array([True, False, True])]
    dist, match = ev.distances_and_top1(masks)
    np.testing.assert_array_equal(dist, ev.distances(masks))
    expected = ev.outputs(masks)[0].argmax(axis=1) == ev.reference[0].argmax(axis=1)
    np.testing.assert_array_equal(match, expected)
    assert np.all(ev.distances_and_top1(ev.all_false_masks())[1])  # INT8 agrees with itself
    assert MaskFitnessEvaluator(model_path, feeds, output_kind="raw").distances_and_top1(masks)[1] is None


def test_raw_outputs_mode_differs_from_softmax(model_path, feeds):
    masks = [np.array([True, True]), np.array([False, False, False])]
    raw = MaskFitnessEvaluator(model_path, feeds, output_kind="raw")(masks)
    soft = MaskFitnessEvaluator(model_path, feeds, output_kind="softmax")(masks)
    assert raw > 0 and soft > 0 and raw != pytest.approx(soft)


def test_input_errors_name_the_problem(model_path, feeds):
    ev = MaskFitnessEvaluator(model_path, feeds)
    with pytest.raises(ConfigError, match="flexiq_group_mask_1"):
        ev([np.zeros(2, bool), np.zeros(2, bool)])
    with pytest.raises(ConfigError, match="1 layer masks"):
        ev([np.zeros(2, bool)])
    with pytest.raises(CalibrationDataError, match="'x'"):
        MaskFitnessEvaluator(model_path, {"y": feeds["x"]})
    with pytest.raises(ModelError, match="flexiq_group_mask_7"):
        MaskFitnessEvaluator(model_path, feeds, layer_indices=[0, 7])
    with pytest.raises(ConfigError, match="output_kind"):
        MaskFitnessEvaluator(model_path, feeds, output_kind="logits")


def test_search_runs_on_the_evaluator(model_path, feeds):
    layers = [LayerGroups(f"l{i}", i, np.full(gc, 4.0 * w), np.linspace(0.1, 1, gc), np.ones(gc))
              for i, (gc, w) in enumerate([(2, 3), (3, 5)])]
    ev = MaskFitnessEvaluator(model_path, feeds, layer_indices=[0, 1])
    hold = MaskFitnessEvaluator(model_path, {"x": feeds["x"][::-1].copy()}, shuffle_seed=1)
    p = SelectionProblem(layers, ladder=(0.25, 0.5, 0.75), fitness=ev, holdout_fitness=hold)
    cfg = SearchConfig(population=6, generations=3, subset_sizes=(16, 0), screening="subsets")
    order = EvolutionarySelector(cfg).select(p)
    order.validate(p)
    assert any(e.get("n_samples") == 16 for e in order.log)
    assert all(e["holdout_fitness_chosen"] <= e["holdout_fitness_greedy"]
               for e in order.log if e.get("event") == "ratio_result")


def test_concurrent_candidates_match_sequential(model_path, feeds):
    cands = [[np.array([i % 2 == 0, i % 3 == 0]), np.array([i % 2 == 1, False, i > 2])] for i in range(6)]
    seq = MaskFitnessEvaluator(model_path, feeds)
    par = MaskFitnessEvaluator(model_path, feeds, candidate_workers=2)
    assert par.evaluate_many(cands, n_samples=20) == pytest.approx([seq(c, n_samples=20) for c in cands], rel=1e-6)
    with pytest.raises(ConfigError, match="candidate_workers"):
        MaskFitnessEvaluator(model_path, feeds, candidate_workers=0)


def test_batches_side_by_side_match_one_after_another(model_path, feeds, monkeypatch):
    """Several batches of one call run concurrently on a one-thread session: identical outputs and fitness."""
    from flexiq_trt.select import evaluator

    masks = [np.array([True, False]), np.array([False, True, True])]
    monkeypatch.setattr(evaluator, "parallel_runs", lambda: 1)
    alone = MaskFitnessEvaluator(model_path, feeds, batch_size=16)
    monkeypatch.setattr(evaluator, "parallel_runs", lambda: 3)
    side = MaskFitnessEvaluator(model_path, feeds, batch_size=16)
    assert (alone.batch_workers, side.batch_workers) == (1, 3)
    np.testing.assert_array_equal(side.reference_raw, alone.reference_raw)
    np.testing.assert_array_equal(side.raw_outputs(masks), alone.raw_outputs(masks))
    assert side._single is not None and alone._single is None  # the concurrent path was taken
    assert side(masks) == alone(masks)
    run = side.prefix_runner(1, side.all_false_masks())  # 3 batches of cut values, suffix runs side by side
    np.testing.assert_array_equal(run(masks), alone.raw_outputs(masks))
