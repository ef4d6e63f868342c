"""The shared-prefix runner on a real mask-mode simulation: same outputs as whole runs, and the model built with it."""

import numpy as np
import onnx
import pytest
from _utils import models
from _utils.configs import NO_BLOCK_ROUNDING

import flexiq_trt
from flexiq_trt.conversion import ConvertConfig
from flexiq_trt.select import simulation_fitness
from flexiq_trt.select.prefix_split import cut_before, layer_start


def _fitness_of(tmp, model: onnx.ModelProto, shape: tuple[int, ...]):
    """The search's fitness evaluator of `model`, taken from a real conversion."""
    onnx.save(model, tmp / "res.onnx")
    np.savez(tmp / "calib.npz", x=np.random.default_rng(0).normal(size=(40, *shape[1:])).astype(np.float32))
    captured = {}
    original = simulation_fitness.build_fitness

    def capture(*args, **kwargs):
        fit, hold = original(*args, **kwargs)
        captured["fit"] = fit
        return fit, hold

    simulation_fitness.build_fitness = capture
    try:
        flexiq_trt.convert(tmp / "res.onnx", calib=str(tmp / "calib.npz"), output_dir=tmp / "out",
                           config=ConvertConfig(selector="greedy", report=False), refine=NO_BLOCK_ROUNDING)
    finally:
        simulation_fitness.build_fitness = original
    return captured["fit"]


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory):
    """A two-layer residual block."""
    return _fitness_of(tmp_path_factory.mktemp("prefix"), models.residual_block(c=64, hw=8), (1, 64, 8, 8))


def _four_layers() -> onnx.ModelProto:
    """Four 1x1 convs with ReLUs and a skip from the first ReLU over two layers (a tensor crossing two cuts)."""
    from onnx import helper

    rng = np.random.default_rng(5)
    nodes, inits, x = [helper.make_node("Relu", ["x"], ["r0"])], [], "r0"
    for i in range(4):
        inits.append((f"w{i}", rng.normal(0, 0.15, (64, 64, 1, 1)).astype(np.float32)))
        nodes += [helper.make_node("Conv", [x, f"w{i}"], [f"c{i}"]), helper.make_node("Relu", [f"c{i}"], [f"r{i + 1}"])]
        x = f"r{i + 1}"
        if i == 2:
            nodes.append(helper.make_node("Add", [x, "r1"], ["skip"]))
            x = "skip"
    return models.make_model(nodes, [models.vinfo("x", [1, 64, 6, 6])], [models.vinfo(x, [1, 64, 6, 6])], inits)


def test_chained_prefixes_match_whole_runs(tmp_path):
    """Positions in order with one anchor: cuts after the first come from the previous cut's values, bit for bit."""
    ev = _fitness_of(tmp_path, _four_layers(), (1, 64, 6, 6))
    before = ev.chained_cuts  # the conversion's sensitivity measurement chains too
    anchor = [np.arange(m.shape[0]) % 2 == 1 for m in ev.all_false_masks()]
    assert len(anchor) == 4
    for position in range(1, 4):
        run = ev.prefix_runner(position, anchor, 24)
        masks = [a.copy() for a in anchor]
        masks[position][0] = not masks[position][0]
        np.testing.assert_array_equal(run(masks), ev.raw_outputs(masks, 24))
    assert ev.chained_cuts - before == 2  # positions 2 and 3
    ev.prefix_runner(1, anchor, 24)  # going back starts from the graph inputs
    other = [~a for a in anchor]
    ev.prefix_runner(2, other, 24)  # another anchor too
    assert ev.chained_cuts - before == 2
    ev.release_prefix()
    assert ev._chain is None


def test_prefix_runner_matches_whole_runs(evaluator):
    anchor = [np.arange(m.shape[0]) % 2 == 0 for m in evaluator.all_false_masks()]
    assert len(anchor) >= 2
    for position in range(len(anchor)):
        run = evaluator.prefix_runner(position, anchor, 16)
        for layer in range(position, len(anchor)):  # the layer itself and any later one
            masks = [a.copy() for a in anchor]
            masks[layer][0] = not masks[layer][0]
            np.testing.assert_array_equal(run(masks), evaluator.raw_outputs(masks, 16))
        if position > 0:  # a change before the cut falls back to a whole run, still correct
            masks = [a.copy() for a in anchor]
            masks[0][:] = ~masks[0]
            np.testing.assert_array_equal(run(masks), evaluator.raw_outputs(masks, 16))


def test_cut_is_made_before_the_layer(evaluator):
    model = onnx.load_from_string(evaluator._source) if isinstance(evaluator._source, bytes) else evaluator._source
    last = int(evaluator.mask_names[-1].rsplit("_", 1)[1])
    start = layer_start(model, last)
    assert start is not None and start > 0
    cut = cut_before(model, last)
    assert cut is not None and cut.tensors
    assert not any(n.name.startswith(f"flexiq{last}_") for n in cut.prefix.graph.node)
    assert all(n.name.startswith(f"flexiq{last}_") for n in cut.suffix.graph.node[:1])
    assert cut_before(model, 999) is None


def test_segment_only_forward(evaluator):
    """A segment runs from an earlier cut to a later one; the other way (or the same layer) there is none."""
    from flexiq_trt.select.prefix_split import segment_between, tensor_types

    model = onnx.load_from_string(evaluator._source) if isinstance(evaluator._source, bytes) else evaluator._source
    types = tensor_types(model)
    first, last = (int(n.rsplit("_", 1)[1]) for n in (evaluator.mask_names[0], evaluator.mask_names[-1]))
    a, b = cut_before(model, first, types), cut_before(model, last, types)
    assert b is not None
    if a is not None:  # a cut needs nodes before the layer
        seg = segment_between(model, a, first, b, last, types)
        assert seg is not None and set(seg.outputs) <= set(b.tensors)
        assert segment_between(model, b, last, a, first, types) is None
    assert segment_between(model, b, last, b, last, types) is None


def test_layer_sensitivities_chain_prefixes_and_equal_whole_runs(tmp_path):
    """Sensitivities measured around the INT8 model with chained cuts: the same numbers as one whole run per layer."""
    from types import SimpleNamespace

    from flexiq_trt.select.sensitivity import layer_sensitivities

    ev = _fitness_of(tmp_path, _four_layers(), (1, 64, 6, 6))
    ev.release_prefix()
    problem = SimpleNamespace(layers=[SimpleNamespace(group_count=m.shape[0]) for m in ev.all_false_masks()])
    before = ev.chained_cuts
    chained = layer_sensitivities(problem, ev)
    assert ev.chained_cuts - before == 3  # every layer after the first starts from the previous cut's values
    assert ev._chain is None  # released at the end
    whole = []
    for i in range(4):
        masks = ev.all_false_masks()
        masks[i][:] = True
        whole.append(ev(masks))
    np.testing.assert_array_equal(chained, np.array(whole))
    assert np.all(chained > 0)
