"""INT8 edges (graph_passes/int8_edges.py, docs/design.md §2.8): which plugin outputs carry codes, and the fields."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from _gp_helpers import eligible_of, random_quantized
from _utils import models as M
from onnx import TensorProto, helper, numpy_helper

from flexiq_trt.graph_passes.int8_edges import CodeFormat, find_int8_edges
from flexiq_trt.graph_passes.replace_layers import write_flexiq_model
from flexiq_trt.plugin_spec import GEMM_OP, PLUGIN_OPS, ShiftMode
from flexiq_trt.quantization import bits

G = 32


def _chain(reader_after_first: str = "conv", fan_out: bool = False) -> onnx.ModelProto:
    """x -> conv0+relu -> {conv1+relu [, conv1b]} -> conv2 -> y, or a MaxPool between conv0 and conv1."""
    rng = np.random.default_rng(0)
    w = {f"w{i}": (rng.standard_normal((64, 64, 3, 3)) * 0.05).astype(np.float32) for i in range(4)}
    nodes = [helper.make_node("Conv", ["x", "w0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c0"], ["r0"], name="relu0")]
    first_reader_input = "r0"
    if reader_after_first == "maxpool":
        nodes.append(helper.make_node("MaxPool", ["r0"], ["p0"], name="pool", kernel_shape=[1, 1]))
        first_reader_input = "p0"
    nodes += [helper.make_node("Conv", [first_reader_input, "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
              helper.make_node("Relu", ["c1"], ["r1"], name="relu1")]
    tail = "r1"
    if fan_out:
        nodes += [helper.make_node("Conv", [first_reader_input, "w3"], ["c1b"], name="conv1b", pads=[1, 1, 1, 1]),
                  helper.make_node("Add", ["r1", "c1b"], ["sum"], name="add")]
        tail = "sum"
    nodes.append(helper.make_node("Conv", [tail, "w2"], ["y"], name="conv2", pads=[1, 1, 1, 1]))
    return M.make_model(nodes, [M.vinfo("x", ["N", 64, 6, 6])], [M.vinfo("y", None)], list(w.items()))


def _pairs(model, same_scale: bool = False):
    prepared, eligible = eligible_of(model, G)
    pairs = [(e, random_quantized(e, i, G, not e.input_nonnegative, ShiftMode.DYNAMIC, i))
             for i, e in enumerate(eligible)]
    if same_scale:
        pairs = [(e, dataclasses.replace(q, act_scale=0.01, act_signed=False) if e.name != "conv0" else q)
                 for e, q in pairs]
    return prepared, pairs


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def test_a_chain_of_plugin_layers_exchanges_the_readers_codes() -> None:
    prepared, pairs = _pairs(_chain())
    edges = find_int8_edges(prepared, pairs)
    by_name = {e.name: q for e, q in pairs}
    assert edges["conv0"].output == CodeFormat(float(np.float32(by_name["conv1"].act_scale)),
                                               bool(by_name["conv1"].act_signed))
    assert edges["conv1"].output == CodeFormat(float(np.float32(by_name["conv2"].act_scale)),
                                               bool(by_name["conv2"].act_signed))
    assert edges["conv2"].output is None, "a graph output stays float"
    assert [edges[n].input_int8 for n in ("conv0", "conv1", "conv2")] == [False, True, True]

    model = write_flexiq_model(prepared, pairs)
    nodes = {n.name: _attrs(n) for n in model.graph.node if n.op_type in PLUGIN_OPS}
    assert nodes["conv0"]["output_int8"] == 1 and nodes["conv1"]["input_int8"] == 1
    assert np.float32(nodes["conv0"]["output_scale"]) == np.float32(nodes["conv1"]["act_scale"])
    assert nodes["conv0"]["output_signed"] == nodes["conv1"]["act_signed"]
    assert nodes["conv2"]["output_int8"] == 0 and nodes["conv2"]["output_scale"] == 1.0
    assert nodes["conv0"]["input_int8"] == 0
    types = {v.name: v.type.tensor_type.elem_type for v in model.graph.value_info}
    edge_tensors = [n.output[0] for n in model.graph.node if n.name in ("conv0", "conv1")]
    assert all(types[t] == TensorProto.INT8 for t in edge_tensors)


def test_int8_edges_off_writes_float_io_everywhere() -> None:
    prepared, pairs = _pairs(_chain())
    model = write_flexiq_model(prepared, pairs, int8_edges=False)
    for node in model.graph.node:
        if node.op_type in PLUGIN_OPS:
            assert _attrs(node)["input_int8"] == 0 and _attrs(node)["output_int8"] == 0


def test_a_non_plugin_reader_keeps_the_tensor_float() -> None:
    prepared, pairs = _pairs(_chain("maxpool"))
    edges = find_int8_edges(prepared, pairs)
    assert edges["conv0"].output is None and not edges["conv1"].input_int8
    assert edges["conv1"].output is not None, "conv1 -> conv2 is still a plugin-to-plugin edge"


@pytest.mark.parametrize("same_scale", [False, True])
def test_fan_out_needs_one_quantizer_for_every_reader(same_scale: bool) -> None:
    prepared, pairs = _pairs(_chain(fan_out=True), same_scale=same_scale)
    edges = find_int8_edges(prepared, pairs)
    assert (edges["conv0"].output is not None) == same_scale
    assert edges["conv1"].input_int8 == edges["conv1b"].input_int8 == same_scale
    assert edges["conv1"].output is None, "conv1's output is read by an Add"


def _edge_invariants(model: onnx.ModelProto) -> tuple[int, int]:
    """Every INT8 output is read only by plugin layers that read codes with that quantizer, and back."""
    plugins = {n.output[0]: n for n in model.graph.node if n.op_type in PLUGIN_OPS}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for name in n.input:
            readers.setdefault(name, []).append(n)
    outs = ins = 0
    for tensor, node in plugins.items():
        a = _attrs(node)
        if a["output_int8"]:
            outs += 1
            assert readers.get(tensor), f"{node.name}: INT8 output read by nobody"
            for r in readers[tensor]:
                ra = _attrs(r) if r.op_type in PLUGIN_OPS else {}
                assert ra.get("input_int8") == 1, f"{node.name} -> {r.name} ({r.op_type}) is not an INT8 reader"
                assert np.float32(ra["act_scale"]) == np.float32(a["output_scale"])
                assert ra["act_signed"] == a["output_signed"]
        if a["input_int8"]:
            ins += 1
            producer = plugins.get(node.input[0])
            assert producer is not None and _attrs(producer)["output_int8"] == 1, node.name
    return outs, ins


@pytest.mark.parametrize("model_name", ["fmnist_resnet", "pplcnet_orientation"])
def test_real_conversions_keep_the_edge_invariants(real_conversions, model_name: str) -> None:
    """On the session's real conversions: the edges are consistent, and a ResNet has some."""
    model = onnx.load(str(real_conversions[model_name]["flexiq_onnx"]))
    outs, ins = _edge_invariants(model)
    if model_name == "fmnist_resnet":  # conv -> relu -> conv inside its residual blocks
        assert outs >= 1 and ins >= outs


