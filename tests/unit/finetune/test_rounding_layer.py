"""The learned-rounding layer is the stored layer until it learns, and what it learns is stored exactly.

Against the NumPy oracle (`quantization.reference`, exact int32 accumulators): with hard codes at
the start, the module computes the stored GPTQ layer at every n4 (so learning starts from the
converter's codes); after the rounding moves, `with_codes` stores a layer that computes what the
module computed (bias rungs recomputed from the new codes), with the INT8 model untouched.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the finetune extra (torch) is not installed")

from _utils.fake_quant_layers import GEOMETRIES, RANK, G, assert_same_layer, selected_layer  # noqa: E402

from flexiq_trt.finetune.block_rounding import with_codes  # noqa: E402
from flexiq_trt.finetune.rounding_layer import RoundingLayer  # noqa: E402
from flexiq_trt.finetune.stage import code_means  # noqa: E402
from flexiq_trt.quantization import reference  # noqa: E402
from flexiq_trt.quantization.quantize_layer import reorder_groups  # noqa: E402


def rounding_layer(rec) -> RoundingLayer:
    src = rec.quantized.source
    return RoundingLayer(rec.final, src.weight, src.bias, code_means(rec))


@pytest.mark.parametrize("kind", sorted(GEOMETRIES))
@pytest.mark.parametrize("signed", [True, False], ids=["s8", "u8"])
@pytest.mark.parametrize("act_shift", ["dynamic", "static"])
def test_hard_start_is_the_stored_gptq_layer(kind, signed, act_shift):
    rec, x = selected_layer(kind, signed, act_shift, rounding="gptq")
    mod = rounding_layer(rec)
    mod.hard = True
    np.testing.assert_array_equal(mod.stored_codes(), rec.final.weight_int4)
    assert_same_layer(mod, rec.final, x)


@pytest.mark.parametrize("kind", ["gemm", "conv3x3_s2_pad_dil"])
@pytest.mark.parametrize("signed", [True, False], ids=["s8", "u8"])
def test_learned_codes_are_stored_exactly(kind, signed):
    rec, x = selected_layer(kind, signed, "dynamic", rounding="gptq")
    mod = rounding_layer(rec)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        mod.rounding.copy_(4 * torch.randn(mod.rounding.shape, generator=gen))
    mod.hard = True
    stored = with_codes(rec, mod.stored_codes()).result.layer
    final = reorder_groups(stored, RANK)
    np.testing.assert_array_equal(final.weight_int4, mod.stored_codes())
    assert_same_layer(mod, final, x)
    before = rec.final
    np.testing.assert_array_equal(final.weight_int8, before.weight_int8)
    np.testing.assert_array_equal(final.weight_step, before.weight_step)
    np.testing.assert_array_equal(reference.layer_forward(final, x, 0)[1], reference.layer_forward(before, x, 0)[1])
    moved = np.abs(final.weight_int4.astype(int) - before.weight_int4)
    assert moved.sum() > 0 and moved.max() <= 2  # each code stays within one of floor(w) and the stored code
    assert np.abs(final.bias_row(2 * G) - before.bias_row(2 * G)).max() > 1e-6


def test_gradient_reaches_the_rounding_only_through_4bit_groups():
    rec, x = selected_layer("conv3x3_s2_pad_dil", True, "dynamic", rounding="gptq")
    mod = rounding_layer(rec)
    xt = torch.from_numpy(x)
    mod.n4 = G
    mod(xt).square().mean().backward()
    grad = mod.rounding.grad.abs().sum(dim=tuple(range(mod.rounding.dim() - 1)))  # per input channel (π order)
    assert float(grad[:G].sum()) > 0
    assert float(grad[G:].sum()) == 0  # INT8 channels do not read the 4-bit codes
    mod.n4 = 0
    assert not mod(xt).requires_grad  # nothing learnable in the INT8 model


def test_regularizer_vanishes_at_hard_codes():
    rec, _ = selected_layer("gemm", True, "dynamic", rounding="gptq")
    mod = rounding_layer(rec)
    assert float(mod.regularizer(2.0).detach()) > 0  # the start is soft (0.25 / 0.75)
    with torch.no_grad():
        mod.rounding.copy_(torch.sign(mod.rounding) * 20)
    assert float(mod.regularizer(2.0).detach()) == 0


def test_starts_from_finetuned_codes_after_finetune():
    """After `--finetune` the stored codes approximate `LayerSource.weight4`; learning starts from exactly them."""
    from dataclasses import replace

    from flexiq_trt.finetune.fake_quant import FakeQuantLayer
    from flexiq_trt.finetune.stage import _requantize
    from flexiq_trt.quantization.config import QuantConfig

    rec, x = selected_layer("conv3x3_s2_pad_dil", True, "dynamic", rounding="gptq")
    src = rec.quantized.source
    tuned = FakeQuantLayer(rec.final, src.weight, src.bias, code_means(rec), four_bit_only=True)
    with torch.no_grad():
        tuned.weight_steps.copy_(3 * torch.randn(tuned.weight_steps.shape, generator=torch.Generator().manual_seed(2)))
    q = _requantize(0, rec, tuned, QuantConfig(weight_rounding="gptq"))
    stored = reorder_groups(q.result.layer, RANK)
    after = replace(rec, quantized=q, final=stored)
    mod = RoundingLayer(stored, q.source.weight4, q.source.bias, code_means(after))
    mod.hard = True
    np.testing.assert_array_equal(mod.stored_codes(), stored.weight_int4)
    assert_same_layer(mod, stored, x)
