"""THE key cross-check: the simulation ONNX run in ORT equals quantization.reference bit for bit.

Accumulators (exposed with debug_outputs=True) must be identical. Float outputs: the epilogue is
float(acc) * out_scale + bias in the same float32 op order as the reference, then the activation.
Tolerance |sim - ref| <= 1e-6 * |ref| + 1e-6 * max(1, max|ref|): about 8 float32 ulps, enough for
ORT's vectorised exp/tanh/erf differing from NumPy/libm by a few ulps, and far below one
accumulator step in these layers (out_scale >= 5e-7 * ... the int32 part is checked exactly anyway).
Affine epilogues (none/relu/clip/leaky/hard-*) are also checked to be within that bound.
"""

from __future__ import annotations

import numpy as np
import pytest
from _gp_helpers import eligible_of, random_input, random_quantized, session
from _utils import models as M

from flexiq_trt.graph_passes.simulate_layers import acc_output_name, write_simulation_model
from flexiq_trt.intake import find_layers, prepare_model
from flexiq_trt.plugin_spec import RUNTIME_INPUT, ShiftMode, mask_input_name
from flexiq_trt.quantization import reference
from flexiq_trt.quantization.layer import QuantizedLayer

LAYER_KINDS = {
    "conv1x1": lambda: M.conv_geometry(c_in=64, c_out=24, hw=6, kernel=1, strides=(1, 1), pads=(0, 0, 0, 0),
                                       dilations=(1, 1)),
    "conv1x1_10x10": lambda: M.conv_geometry(c_in=64, c_out=24, hw=10, kernel=1, strides=(1, 1), pads=(0, 0, 0, 0),
                                             dilations=(1, 1)),  # > HALVES_MAX_POSITIONS: weights picked per run
    "conv3x3_s2_pad_dil": lambda: M.conv_geometry(c_in=80, c_out=16, hw=9, kernel=3, strides=(2, 1),
                                                  pads=(1, 0, 2, 1), dilations=(1, 2)),
    "gemm2d_transb": lambda: M.gemm_transb(k=72, n=20, batch=3),
    "matmul3d": lambda: M.matmul_then(M.ACTIVATION_NODES["none"][0], k=100, n=28, lead=(2, 5)),
}


def n4_values(cp: int, g: int) -> list[int]:
    """0, one group, half (not always a multiple of G), all but one group, all, and out-of-range values."""
    return [0, g, cp // 2, cp - g, cp, cp + 3 * g, -5, 2**31 - 1]


def input_shape(model) -> tuple[int, ...]:
    """The static shape of graph input 0 (dynamic dims -> 2)."""
    return tuple(d.dim_value or 2 for d in model.graph.input[0].type.tensor_type.shape.dim)


def check_close(y: np.ndarray, ref: np.ndarray) -> None:
    atol = 1e-6 * max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=atol)


def run_and_compare(model, group_size: int, signed: bool, shift_mode: ShiftMode, seed: int,
                    float_exact: bool = False) -> None:
    prepared, eligible = eligible_of(model, group_size)
    assert len(eligible) == 1
    el = eligible[0]
    ql = random_quantized(el, 0, group_size, signed, shift_mode, seed)
    sim = write_simulation_model(prepared, [(el, ql)], {}, debug_outputs=True, float_exact=float_exact)
    sess = session(sim)
    out_name = sim.graph.output[0].name
    x = random_input(input_shape(prepared), el.is_conv, signed, seed)
    seen_4bit_change = False
    for n4 in n4_values(ql.padded_channels, group_size):
        acc, y = sess.run([acc_output_name(el.output_name), out_name],
                          {"x": x, RUNTIME_INPUT: np.array([n4], np.int32)})
        ref_acc, ref_y = reference.layer_forward(ql, x, n4)
        np.testing.assert_array_equal(acc, ref_acc, err_msg=f"int32 accumulator differs at n4={n4}")
        check_close(y, ref_y)
        if n4 == group_size:
            seen_4bit_change = not np.array_equal(acc, reference.layer_forward(ql, x, 0)[0])
    assert seen_4bit_change, "one 4-bit group did not change the accumulator: the test is too weak"


