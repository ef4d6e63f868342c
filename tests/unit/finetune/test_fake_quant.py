"""The finetune's fake-quant layer computes the numeric contract: against the NumPy oracle.

In float64 the module's accumulator is exact, so for a layer stored with plain rounding (the rule
the finetune trains through) it must equal `quantization.reference`'s int32 accumulator at every n4,
and its output (epilogue, bias rung recomputed from the calibration's code means, activation) must
match up to float rounding. Conv (1x1 and 3x3 strided, padded, dilated) and Gemm, s8 and u8,
dynamic and static shifts, in a selected (non-base) group order.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the finetune extra (torch) is not installed")

from flexiq_trt.finetune.fake_quant import FakeQuantLayer  # noqa: E402
from flexiq_trt.finetune.stage import _requantize, code_means  # noqa: E402
from flexiq_trt.plugin_spec import Activation  # noqa: E402
from flexiq_trt.quantization import reference  # noqa: E402
from flexiq_trt.quantization.config import QuantConfig  # noqa: E402
from flexiq_trt.quantization.group_stats import GroupStatsObserver  # noqa: E402
from flexiq_trt.quantization.layer import ConvGeometry  # noqa: E402
from flexiq_trt.quantization.quantize_layer import LayerSource, quantize_layer, reorder_groups  # noqa: E402
from flexiq_trt.quantization.stage import QuantizedRecord  # noqa: E402
from flexiq_trt.quantization.weights import base_channel_order  # noqa: E402
from flexiq_trt.select.stage import SelectedRecord  # noqa: E402

RANK = [1, 0, 2]  # the selected group order: the padded group stays last (docs/design.md §2.4)
GEOMETRIES = {
    "gemm": None,
    "conv1x1": ConvGeometry((1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
    "conv3x3_s2_pad_dil": ConvGeometry((3, 3), (2, 1), (1, 0, 2, 1), (1, 2)),
}
C_IN, G = 80, 32  # C_pad 96: three groups, the last one padded


def selected_layer(kind: str, signed: bool, act_shift: str, seed: int = 0):
    """A plain-rounded layer with bias rungs, its groups in a non-base order; its float source and input."""
    rng = np.random.default_rng(seed)
    geo = GEOMETRIES[kind]
    conv = geo is not None
    w = rng.normal(size=(12, C_IN, *geo.kernel_shape) if conv else (12, C_IN)).astype(np.float32)
    x = (rng.normal(size=(3, C_IN, 9, 9)) if conv else rng.normal(size=(2, 30, C_IN))).astype(np.float32)
    x *= np.linspace(0.05, 3, C_IN).reshape((1, C_IN, 1, 1) if conv else (1, 1, C_IN)).astype(np.float32)
    if not signed:
        x = np.abs(x) + np.float32(0.2)
    act = Activation.HARD_SWISH if conv else Activation.NONE
    src = LayerSource("l", conv, w, rng.normal(size=12).astype(np.float32), geo, act, 0.0, 0.0, not signed)
    ch_range = np.abs(np.moveaxis(x, 1 if conv else -1, 0)).reshape(C_IN, -1).max(axis=1)
    order = base_channel_order(ch_range, G)
    s_a = float(np.abs(x).max() / (127 if signed else 255)) * 0.8  # some codes saturate
    obs = GroupStatsObserver(order, C_IN, G, s_a, signed, geo, max_rows_per_batch=64).with_code_sums()
    obs.update(x)
    stats = obs.result()
    config = QuantConfig(weight_rounding="plain", act_shift=act_shift)
    result = quantize_layer(src, 0, order, s_a, stats, config)
    final = reorder_groups(result.layer, RANK)
    rec = SelectedRecord(QuantizedRecord(None, src, order, stats, result), final)
    return rec, x


def assert_same_layer(mod: FakeQuantLayer, layer, x: np.ndarray) -> None:
    """The module's float64 accumulator equals the reference's int32 one at several n4; outputs close."""
    xt = torch.from_numpy(x.astype(np.float64))
    for n4 in (0, G, 2 * G, 3 * G, 50):  # 50 rounds down to one group (docs/design.md §2.4)
        acc_ref, y_ref = reference.layer_forward(layer, x, n4)
        mod.n4 = n4
        with torch.no_grad():
            acc, _ = mod.accumulate(xt)
            y = mod(xt).numpy()
        np.testing.assert_array_equal(acc.numpy(), acc_ref.astype(np.float64), err_msg=f"n4 {n4}")
        tol = 1e-5 * float(np.abs(y_ref).max())
        np.testing.assert_allclose(y, y_ref, rtol=0, atol=tol, err_msg=f"n4 {n4}")


@pytest.mark.parametrize("kind", sorted(GEOMETRIES))
@pytest.mark.parametrize("signed", [True, False], ids=["s8", "u8"])
@pytest.mark.parametrize("act_shift", ["dynamic", "static"])
def test_fake_quant_equals_the_reference(kind, signed, act_shift):
    rec, x = selected_layer(kind, signed, act_shift)
    layer, src = rec.final, rec.quantized.source
    assert layer.group_bias_shift is not None
    mod = FakeQuantLayer(layer, src.weight, src.bias, code_means(rec))  # float32 codes, float64 sums
    assert_same_layer(mod, layer, x)
    # the rungs really differ, so the bias check above is not vacuous
    assert np.abs(layer.bias_row(2 * G) - layer.bias_row(0)).max() > 1e-4


def test_gradients_reach_weights_and_bias_through_the_4bit_path():
    rec, x = selected_layer("conv3x3_s2_pad_dil", True, "dynamic")
    mod = FakeQuantLayer(rec.final, rec.quantized.source.weight, rec.quantized.source.bias, code_means(rec))
    mod.n4 = 3 * G
    mod(torch.from_numpy(x)).square().mean().backward()
    assert float(mod.weight_steps.grad.abs().sum()) > 0
    assert float(mod.bias_steps.grad.abs().sum()) > 0
    # padding channels carry no weight: their (zero) float weight is not a parameter at all
    assert mod.weight_steps.shape == rec.quantized.source.weight.shape


def test_untrained_module_is_the_float_layer():
    rec, _ = selected_layer("gemm", True, "dynamic")
    src = rec.quantized.source
    mod = FakeQuantLayer(rec.final, src.weight, src.bias, code_means(rec))
    np.testing.assert_array_equal(mod.float_weight().detach().numpy(), src.weight)
    np.testing.assert_array_equal(mod.float_bias().detach().numpy(), src.bias)


@pytest.mark.parametrize("kind", ["gemm", "conv3x3_s2_pad_dil"])
@pytest.mark.parametrize("signed", [True, False], ids=["s8", "u8"])
def test_four_bit_training_is_stored_exactly_with_plain_rounding(kind, signed):
    """Train the 4-bit target (here: moved at random), re-quantize with plain rounding: the stored layer is
    what the module computed at every n4 (bias rungs included), and its INT8 model is unchanged."""
    rec, x = selected_layer(kind, signed, "dynamic")
    src = rec.quantized.source
    mod = FakeQuantLayer(rec.final, src.weight, src.bias, code_means(rec), four_bit_only=True)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        mod.weight_steps.copy_(3 * torch.randn(mod.weight_steps.shape, generator=gen))
    stored = _requantize(0, rec, mod, QuantConfig(weight_rounding="plain")).result.layer
    final = reorder_groups(stored, RANK)
    assert_same_layer(mod, final, x)
    before = rec.final
    np.testing.assert_array_equal(final.weight_int8, before.weight_int8)
    np.testing.assert_array_equal(reference.layer_forward(final, x, 0)[1], reference.layer_forward(before, x, 0)[1])
    assert np.abs(final.weight_int4.astype(int) - before.weight_int4).sum() > 0
    assert np.abs(final.bias_row(2 * G) - before.bias_row(2 * G)).max() > 1e-4
