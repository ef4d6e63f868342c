"""apply_replacements: removal by position, insertion, unused-initializer cleanup, toposort, errors."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from _utils import models as M
from onnx import helper, numpy_helper

from flexiq_trt.errors import FlexiqInternalError
from flexiq_trt.graph_passes.rewrite import Replacement, apply_replacements


def test_replace_sorts_and_drops_unused_initializers():
    model = M.conv_then(M.ACTIVATION_NODES["relu"][0])
    # replace Conv (index 0) by a node placed after its consumer in the list: toposort must fix the order
    new = helper.make_node("Conv", ["x", "w_new"], ["c"], name="conv2", pads=[1, 1, 1, 1])
    w = numpy_helper.to_array(model.graph.initializer[0])
    rep = Replacement([0], [new], [numpy_helper.from_array(w * 2, "w_new")], "test")
    out = apply_replacements(model, [rep], opset_imports={"my.domain": 1})
    onnx.checker.check_model(out)
    assert [n.name for n in out.graph.node] == ["conv2", "act"]
    assert [t.name for t in out.graph.initializer] == ["w_new"]
    assert any(o.domain == "my.domain" for o in out.opset_import)
    assert [n.name for n in model.graph.node] == ["conv", "act"]  # input untouched


def test_overlapping_replacements_rejected():
    model = M.conv_then(M.ACTIVATION_NODES["relu"][0])
    reps = [Replacement([0], [], description="a"), Replacement([0, 1], [], description="b")]
    with pytest.raises(FlexiqInternalError, match="overlap"):
        apply_replacements(model, reps)


def test_cycle_detected():
    model = M.conv_then(M.ACTIVATION_NODES["relu"][0])
    loop = helper.make_node("Relu", ["y"], ["c"], name="loop")
    with pytest.raises(FlexiqInternalError, match="cycle"):
        apply_replacements(model, [Replacement([0], [loop])])


def test_unused_value_info_dropped():
    model = onnx.shape_inference.infer_shapes(M.conv_then(M.ACTIVATION_NODES["relu"][0]))
    assert any(v.name == "c" for v in model.graph.value_info)
    fused = helper.make_node("Conv", ["x", "w"], ["y"], name="fused", pads=[1, 1, 1, 1])
    out = apply_replacements(model, [Replacement([0, 1], [fused])])
    assert not any(v.name == "c" for v in out.graph.value_info)
    assert np.array_equal(numpy_helper.to_array(out.graph.initializer[0]),
                          numpy_helper.to_array(model.graph.initializer[0]))