@pytest.mark.parametrize("kind", sorted(LAYER_KINDS))
@pytest.mark.parametrize("group_size", [32, 64])
@pytest.mark.parametrize("signed", [True, False], ids=["s8", "u8"])
@pytest.mark.parametrize("shift_mode", [ShiftMode.DYNAMIC, ShiftMode.STATIC], ids=["dyn", "static"])
def test_sim_matches_reference(kind, group_size, signed, shift_mode):
    seed = hash((kind, group_size, signed, int(shift_mode))) % 1000
    run_and_compare(LAYER_KINDS[kind](), group_size, signed, shift_mode, seed)


@pytest.mark.parametrize("activation", sorted(M.ACTIVATION_NODES))
@pytest.mark.parametrize("layer", ["conv", "matmul"])
def test_sim_matches_reference_each_activation(activation, layer):
    nodes, inits = M.ACTIVATION_NODES[activation]
    if layer == "conv":
        model = M.conv_then(nodes, extra_inits=inits, opset=M.ACTIVATION_OPSET)
    else:
        model = M.matmul_then(nodes, extra_inits=inits, opset=M.ACTIVATION_OPSET)
    run_and_compare(model, 32, activation != "tanh", ShiftMode.DYNAMIC, seed=len(activation))


def test_hand_worked_group_example():
    """docs/design.md §2.5 example: codes [41, -23, 6, -1] -> step 6, effective [42, -24, 6, 0], through the sim graph."""
    prepared, (el,) = eligible_of(M.matmul_then(M.ACTIVATION_NODES["none"][0], k=32, n=32, lead=(1, 1),
                                                bias=False), 32)
    ql = random_quantized(el, 0, 32, True, ShiftMode.DYNAMIC, 0)
    ql.permutation[:] = np.arange(32)
    ql.act_scale = 1.0
    ql.weight_int8[:] = 0
    ql.weight_int4[:] = 0
    ql.weight_step[:] = 1
    ql.weight_int4[np.arange(32), np.arange(32)] = 1  # identity weights: acc = effective codes
    ql.weight_int8[np.arange(32), np.arange(32)] = 1
    ql.bias[:] = 0
    sim = write_simulation_model(prepared, [(el, ql)], {}, debug_outputs=True)
    x = np.zeros((1, 1, 32), np.float32)
    x[0, 0, :4] = [41, -23, 6, -1]
    sess = session(sim)
    acc4 = sess.run([acc_output_name(el.output_name)], {"x": x, RUNTIME_INPUT: np.array([32], np.int32)})[0]
    acc8 = sess.run([acc_output_name(el.output_name)], {"x": x, RUNTIME_INPUT: np.array([0], np.int32)})[0]
    assert acc4[0, 0, :4].tolist() == [42, -24, 6, 0]
    assert acc8[0, 0, :4].tolist() == [41, -23, 6, -1]


