"""prepare_model: BN folded (numerically equal in ORT), Constant weights become initializers, names stable."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from _utils import models as M
from _utils.asserts import assert_op_counts

from flexiq_trt.errors import ModelError
from flexiq_trt.intake import find_layers, prepare_model


def _run(model, x):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def test_batchnorm_folded_numerically_equal():
    model = M.conv_bn_relu()
    prepared = prepare_model(model)
    assert_op_counts(prepared, {"BatchNormalization": 0, "Conv": 1, "Relu": 1})
    x = np.random.default_rng(0).standard_normal((2, 64, 8, 8)).astype(np.float32)
    ref, got = _run(model, x), _run(prepared, x)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    assert np.abs(ref).max() > 0.1


def test_batchnorm_kept_when_conv_output_shared():
    model = M.conv_bn_relu()
    model.graph.output.append(model.graph.output[0].__class__(name="c"))
    model.graph.output[-1].type.tensor_type.elem_type = 1
    prepared = prepare_model(model)
    assert_op_counts(prepared, {"BatchNormalization": 1})


def test_constant_weights_become_initializers_and_names_stable():
    prepared = prepare_model(M.residual_block())
    assert_op_counts(prepared, {"Constant": 0, "Conv": 2})
    layers, skipped = find_layers(prepared, 32)
    assert [e.name for e in layers] == ["Conv:c1", "Conv:c2"] and not skipped
    again = prepare_model(M.residual_block())
    assert [n.name for n in again.graph.node] == [n.name for n in prepared.graph.node]


def test_input_shapes_resolve_dynamic_dims_without_changing_model():
    prepared = prepare_model(M.conv_bn_relu(batch="N", hw="H"))
    _, skipped = find_layers(prepared, 32)
    assert "dynamic" in skipped[0].reason
    (layer,), _ = find_layers(prepared, 32, input_shapes={"x": (4, 64, 8, 8)})
    assert layer.input_shape == (1, 64, 8, 8) and layer.macs == 32 * 64 * 9 * 64
    dims = prepared.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["N", "", "H", "H"]
    with pytest.raises(ModelError, match="nope"):
        find_layers(prepared, 32, input_shapes={"nope": (1, 2)})
    recorded = prepare_model(M.conv_bn_relu(batch="N", hw="H"), {"x": (2, 64, 6, 6)})
    (layer,), _ = find_layers(recorded, 32)  # uses the shapes prepare_model recorded
    assert layer.macs == 32 * 64 * 9 * 36
    assert recorded.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    with pytest.raises(ModelError, match="nope"):
        prepare_model(M.conv_bn_relu(), {"nope": (1, 2)})


def test_identity_and_constant_weight_paths_fold_to_initializers():
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)
    w = rng.standard_normal((16, 64, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Constant", [], ["wc"], value=numpy_helper.from_array(w)),
             helper.make_node("Identity", ["wc"], ["wi"]),
             helper.make_node("Mul", ["wi", "two"], ["w2"]),
             helper.make_node("Conv", ["x", "w2"], ["y"], name="conv")]
    model = M.make_model(nodes, [M.vinfo("x", [1, 64, 4, 4])], [M.vinfo("y", None)],
                         [("two", np.array(2.0, np.float32))])
    (layer,), skipped = find_layers(prepare_model(model), 32)
    assert not skipped
    np.testing.assert_array_equal(layer.weight, 2 * w)
