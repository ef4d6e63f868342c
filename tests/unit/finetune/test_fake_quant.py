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

from _utils.fake_quant_layers import GEOMETRIES, RANK, G, assert_same_layer, selected_layer  # noqa: E402

from flexiq_trt.finetune.fake_quant import FakeQuantLayer  # noqa: E402
from flexiq_trt.finetune.stage import _requantize, code_means  # noqa: E402
from flexiq_trt.quantization import reference  # noqa: E402
from flexiq_trt.quantization.config import QuantConfig  # noqa: E402
from flexiq_trt.quantization.quantize_layer import reorder_groups  # noqa: E402


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