# ---- workspace edges: one reader of the producer's kind gets its input-pass image ----------------------


def test_workspace_edges_mark_single_reader_edges_and_permute_the_producer() -> None:
    prepared, pairs = _pairs(_chain())
    edges = find_int8_edges(prepared, pairs, workspace=True)
    by_name = {e.name: q for e, q in pairs}
    assert edges["conv0"].reader is not None and edges["conv0"].reader.layer_index == by_name["conv1"].layer_index
    assert edges["conv1"].reader is not None and edges["conv1"].input_workspace
    assert edges["conv2"].input_workspace and edges["conv2"].reader is None, "a graph output stays float"
    assert not edges["conv0"].input_workspace

    model = write_flexiq_model(prepared, pairs, workspace_edges=True)
    nodes = {n.name: _attrs(n) for n in model.graph.node if n.op_type in PLUGIN_OPS}
    assert (nodes["conv0"]["output_int8"], nodes["conv1"]["input_int8"], nodes["conv1"]["output_int8"],
            nodes["conv2"]["input_int8"], nodes["conv2"]["output_int8"]) == (2, 2, 2, 2, 0)
    for producer, reader in (("conv0", "conv1"), ("conv1", "conv2")):
        p, q_p, q_r = nodes[producer], by_name[producer], by_name[reader]
        assert nodes[reader]["input_int8"] == 2
        assert p["reader_layer_index"] == q_r.layer_index and p["reader_group_size"] == q_r.group_size
        assert p["reader_act_shift_mode"] == int(q_r.act_shift_mode)
        np.testing.assert_array_equal(numpy_helper.to_array(p["reader_act_static_shift"]), q_r.act_static_shift)
        # Output channel j of the producer is the reader's permuted channel pi_r[j].
        n = q_p.out_channels
        order = np.asarray(q_r.permutation[:n])
        w8 = numpy_helper.to_array(p["weight_int8"]).reshape(n, -1)
        np.testing.assert_array_equal(w8, q_p.weight_int8.reshape(n, -1)[order])
        np.testing.assert_array_equal(numpy_helper.to_array(p["weight_step"]), q_p.weight_step)  # per group
        np.testing.assert_array_equal(numpy_helper.to_array(p["weight_scale"]), q_p.weight_scale[order])
        np.testing.assert_array_equal(numpy_helper.to_array(p["bias"]).reshape(-1, n), q_p.bias_table()[:, order])
        w4 = numpy_helper.to_array(p["weight_int4"]).reshape(n, -1)
        np.testing.assert_array_equal(w4, bits.pack_int4(q_p.weight_int4.reshape(n, -1)[order]))
        assert not np.array_equal(order, np.arange(n)), "the test permutation is not the identity"
    # The reader keeps its own fields (its weights are already in its pi order).
    np.testing.assert_array_equal(numpy_helper.to_array(nodes["conv2"]["weight_int8"]).ravel(),
                                  by_name["conv2"].weight_int8.reshape(-1))


