"""The shared-prefix runner on a real mask-mode simulation: same outputs as whole runs, and the model built with it."""

import numpy as np
import onnx
import pytest
from _utils import models

import flexiq_trt
from flexiq_trt.conversion import ConvertConfig
from flexiq_trt.select import simulation_fitness
from flexiq_trt.select.prefix_split import cut_before, layer_start


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory):
    """The search's fitness evaluator of a two-layer residual block, taken from a real conversion."""
    tmp = tmp_path_factory.mktemp("prefix")
    onnx.save(models.residual_block(c=64, hw=8), tmp / "res.onnx")
    np.savez(tmp / "calib.npz", x=np.random.default_rng(0).normal(size=(40, 64, 8, 8)).astype(np.float32))
    captured = {}
    original = simulation_fitness.build_fitness

    def capture(*args, **kwargs):
        fit, hold = original(*args, **kwargs)
        captured["fit"] = fit
        return fit, hold

    simulation_fitness.build_fitness = capture
    try:
        flexiq_trt.convert(tmp / "res.onnx", calib=str(tmp / "calib.npz"), output_dir=tmp / "out",
                           config=ConvertConfig(selector="greedy", report=False))
    finally:
        simulation_fitness.build_fitness = original
    return captured["fit"]


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
