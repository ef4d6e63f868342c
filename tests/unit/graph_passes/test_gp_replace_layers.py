"""The FlexiQ plugin-node writer: fields, kinds and lengths as plugin_spec says; checker; weight round trip."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from _gp_helpers import eligible_of, random_quantized
from _utils import models as M
from _utils.asserts import assert_op_counts
from onnx import numpy_helper

from flexiq_trt.errors import FlexiqInternalError
from flexiq_trt.graph_passes.replace_layers import write_flexiq_model
from flexiq_trt.plugin_spec import (
    CONV_OP,
    GEMM_OP,
    PLUGIN_DOMAIN,
    PLUGIN_NAMESPACE,
    PLUGIN_VERSION,
    RUNTIME_INPUT,
    FieldKind,
    ShiftMode,
    fields_for,
)
from flexiq_trt.quantization import bits

KIND_TYPES = {
    FieldKind.INT: (onnx.AttributeProto.INT, None), FieldKind.FLOAT: (onnx.AttributeProto.FLOAT, None),
    FieldKind.INTS: (onnx.AttributeProto.INTS, None),
    FieldKind.TENSOR_INT8: (onnx.AttributeProto.TENSOR, onnx.TensorProto.INT8),
    FieldKind.TENSOR_INT32: (onnx.AttributeProto.TENSOR, onnx.TensorProto.INT32),
    FieldKind.TENSOR_FLOAT32: (onnx.AttributeProto.TENSOR, onnx.TensorProto.FLOAT),
}


def _length(formula: str, n: int, k: int, cp: int, gc: int) -> int:
    r_g_count = -(-n // 32)  # reader_group_size is 32 unless the output is a workspace edge (off here)
    return int(eval(formula, {}, {"N": n, "K": k, "C_pad": cp, "G_count": gc,  # noqa: S307 (spec formulas)
                                  "R_G_count": r_g_count}))


def _write(model, group_size=32):
    prepared, eligible = eligible_of(model, group_size)
    pairs = [(e, random_quantized(e, i, group_size, not e.input_nonnegative, ShiftMode.DYNAMIC, i))
             for i, e in enumerate(eligible)]
    return prepared, pairs, write_flexiq_model(prepared, pairs, {"flexiq": {"L": len(pairs)}, "note": "x"})


@pytest.mark.parametrize("builder,op", [(M.residual_block, CONV_OP), (M.mlp, GEMM_OP), (M.gemm_transb, GEMM_OP),
                                        (M.conv_geometry, CONV_OP)])
def test_fields_kinds_lengths(builder, op):
    _, pairs, model = _write(builder())
    onnx.checker.check_model(model)
    nodes = [n for n in model.graph.node if n.domain == PLUGIN_DOMAIN]
    assert len(nodes) == len(pairs) > 0
    for node, (el, ql) in zip(sorted(nodes, key=lambda n: n.name), sorted(pairs, key=lambda p: p[0].name),
                              strict=True):
        assert node.op_type == op and node.name == el.name
        assert list(node.input) == [el.input_name, RUNTIME_INPUT] and list(node.output) == [el.output_name]
        attrs = {a.name: a for a in node.attribute}
        assert attrs["plugin_version"].s.decode() == PLUGIN_VERSION
        assert attrs["plugin_namespace"].s.decode() == PLUGIN_NAMESPACE
        spec = fields_for(op)
        assert set(attrs) == {f.name for f in spec} | {"plugin_version", "plugin_namespace"}
        n, k, cp, gc = ql.out_channels, ql.reduction_length, ql.padded_channels, ql.group_count
        for f in spec:
            a = attrs[f.name]
            attr_type, elem = KIND_TYPES[f.kind]
            assert a.type == attr_type, f.name
            if elem is not None:
                assert a.t.data_type == elem, f.name
                assert int(np.prod(a.t.dims)) == _length(f.length, n, k, cp, gc), f.name
            elif f.kind == FieldKind.INTS:
                assert len(a.ints) == int(f.length), f.name


def test_weight_round_trip_and_scalars():
    _, pairs, model = _write(M.conv_geometry())
    (el, ql), = pairs
    node = next(n for n in model.graph.node if n.op_type == CONV_OP)
    a = {x.name: onnx.helper.get_attribute_value(x) for x in node.attribute}
    n = ql.out_channels
    w8 = numpy_helper.to_array(a["weight_int8"])
    w4 = bits.unpack_int4(numpy_helper.to_array(a["weight_int4"]))
    np.testing.assert_array_equal(w8.reshape(ql.weight_int8.shape), ql.weight_int8)
    np.testing.assert_array_equal(w8.reshape(n, -1)[:, : ql.padded_channels], ql.weight_int8[:, 0, 0, :])
    np.testing.assert_array_equal(w4.reshape(ql.weight_int4.shape), ql.weight_int4)
    np.testing.assert_array_equal(numpy_helper.to_array(a["permutation"]), ql.permutation)
    np.testing.assert_array_equal(numpy_helper.to_array(a["weight_step"]), ql.weight_step)
    np.testing.assert_array_equal(numpy_helper.to_array(a["weight_scale"]), ql.weight_scale)
    bias = numpy_helper.to_array(a["bias"])  # [G_count + 1, N], rung-major; row 0 is the INT8 bias
    assert bias.shape == (ql.group_count + 1, n)
    np.testing.assert_array_equal(bias, ql.bias_table())
    np.testing.assert_array_equal(bias[0], ql.bias)
    assert a["layer_index"] == 0 and a["group_size"] == 32 and a["in_channels"] == 64
    assert a["act_scale"] == pytest.approx(ql.act_scale, rel=1e-7)
    assert list(a["pads"]) == list(el.geometry.pads) and list(a["dilations"]) == [1, 2]
    assert list(a["strides"]) == [2, 1] and list(a["kernel_shape"]) == [3, 3]


def test_graph_input_opset_metadata_and_counts():
    prepared, pairs, model = _write(M.residual_block())
    rt = next(i for i in model.graph.input if i.name == RUNTIME_INPUT)
    assert rt.type.tensor_type.elem_type == onnx.TensorProto.INT32
    assert [d.dim_value for d in rt.type.tensor_type.shape.dim] == [2]
    assert any(o.domain == PLUGIN_DOMAIN for o in model.opset_import)
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["flexiq"]) == {"L": 2} and props["note"] == "x"
    assert_op_counts(model, {CONV_OP: 2, "Conv": 0, "Relu": 2, "Add": 1})
    assert not any(t.name.startswith("w") for t in model.graph.initializer)  # float weights dropped


def test_mlp_fuses_bias_and_activation():
    _, _, model = _write(M.mlp())
    assert_op_counts(model, {GEMM_OP: 2, "MatMul": 0, "Add": 0, "Relu": 0})


def test_bad_layer_index_rejected():
    prepared, eligible = eligible_of(M.residual_block(), 32)
    pairs = [(e, random_quantized(e, 5, 32, True, ShiftMode.DYNAMIC, 0)) for e in eligible[:1]]
    with pytest.raises(FlexiqInternalError, match="layer_index"):
        write_flexiq_model(prepared, pairs, {})