@pytest.mark.parametrize("signed", [True, False], ids=["s8", "u8"])
@pytest.mark.parametrize("float_exact", [False, True], ids=["integer", "float_exact"])
def test_every_code_at_every_shift(signed, float_exact):
    """Every 8-bit code through the 4-bit rounding at each static shift p = 0..4 (identity weights: acc = the
    effective codes): the magic-number adds round halves up and clip exactly as the reference (docs/design.md §2)."""
    codes = np.arange(-127, 128) if signed else np.arange(256)
    rows = -(-codes.size // 32)
    prepared, (el,) = eligible_of(M.matmul_then(M.ACTIVATION_NODES["none"][0], k=32, n=32, lead=(1, rows),
                                                bias=False), 32)
    ql = random_quantized(el, 0, 32, signed, ShiftMode.STATIC, 0)
    ql.act_scale = 1.0
    ql.weight_int8[:] = 0
    ql.weight_int4[:] = 0
    ql.weight_step[:] = 1
    ql.weight_int8[np.arange(32), np.arange(32)] = 1
    ql.weight_int4[np.arange(32), np.arange(32)] = 1
    ql.bias[:] = 0
    x = np.resize(codes, rows * 32).astype(np.float32).reshape(1, rows, 32)
    for p in range(5):
        ql.act_static_shift[:] = p
        sim = write_simulation_model(prepared, [(el, ql)], {}, debug_outputs=True, float_exact=float_exact)
        sess = session(sim)
        for n4 in (0, 32):
            acc = sess.run([acc_output_name(el.output_name)], {"x": x, RUNTIME_INPUT: np.array([n4], np.int32)})[0]
            np.testing.assert_array_equal(acc, reference.layer_forward(ql, x, n4)[0], err_msg=f"p={p} n4={n4}")
        assert len(np.unique(acc)) < codes.size or p == 0  # 4-bit at p > 0 merges codes: the check saw rounding


def _groups_first(ql: QuantizedLayer, order: np.ndarray) -> QuantizedLayer:
    """The same layer with its groups reordered (group `order[0]` first), for the mask-mode oracle."""
    g = ql.group_size
    ch = (order[:, None] * g + np.arange(g)[None, :]).reshape(-1)
    return QuantizedLayer(
        name=ql.name, op_type=ql.op_type, layer_index=ql.layer_index, group_size=g, in_channels=ql.in_channels,
        out_channels=ql.out_channels, permutation=ql.permutation[ch], act_scale=ql.act_scale,
        act_signed=ql.act_signed, act_shift_mode=ql.act_shift_mode, act_static_shift=ql.act_static_shift[order],
        weight_int8=ql.weight_int8[..., ch], weight_int4=ql.weight_int4[..., ch],
        weight_step=ql.weight_step[order], weight_scale=ql.weight_scale, bias=ql.bias,
        activation=ql.activation, activation_alpha=ql.activation_alpha, activation_beta=ql.activation_beta,
        geometry=ql.geometry)


@pytest.mark.parametrize("kind", ["conv3x3_s2_pad_dil", "matmul3d", "gemm2d_transb"])
@pytest.mark.parametrize("shift_mode", [ShiftMode.DYNAMIC, ShiftMode.STATIC], ids=["dyn", "static"])
def test_mask_mode_matches_reference(kind, shift_mode):
    """Mask mode with an arbitrary group set equals the prefix reference of the regrouped layer."""
    prepared, (el,) = eligible_of(LAYER_KINDS[kind](), 32)
    ql = random_quantized(el, 0, 32, True, shift_mode, 7)
    sim = write_simulation_model(prepared, [(el, ql)], {}, mode="mask", debug_outputs=True,
                                 float_exact=kind == "gemm2d_transb")  # the 2-D layers' constant-weight form
    assert RUNTIME_INPUT not in {i.name for i in sim.graph.input}
    sess = session(sim)
    x = random_input(input_shape(prepared), el.is_conv, True, 3)
    rng = np.random.default_rng(0)
    for _ in range(4):
        mask = rng.random(ql.group_count) < 0.5
        acc = sess.run([acc_output_name(el.output_name)], {"x": x, mask_input_name(0): mask})[0]
        order = np.concatenate([np.flatnonzero(mask), np.flatnonzero(~mask)])
        ref_acc, _ = reference.layer_forward(_groups_first(ql, order), x, int(mask.sum()) * 32)
        np.testing.assert_array_equal(acc, ref_acc)


def test_multi_layer_prefix_reads_its_own_entry():
    """Two layers, each reads flexiq_max_4bit_ch[layer_index]: changing entry 1 leaves layer 0's acc alone."""
    prepared, eligible = eligible_of(M.residual_block(c=64, hw=5), 32)
    pairs = [(e, random_quantized(e, i, 32, not e.input_nonnegative, ShiftMode.DYNAMIC, i))
             for i, e in enumerate(eligible)]
    sim = write_simulation_model(prepared, pairs, {"k": 1}, debug_outputs=True)
    sess = session(sim)
    x = random_input((1, 64, 5, 5), True, True, 0)
    names = [acc_output_name(e.output_name) for e, _ in pairs]
    a = sess.run(names, {"x": x, RUNTIME_INPUT: np.array([0, 0], np.int32)})
    b = sess.run(names, {"x": x, RUNTIME_INPUT: np.array([0, 64], np.int32)})
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[1], b[1])
    assert {p.key: p.value for p in sim.metadata_props}["k"] == "1"


def test_dynamic_batch_and_spatial_dims_stay_dynamic():
    """Calibration shape given to find_layers only: the written models run at other batch/spatial sizes."""
    prepared = prepare_model(M.conv_bn_relu(batch="N", hw="H"))
    (el,), _ = find_layers(prepared, 32, input_shapes={"x": (1, 64, 8, 8)})
    ql = random_quantized(el, 0, 32, True, ShiftMode.DYNAMIC, 0)
    sim = write_simulation_model(prepared, [(el, ql)], {}, debug_outputs=True)
    x = random_input((3, 64, 5, 5), True, True, 0)
    acc = session(sim).run([acc_output_name(el.output_name)], {"x": x, RUNTIME_INPUT: np.array([32], np.int32)})[0]
    np.testing.assert_array_equal(acc, reference.layer_forward(ql, x, 32)[0])


