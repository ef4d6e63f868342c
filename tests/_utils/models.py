"""Tiny ONNX model builders for the intake and graph-pass tests (deterministic weights)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _w(rng: np.random.Generator, *shape: int, scale: float = 0.1) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def make_model(nodes, inputs, outputs, inits=(), opset: int = OPSET, name: str = "g") -> onnx.ModelProto:
    """Assemble and check a model; `inits` are (name, array) pairs."""
    graph = helper.make_graph(list(nodes), name, list(inputs), list(outputs),
                              [numpy_helper.from_array(a, n) for n, a in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset < 21 else 10
    _fill_output_shapes(model)
    onnx.checker.check_model(model)
    return model


def _fill_output_shapes(model: onnx.ModelProto) -> None:
    """Outputs declared without a shape get the inferred one (the checker requires a shape field)."""
    missing = [o for o in model.graph.output if not o.type.tensor_type.HasField("shape")]
    if not missing:
        return
    inferred = onnx.shape_inference.infer_shapes(model)
    known = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for out in missing:
        src = known.get(out.name)
        if src is not None and src.type.tensor_type.HasField("shape"):
            out.type.tensor_type.shape.CopyFrom(src.type.tensor_type.shape)
        else:
            out.type.tensor_type.shape.SetInParent()


def vinfo(name: str, shape, dtype=TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def conv_bn_relu(c_in: int = 64, c_out: int = 32, hw: int | str = 8, seed: int = 0, batch="N") -> onnx.ModelProto:
    """Conv(3x3, pad 1) -> BatchNormalization -> Relu."""
    rng = _rng(seed)
    inits = [("w", _w(rng, c_out, c_in, 3, 3)), ("b", _w(rng, c_out)),
             ("gamma", (1 + _w(rng, c_out)).astype(np.float32)), ("beta", _w(rng, c_out)),
             ("mean", _w(rng, c_out)), ("var", (0.5 + np.abs(_w(rng, c_out))).astype(np.float32))]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["bn"], name="bn",
                              epsilon=1e-3),
             helper.make_node("Relu", ["bn"], ["y"], name="relu")]
    return make_model(nodes, [vinfo("x", [batch, c_in, hw, hw])], [vinfo("y", None)], inits)


def residual_block(c: int = 64, hw: int = 8, seed: int = 1) -> onnx.ModelProto:
    """relu(x) -> conv1x1 -> relu -> conv3x3 -> add(relu(x)) -> relu (unnamed nodes, Constant weights)."""
    rng = _rng(seed)
    nodes = [helper.make_node("Relu", ["x"], ["r0"]),
             helper.make_node("Constant", [], ["w1"], value=numpy_helper.from_array(_w(rng, c, c, 1, 1))),
             helper.make_node("Conv", ["r0", "w1"], ["c1"]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c2", "r0"], ["s"]),
             helper.make_node("Relu", ["s"], ["y"])]
    return make_model(nodes, [vinfo("x", [1, c, hw, hw])], [vinfo("y", [1, c, hw, hw])],
                      [("w2", _w(rng, c, c, 3, 3))])


def depthwise_only(c: int = 32, hw: int = 8, seed: int = 2) -> onnx.ModelProto:
    """A single depthwise 3x3 conv (group == C): nothing eligible."""
    rng = _rng(seed)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="dw", group=c, pads=[1, 1, 1, 1])]
    return make_model(nodes, [vinfo("x", [1, c, hw, hw])], [vinfo("y", None)], [("w", _w(rng, c, 1, 3, 3))])


def mlp(k: int = 64, hidden: int = 96, n: int = 40, tokens: int = 5, seed: int = 3,
        activation: str = "Relu") -> onnx.ModelProto:
    """[1, T, K] -> MatMul + Add(bias) -> activation -> MatMul + Add(bias)."""
    rng = _rng(seed)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["m1"], name="fc1"),
             helper.make_node("Add", ["m1", "b1"], ["a1"], name="fc1_bias"),
             helper.make_node(activation, ["a1"], ["h"], name="act"),
             helper.make_node("MatMul", ["h", "w2"], ["m2"], name="fc2"),
             helper.make_node("Add", ["b2", "m2"], ["y"], name="fc2_bias")]
    inits = [("w1", _w(rng, k, hidden)), ("b1", _w(rng, hidden)), ("w2", _w(rng, hidden, n)), ("b2", _w(rng, n))]
    return make_model(nodes, [vinfo("x", [1, tokens, k])], [vinfo("y", None)], inits)


def gemm_transb(k: int = 64, n: int = 24, batch: int = 2, alpha: float = 0.5, beta: float = 2.0,
                seed: int = 4) -> onnx.ModelProto:
    """Gemm(transB=1, alpha, beta) with a [N] bias."""
    rng = _rng(seed)
    nodes = [helper.make_node("Gemm", ["x", "w", "c"], ["y"], name="gemm", transB=1, alpha=alpha, beta=beta)]
    return make_model(nodes, [vinfo("x", [batch, k])], [vinfo("y", [batch, n])],
                      [("w", _w(rng, n, k)), ("c", _w(rng, n))])


def conv_geometry(c_in: int = 64, c_out: int = 16, hw: int = 11, kernel: int = 3, strides=(2, 1),
                  pads=(1, 0, 2, 1), dilations=(1, 2), auto_pad: str | None = None, seed: int = 5) -> onnx.ModelProto:
    """One conv with explicit (or auto) padding, stride and dilation."""
    rng = _rng(seed)
    kw = dict(strides=list(strides), dilations=list(dilations))
    if auto_pad:
        kw["auto_pad"] = auto_pad
    else:
        kw["pads"] = list(pads)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", **kw)]
    return make_model(nodes, [vinfo("x", [1, c_in, hw, hw])], [vinfo("y", None)],
                      [("w", _w(rng, c_out, c_in, kernel, kernel)), ("b", _w(rng, c_out))])


def conv_then(activation_nodes, c_in: int = 64, c_out: int = 16, hw: int = 6, extra_inits=(),
              seed: int = 6, opset: int = OPSET) -> onnx.ModelProto:
    """Conv writing 'c', followed by the given nodes that must end in tensor 'y'."""
    rng = _rng(seed)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1])] + list(activation_nodes)
    return make_model(nodes, [vinfo("x", [1, c_in, hw, hw])], [vinfo("y", None)],
                      [("w", _w(rng, c_out, c_in, 3, 3))] + list(extra_inits), opset=opset)


def conv_integer_model() -> onnx.ModelProto:
    """An already-quantized model (ConvInteger)."""
    nodes = [helper.make_node("ConvInteger", ["x", "w"], ["y"], name="qconv")]
    return make_model(nodes, [vinfo("x", [1, 4, 5, 5], TensorProto.UINT8)], [vinfo("y", None, TensorProto.INT32)],
                      [("w", np.ones((2, 4, 1, 1), dtype=np.uint8))])


def old_opset_conv(c_in: int = 32, seed: int = 7) -> onnx.ModelProto:
    """Opset 8 Conv -> Clip(attr min/max) model (converted up to 13 by intake)."""
    rng = _rng(seed)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Clip", ["c"], ["y"], name="clip", min=0.0, max=6.0)]
    return make_model(nodes, [vinfo("x", [1, c_in, 4, 4])], [vinfo("y", None)],
                      [("w", _w(rng, 8, c_in, 1, 1))], opset=8)


def ir3_gemm(k: int = 64, n: int = 40, seed: int = 8) -> onnx.ModelProto:
    """An IR-version-3 model (as the ONNX zoo's opset-8 exports are): every initializer is a graph input too."""
    rng = _rng(seed)
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["h"], name="fc", transB=1),
             helper.make_node("Relu", ["h"], ["y"], name="relu")]
    inits = [("w", _w(rng, n, k)), ("b", _w(rng, n))]
    graph = helper.make_graph(nodes, "ir3", [vinfo("x", [2, k]), vinfo("w", [n, k]), vinfo("b", [n])],
                              [vinfo("y", [2, n])], [numpy_helper.from_array(a, name) for name, a in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 3
    onnx.checker.check_model(model)
    return model


def matmul_then(activation_nodes, k: int = 64, n: int = 24, lead=(1, 5), bias: bool = True, extra_inits=(),
                seed: int = 8, opset: int = OPSET) -> onnx.ModelProto:
    """MatMul (input [*lead, K]) [+ Add bias] writing 'c', then nodes ending in tensor 'y'."""
    rng = _rng(seed)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m" if bias else "c"], name="fc")]
    inits = [("w", _w(rng, k, n))]
    if bias:
        nodes.append(helper.make_node("Add", ["m", "b"], ["c"], name="fc_bias"))
        inits.append(("b", _w(rng, n)))
    return make_model(nodes + list(activation_nodes), [vinfo("x", [*lead, k])], [vinfo("y", None)],
                      inits + list(extra_inits), opset=opset)


ACTIVATION_NODES = {
    # name -> (nodes reading 'c' and writing 'y', extra initializers)
    "none": ([helper.make_node("Identity", ["c"], ["y"], name="id")], []),
    "relu": ([helper.make_node("Relu", ["c"], ["y"], name="act")], []),
    "clip": ([helper.make_node("Clip", ["c", "lo", "hi"], ["y"], name="act")],
             [("lo", np.array(-0.5, np.float32)), ("hi", np.array(6.0, np.float32))]),
    "hardswish": ([helper.make_node("HardSwish", ["c"], ["y"], name="act")], []),
    "silu": ([helper.make_node("Sigmoid", ["c"], ["s"], name="sig"),
              helper.make_node("Mul", ["c", "s"], ["y"], name="mul")], []),
    "sigmoid": ([helper.make_node("Sigmoid", ["c"], ["y"], name="act")], []),
    "leakyrelu": ([helper.make_node("LeakyRelu", ["c"], ["y"], name="act", alpha=0.1)], []),
    "hardsigmoid": ([helper.make_node("HardSigmoid", ["c"], ["y"], name="act", alpha=0.25, beta=0.4)], []),
    "tanh": ([helper.make_node("Tanh", ["c"], ["y"], name="act")], []),
    "gelu": ([helper.make_node("Gelu", ["c"], ["y"], name="act")], []),
    # GELU as torch.onnx writes it before opset 20, both multiplication orders
    "gelu_erf": ([helper.make_node("Div", ["c", "sqrt2"], ["d"], name="div"),
                  helper.make_node("Erf", ["d"], ["e"], name="erf"),
                  helper.make_node("Add", ["e", "one"], ["e1"], name="add1"),
                  helper.make_node("Mul", ["c", "e1"], ["ce1"], name="mul"),
                  helper.make_node("Mul", ["ce1", "half"], ["y"], name="half")],
                 [("sqrt2", np.array(1.4142135381698608, np.float32)), ("one", np.array(1.0, np.float32)),
                  ("half", np.array(0.5, np.float32))]),
    "gelu_erf_half_first": ([helper.make_node("Mul", ["c", "rsqrt2"], ["d"], name="scale"),
                             helper.make_node("Erf", ["d"], ["e"], name="erf"),
                             helper.make_node("Add", ["one", "e"], ["e1"], name="add1"),
                             helper.make_node("Mul", ["c", "half"], ["h"], name="half"),
                             helper.make_node("Mul", ["h", "e1"], ["y"], name="mul")],
                            [("rsqrt2", np.array(0.7071067690849304, np.float32)),
                             ("one", np.array(1.0, np.float32)), ("half", np.array(0.5, np.float32))]),
}
ACTIVATION_OPSET = 20  # HardSwish needs 14, Gelu 20
