"""End to end on real float weights: with honest int8 codes, both writers keep the model's meaning.

The random-code tests prove the simulation equals the reference; this one proves intake's canonical
weights (transposes, Gemm alpha/beta/transB, folded BN, fused bias/activation, permutation) describe
the original graph: the INT8 simulation (n4 = 0) must track the float model within int8 error.
"""

from __future__ import annotations

import numpy as np
import pytest
from _gp_helpers import faithful_quantized, session, tensor_values
from _utils import models as M

from flexiq_trt.graph_passes.simulate_layers import write_simulation_model
from flexiq_trt.intake import find_layers, prepare_model
from flexiq_trt.plugin_spec import RUNTIME_INPUT

MODELS = {
    "conv_bn_relu": (M.conv_bn_relu, (2, 64, 8, 8)),
    "residual_block": (M.residual_block, (1, 64, 8, 8)),
    "conv_geometry": (M.conv_geometry, (1, 64, 11, 11)),
    "conv_same_upper": (lambda: M.conv_geometry(auto_pad="SAME_UPPER", dilations=(1, 1)), (1, 64, 11, 11)),
    "gemm_transb": (M.gemm_transb, (2, 64)),
    "mlp": (M.mlp, (1, 5, 64)),
    "mlp_silu": (lambda: M.mlp(activation="Sigmoid"), (1, 5, 64)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("group_size", [32, 64])
def test_int8_simulation_tracks_float_model(name, group_size):
    build, shape = MODELS[name]
    model = build()
    prepared = prepare_model(model)
    eligible, _ = find_layers(prepared, group_size)
    assert eligible
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    inputs = tensor_values(prepared, {"x": x}, [e.input_name for e in eligible])
    pairs = [(e, faithful_quantized(e, i, group_size, float(np.abs(inputs[e.input_name]).max()), i))
             for i, e in enumerate(eligible)]
    sim = write_simulation_model(prepared, pairs, {})
    ref = session(model).run(None, {"x": x})[0]
    got = session(sim).run(None, {"x": x, RUNTIME_INPUT: np.zeros(len(pairs), np.int32)})[0]
    rel = np.abs(got - ref).max() / np.abs(ref).max()
    assert rel < 0.03, f"{name}: int8 simulation differs from the float model by {rel:.3%}"
    full = session(sim).run(None, {"x": x, RUNTIME_INPUT: np.full(len(pairs), 10**6, np.int32)})[0]
    assert not np.allclose(full, got), "the 4-bit ratio had no effect"