@pytest.mark.parametrize("kind", sorted(LAYER_KINDS))
@pytest.mark.parametrize("signed", [True, False], ids=["s8", "u8"])
def test_float_exact_evaluator_arithmetic_matches_reference(kind, signed):
    """The search's float32 Conv/MatMul arithmetic gives the identical int32 accumulators."""
    run_and_compare(LAYER_KINDS[kind](), 32, signed, ShiftMode.DYNAMIC, seed=11, float_exact=True)


@pytest.mark.parametrize("signed", [True, False], ids=["s8", "u8"])
@pytest.mark.parametrize(("c_in", "kernel"), [(320, 3), (32, 7)], ids=["10_groups", "1_group"])
def test_float_exact_is_exact_at_the_worst_case_magnitudes(signed, c_in, kernel):
    """Every code at its largest magnitude, K well past one float-exact chunk: still bit-exact (also a single
    group over several chunks, which takes the gathered layout: chunks are ranges in π order)."""
    from _utils import models as M

    from flexiq_trt.graph_passes.simulate_layers import float_exact_chunk

    model = M.conv_geometry(c_in=c_in, c_out=8, hw=9, kernel=kernel, strides=(1, 1), dilations=(1, 1))
    prepared, (el,) = eligible_of(model, 32)
    ql = random_quantized(el, 0, 32, signed, ShiftMode.DYNAMIC, 5)
    ql.weight_int8[...] = -127
    ql.weight_int4[...] = -8
    ql.weight_step[...] = 16
    assert ql.padded_channels > float_exact_chunk(ql)
    sim = write_simulation_model(prepared, [(el, ql)], {}, debug_outputs=True, float_exact=True)
    shape = input_shape(prepared)
    x = np.full(shape, 1e3 if not signed else -1e3, np.float32)  # saturates every code
    for n4 in (0, ql.padded_channels // 2, ql.padded_channels):
        acc = session(sim).run([acc_output_name(el.output_name)], {"x": x, RUNTIME_INPUT: np.array([n4], np.int32)})[0]
        np.testing.assert_array_equal(acc, reference.layer_forward(ql, x, n4)[0])


@pytest.mark.parametrize("signed", [True, False], ids=["s8", "u8"])
@pytest.mark.parametrize("float_exact", [False, True], ids=["integer", "float_exact"])
def test_static_shift_clips_both_ends(signed, float_exact):
    """Static 2^p too small for the codes: the 4-bit codes clip at -8/7 (0/15), as in the reference."""
    prepared, (el,) = eligible_of(LAYER_KINDS["matmul3d"](), 32)
    ql = random_quantized(el, 0, 32, signed, ShiftMode.STATIC, 4)
    ql.act_static_shift[:] = 0
    sim = write_simulation_model(prepared, [(el, ql)], {}, debug_outputs=True, float_exact=float_exact)
    x = np.linspace(-3.0 if signed else 0.0, 3.0, int(np.prod(input_shape(prepared))), dtype=np.float32)
    x = x.reshape(input_shape(prepared)) / np.float32(ql.act_scale) * np.float32(1e-2)
    for n4 in (0, 64, ql.padded_channels):
        acc = session(sim).run([acc_output_name(el.output_name)], {"x": x, RUNTIME_INPUT: np.array([n4], np.int32)})[0]
        np.testing.assert_array_equal(acc, reference.layer_forward(ql, x, n4)[0])
    q = np.clip(np.round(x / np.float32(ql.act_scale)), -127 if signed else 0, 127 if signed else 255)
    assert q.max() > 15 and (not signed or q.min() < -8), "codes never leave the 4-bit range: the test is too weak"


def test_step_tables_are_the_step_rule():
    """The Gather tables: row m holds bits.act_step(m) = (m >> 3) + 1 (signed) / (m >> 4) + 1, row 256 the 8-bit step 1;
    a static shift's row has step 2^p."""
    from flexiq_trt.graph_passes.simulate_layers import EIGHT_BIT_ROW, group_tables, static_rows

    for signed, k in ((True, 3), (False, 4)):
        step, bound = group_tables(signed)
        m = np.arange(256)
        np.testing.assert_array_equal(step[:256], np.minimum((m >> k) + 1, 16).astype(np.float32))
        assert step[EIGHT_BIT_ROW] == 1 and bound[EIGHT_BIT_ROW] == (127 if signed else 255)
        assert set(bound[:256].tolist()) == {7.0 if signed else 15.0}
        p = np.arange(5)
        np.testing.assert_array_equal(step[static_rows(p, signed)], (1 << p).astype(np.float32))


@pytest.mark.parametrize("float_exact", [False, True], ids=["integer", "float_exact"])
@pytest.mark.parametrize("hw", [10, 5], ids=["picked_weights", "constant_weights"])
def test_simulation_layer_op_budget(float_exact, hw):
    """Few ops per layer (ONNX Runtime's per-node cost dominates small layers at batch 1): the 4-bit/8-bit
    choice is a Gather of a per-rung table row (no Where, no comparison), the codes one QuantizeLinear (no
    Round/Clip), the 4-bit rounding at the group's step one Div and one Floor, no Pad; at most 28 nodes besides the
    activation for a signed dynamic-step conv layer (30 with constant weights, 5x5 outputs; 31 with ConvInteger and
    its Pad; 26/28/29 with power-of-two shifts, whose rounding was two magic-number adds; 34 before), the rung
    vector's 6 nodes shared by all layers."""
    from flexiq_trt.graph_passes.simulate_layers import RUNGS_PREFIX
    from flexiq_trt.plugin_spec import sim_node_prefix

    prepared, eligible = eligible_of(M.residual_block(c=64, hw=hw), 32)
    pairs = [(e, random_quantized(e, i, 32, True, ShiftMode.DYNAMIC, i)) for i, e in enumerate(eligible)]
    sim = write_simulation_model(prepared, pairs, {}, float_exact=float_exact)
    budget = 31 if not float_exact else 30 if hw == 5 else 28  # the step rounding: Gather x2, Div, Add, Floor, Min, Mul
    shared = [n.op_type for n in sim.graph.node if n.name.startswith(RUNGS_PREFIX)]
    assert len(shared) == 6, shared
    for i in range(len(pairs)):
        ops = [n.op_type for n in sim.graph.node if n.name.startswith(sim_node_prefix(i))]
        banned = {"Where", "Less", "Greater", "Round", "Slice"}
        assert not (banned | {"Pad"} if float_exact else banned) & set(ops), ops  # ConvInteger's own Pad stays
        assert ops.count("Div") == ops.count("Floor") == 1, ops  # the step rounding, once per layer
        assert len(ops) - ops.count("Relu") - ops.count("Identity") <= budget, ops  # activation aside
        assert ("Unsqueeze" in ops) == (float_exact and hw == 5), ops  # the doubled codes of `_halves_accumulate`


def test_padding_slots_repeat_a_real_channel_of_their_group():
    """The gathered layout reads only real channels: a padding slot repeats one of its own group (the group's
    max is unchanged) or, in a group of padding only, channel π[0]; the weights of every padding slot are zero."""
    from flexiq_trt.graph_passes.simulate_layers import _gather_indices, _weight_slots

    prepared, (el,) = eligible_of(LAYER_KINDS["conv3x3_s2_pad_dil"](), 32)  # C_in 80 -> C_pad 96
    ql = random_quantized(el, 0, 32, True, ShiftMode.DYNAMIC, 3)
    idx = _gather_indices(ql)
    perm = ql.permutation.reshape(ql.group_count, 32)
    assert idx.max() < ql.in_channels
    for k in range(ql.group_count):
        real = perm[k][perm[k] < ql.in_channels]
        assert set(idx[k]) == set(real)
    np.testing.assert_array_equal(_weight_slots(ql, False) < 0, np.arange(96) >= 80)
    wide = QuantizedLayer(**{**ql.__dict__, "permutation": np.concatenate([ql.permutation, np.arange(96, 128)]),
                             "weight_int8": np.zeros(ql.weight_int8.shape[:-1] + (128,), np.int8),
                             "weight_int4": np.zeros(ql.weight_int4.shape[:-1] + (128,), np.int8),
                             "weight_step": np.ones(4, np.int8)})
    np.testing.assert_array_equal(_gather_indices(wide)[3], np.full(32, ql.permutation[0]))


@pytest.mark.parametrize("float_exact", [False, True], ids=["integer", "float_exact"])
def test_activation_rounding_ties_and_huge_values(float_exact):
    """x / scale exactly halfway between codes rounds half to even (ONNX Round), huge and infinite
    values saturate, as in the reference."""
    prepared, (el,) = eligible_of(LAYER_KINDS["matmul3d"](), 32)
    ql = random_quantized(el, 0, 32, True, ShiftMode.DYNAMIC, 2)
    ql.act_scale = 0.25
    sim = write_simulation_model(prepared, [(el, ql)], {}, debug_outputs=True, float_exact=float_exact)
    shape = input_shape(prepared)
    x = ((np.arange(int(np.prod(shape))) % 80) - 40.0).astype(np.float32) * np.float32(0.125)  # v = k/2: ties
    x[::7] = np.float32(3e38)
    x[3::11] = -np.inf
    x[5::13] = np.float32(2.0**22 + 1.0)
    x = x.reshape(shape)
    for n4 in (0, ql.padded_channels):
        acc = session(sim).run([acc_output_name(el.output_name)], {"x": x, RUNTIME_INPUT: np.array([n4], np.int32)})[0]
        with np.errstate(over="ignore"):  # 3e38 / 0.25 overflows to inf on purpose
            ref = reference.layer_forward(ql, x, n4)[0]
        np.testing.assert_array_equal(acc, ref)



def test_plain_layer_output_comes_from_an_identity():
    """Activation NONE keeps the Identity on the layer's output: ONNX Runtime removes it, but its fusions see
    it first; without it a transformer's residual Add + LayerNormalization after the epilogue fused into
    SkipLayerNormalization (another rounding order: MiniLM's simulation outputs changed bits)."""
    prepared, (el,) = eligible_of(LAYER_KINDS["matmul3d"](), 32)
    ql = random_quantized(el, 0, 32, True, ShiftMode.DYNAMIC, 0)
    sim = write_simulation_model(prepared, [(el, ql)], {}, float_exact=True)
    assert [n.op_type for n in sim.graph.node if el.output_name in n.output] == ["Identity"]


@pytest.mark.parametrize("kind", ["conv1x1", "conv3x3_s2_pad_dil", "gemm2d_transb"])
@pytest.mark.parametrize("mode", ["prefix", "mask"])
def test_constant_weight_layers_keep_their_rounding(kind, mode):
    """Layers with few output positions multiply constant weights (`_halves_accumulate`); ONNX Runtime must not
    fold the out_scale Mul into them (ConvMulFusion rounds the products). A debug accumulator output gives the
    Conv a second reader, which blocks such fusions, so the outputs without it must be the same bits."""
    prepared, (el,) = eligible_of(LAYER_KINDS[kind](), 32)
    ql = random_quantized(el, 0, 32, True, ShiftMode.DYNAMIC, 5)
    plain = write_simulation_model(prepared, [(el, ql)], {}, mode=mode, float_exact=True)
    debug = write_simulation_model(prepared, [(el, ql)], {}, mode=mode, float_exact=True, debug_outputs=True)
    assert "Unsqueeze" in {n.op_type for n in plain.graph.node} or not el.is_conv  # the constant-weight form
    x = random_input(input_shape(prepared), el.is_conv, True, 1)
    feeds = [{RUNTIME_INPUT: np.array([n4], np.int32)} for n4 in (0, 32, ql.padded_channels)] if mode == "prefix" else \
        [{mask_input_name(0): np.arange(ql.group_count) % 2 == k} for k in (0, 1)]
    out = plain.graph.output[0].name
    for feed in feeds:
        a = session(plain).run([out], {"x": x, **feed})[0]
        b = session(debug).run([out], {"x": x, **feed})[0]
        np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))


@pytest.mark.parametrize("kind", ["conv1x1", "conv1x1_10x10", "matmul3d", "gemm2d_transb"])
@pytest.mark.parametrize("float_exact", [False, True], ids=["integer", "float_exact"])
def test_opset_11_graph(kind, float_exact):
    """At opset 11 (Unsqueeze and ReduceMax take attributes) both weight forms still match the reference."""
    model = LAYER_KINDS[kind]()
    model.opset_import[0].version = 11
    prepared, (el,) = eligible_of(model, 32)
    ql = random_quantized(el, 0, 32, False, ShiftMode.DYNAMIC, 9)
    sim = write_simulation_model(prepared, [(el, ql)], {}, debug_outputs=True, float_exact=float_exact)
    assert sim.opset_import[0].version == 11
    x = random_input(input_shape(prepared), el.is_conv, False, 9)
    sess = session(sim)
    for n4 in (0, 32, ql.padded_channels):
        acc = sess.run([acc_output_name(el.output_name)], {"x": x, RUNTIME_INPUT: np.array([n4], np.int32)})[0]
        np.testing.assert_array_equal(acc, reference.layer_forward(ql, x, n4)[0])