def test_workspace_edges_leave_fan_out_and_mixed_kinds_as_codes() -> None:
    prepared, pairs = _pairs(_chain(fan_out=True), same_scale=True)
    edges = find_int8_edges(prepared, pairs, workspace=True)
    assert edges["conv0"].output is not None and edges["conv0"].reader is None, "two readers: codes, not workspace"
    assert not edges["conv1"].input_workspace and not edges["conv1b"].input_workspace
    # A gemm reading a conv's output (or the other way) has other rows: never a workspace edge.
    prepared, pairs = _pairs(_chain())
    as_gemm = [(e, dataclasses.replace(q, op_type=GEMM_OP, geometry=None) if e.name == "conv1" else q)
               for e, q in pairs]
    edges = find_int8_edges(prepared, as_gemm, workspace=True)
    assert edges["conv0"].output is not None and edges["conv0"].reader is None
    assert edges["conv1"].reader is None and not edges["conv2"].input_workspace


def test_workspace_edges_off_by_default() -> None:
    prepared, pairs = _pairs(_chain())
    assert all(e.reader is None and not e.input_workspace for e in find_int8_edges(prepared, pairs).values())
    nodes = {n.name: _attrs(n) for n in write_flexiq_model(prepared, pairs).graph.node if n.op_type in PLUGIN_OPS}
    assert max(a["output_int8"] for a in nodes.values()) == 1 and max(a["input_int8"] for a in nodes.values()) == 1
    assert all(a["reader_group_size"] == 32 and a["reader_layer_index"] == 0 for a in nodes.values())
