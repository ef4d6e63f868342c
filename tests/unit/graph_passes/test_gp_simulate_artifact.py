"""The float-exact simulation as the written artifact (the default): checked against the integer-operator form."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from _gp_helpers import eligible_of, random_quantized
from _utils import models as M
from onnx import numpy_helper

from flexiq_trt.calibration.feeds import FeedSet
from flexiq_trt.errors import ConfigError, FlexiqInternalError
from flexiq_trt.graph_passes.artifacts import write_artifacts
from flexiq_trt.graph_passes.simulate_layers import write_simulation_model
from flexiq_trt.plugin_spec import ShiftMode
from flexiq_trt.ratios import LayerEntry, RatioTable
from flexiq_trt.report.evaluate import INTEGER_OPS, check_artifact


def _setup(tmp_path, arithmetic: str = "float-exact"):
    prepared, eligible = eligible_of(M.residual_block(c=64, hw=5), 32)
    pairs = [(e, random_quantized(e, i, 32, not e.input_nonnegative, ShiftMode.DYNAMIC, i))
             for i, e in enumerate(eligible)]
    layers = [LayerEntry(e.name, "FlexiQConv", i, 64, 64, 1.0, [0.5, 0.5]) for i, (e, _) in enumerate(pairs)]
    table = RatioTable(32, layers, [(1, 0), (0, 0), (1, 1), (0, 1)], [0.0, 0.5, 1.0])
    files = write_artifacts(tmp_path, "m", prepared, pairs, table, arithmetic)
    rng = np.random.default_rng(0)
    feeds = FeedSet([{"x": rng.normal(0, 1, (1, 64, 5, 5)).astype(np.float32)} for _ in range(3)])
    return prepared, pairs, table, str(files["sim_onnx"]), feeds


def _ops(path: str) -> set[str]:
    return {n.op_type for n in onnx.load(path).graph.node}


def test_default_artifact_is_float_exact_and_checked_against_the_integer_form(tmp_path):
    prepared, pairs, table, artifact, feeds = _setup(tmp_path)
    assert not _ops(artifact) & INTEGER_OPS and "Conv" in _ops(artifact)
    evaluated = write_simulation_model(prepared, pairs, {}, float_exact=True)
    integer = write_simulation_model(prepared, pairs, {})
    assert {"ConvInteger"} <= {n.op_type for n in integer.graph.node}
    result = check_artifact(artifact, evaluated, table, [0.5], feeds, integer=integer)
    assert result["identical"] and result["artifact"] == "float-exact"
    assert result["compared_with"] == ["float-exact (evaluated)", "integer operators"]


def test_integer_artifact_on_request(tmp_path):
    prepared, pairs, table, artifact, feeds = _setup(tmp_path, "integer")
    assert "ConvInteger" in _ops(artifact)
    result = check_artifact(artifact, write_simulation_model(prepared, pairs, {}, float_exact=True), table, [0.5], feeds)
    assert result["artifact"] == "integer" and result["compared_with"] == ["float-exact (evaluated)"]


def test_unknown_arithmetic_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="sim_arithmetic"):
        _setup(tmp_path, "int4")


def test_float_exact_artifact_needs_the_integer_form(tmp_path):
    prepared, pairs, table, artifact, feeds = _setup(tmp_path)
    with pytest.raises(FlexiqInternalError, match="integer-operator form"):
        check_artifact(artifact, write_simulation_model(prepared, pairs, {}, float_exact=True), table, [0.5], feeds)


def test_a_differing_integer_form_fails_loudly(tmp_path):
    """Artifact and evaluated model are the same construction; an integer form whose 8-bit codes are one
    step off is caught, so the comparison with it is not vacuous."""
    prepared, pairs, table, artifact, feeds = _setup(tmp_path)
    evaluated = write_simulation_model(prepared, pairs, {}, float_exact=True)
    integer = write_simulation_model(prepared, pairs, {})
    codes = next(t for t in integer.graph.initializer if t.name.startswith("flexiq1_w8_w4eff"))
    arr = numpy_helper.to_array(codes)
    half = arr.shape[1] // 2  # [N, 2 Gc, G, R, S]: the 8-bit blocks come first
    arr = arr.copy()
    arr[:, :half] = np.where(arr[:, :half] < 100, arr[:, :half] + 1, arr[:, :half] - 1)
    codes.CopyFrom(numpy_helper.from_array(arr.astype(arr.dtype), codes.name))
    with pytest.raises(FlexiqInternalError, match=r"at ratio 0\.00 differs from the ConvInteger/MatMulInteger form"):
        check_artifact(artifact, evaluated, table, [0.5], feeds, integer=integer)
