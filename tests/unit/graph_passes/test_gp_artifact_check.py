"""The report evaluates the float-exact simulation; `check_artifact` holds the written artifact to it."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from _gp_helpers import eligible_of, random_quantized
from _utils import models as M
from onnx import numpy_helper

from flexiq_trt.calibration.feeds import FeedSet
from flexiq_trt.errors import FlexiqInternalError
from flexiq_trt.graph_passes.simulate_layers import write_simulation_model
from flexiq_trt.plugin_spec import ShiftMode
from flexiq_trt.ratios import LayerEntry, RatioTable
from flexiq_trt.report.evaluate import check_artifact


def _two_layers(tmp_path):
    prepared, eligible = eligible_of(M.residual_block(c=64, hw=5), 32)
    pairs = [(e, random_quantized(e, i, 32, not e.input_nonnegative, ShiftMode.DYNAMIC, i))
             for i, e in enumerate(eligible)]
    layers = [LayerEntry(e.name, "FlexiQConv", i, 64, 64, 1.0, [0.5, 0.5]) for i, (e, _) in enumerate(pairs)]
    table = RatioTable(32, layers, [(1, 0), (0, 0), (1, 1), (0, 1)], [0.0, 0.5, 1.0])
    artifact = tmp_path / "m.flexiq-sim.onnx"
    onnx.save(write_simulation_model(prepared, pairs, {}), str(artifact))
    rng = np.random.default_rng(0)
    feeds = FeedSet([{"x": rng.normal(0, 1, (1, 64, 5, 5)).astype(np.float32)} for _ in range(3)])
    return prepared, pairs, table, artifact, feeds


def test_artifact_identical_to_the_float_exact_model(tmp_path):
    prepared, pairs, table, artifact, feeds = _two_layers(tmp_path)
    fast = write_simulation_model(prepared, pairs, {}, float_exact=True)
    result = check_artifact(str(artifact), fast, table, [0.25, 0.5], feeds)
    assert result == {"samples": 1, "ratios": [0.0, 0.25, 0.5, 1.0], "identical": True, "artifact": "integer",
                      "compared_with": ["float-exact (evaluated)"]}


def test_a_differing_artifact_fails_loudly(tmp_path):
    """The 8-bit weight codes of one layer changed in the artifact: the check names the file and the first ratio that differs."""
    prepared, pairs, table, artifact, feeds = _two_layers(tmp_path)
    fast = write_simulation_model(prepared, pairs, {}, float_exact=True)
    model = onnx.load(str(artifact))
    w8 = next(t for t in model.graph.initializer if t.name.startswith("flexiq1_w8"))
    arr = numpy_helper.to_array(w8)
    arr = np.where(arr < 100, arr + 1, arr - 1).astype(arr.dtype)  # every 8-bit weight code one step off
    w8.CopyFrom(numpy_helper.from_array(arr, w8.name))
    onnx.save(model, str(artifact))
    with pytest.raises(FlexiqInternalError, match=r"m\.flexiq-sim\.onnx.*at ratio 0\.00 differs"):
        check_artifact(str(artifact), fast, table, [0.5], feeds)
