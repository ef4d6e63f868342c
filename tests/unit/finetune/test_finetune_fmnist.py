"""A short real finetune on the shipped Fashion-MNIST ResNet (128 training images, 60 steps).

What must hold: the distillation loss on the training images goes down at the sampled ratios, the
global order and every layer's π are kept (the ratio table stays valid), the re-quantized layers
are valid and the 0% (INT8) model is the one before (the default trains the 4-bit path only); and `convert --finetune` end to end
writes a report whose artifact check passed, with the `before_finetune` column and the finetune's
own line, while a conversion without it carries no trace of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the finetune extra (torch) is not installed")

from _utils.configs import NO_BLOCK_ROUNDING  # noqa: E402
from _utils.fmnist import fmnist_material, report_config, selected_state  # noqa: E402

import flexiq_trt  # noqa: E402
from flexiq_trt.calibration.config import CalibConfig  # noqa: E402
from flexiq_trt.finetune.config import BlockRoundingConfig, FinetuneConfig, RefineConfig  # noqa: E402

STEPS = 60


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(model, calibration .npz with 128 training images, evaluation .npz with 256 labelled test images)."""
    return fmnist_material(tmp_path_factory.mktemp("fmnist_finetune"), calib=128, evaluate=256)


@pytest.fixture(scope="module")
def finetuned(data):
    """The pipeline up to selection, then `finetune_layers`: (state before, result)."""
    from flexiq_trt.finetune.stage import finetune_layers

    state = selected_state(*data)
    config = FinetuneConfig(enabled=True, seconds=600, max_steps=STEPS)
    result = finetune_layers(state.prepared, state.selected, state.problem, state.order, state.table,
                             state.calib_feeds, state.quant, config)
    return state, result


def test_loss_on_the_training_images_goes_down(finetuned):
    _, result = finetuned
    s = result.summary
    assert s["steps"] == STEPS and s["loss_samples"] == 64
    sampled = [r for r in s["loss_before"] if float(r) > 0]
    assert s["loss_after"]["1.0000"] < 0.9 * s["loss_before"]["1.0000"]
    assert np.mean([s["loss_after"][r] for r in sampled]) < 0.9 * np.mean([s["loss_before"][r] for r in sampled])


def test_order_kept_and_layers_requantized(finetuned):
    state, result = finetuned
    moved = 0.0
    for old, new in zip(state.selected, result.selected, strict=True):
        new.final.validate()
        np.testing.assert_array_equal(new.final.permutation, old.final.permutation)
        np.testing.assert_array_equal(new.quantized.base_order, old.quantized.base_order)
        # the default trains the 4-bit path only: INT8 weights and biases are the ones before
        np.testing.assert_array_equal(new.final.weight_int8, old.final.weight_int8)
        np.testing.assert_array_equal(new.final.bias, old.final.bias)
        moved = max(moved, float(np.abs(new.quantized.source.weight4 - old.quantized.source.weight).max()))
    assert moved > 0, "the finetune changed no weight"


def test_int8_model_unchanged(finetuned):
    from flexiq_trt.graph_passes.simulate_layers import write_simulation_model
    from flexiq_trt.report.evaluate import evaluate_variants, run_outputs, session

    state, result = finetuned
    sim = write_simulation_model(state.prepared, [(rec.eligible, rec.final) for rec in result.selected], {},
                                 float_exact=True)
    fp32 = run_outputs(session(state.original), state.eval_feeds)
    rows = evaluate_variants(fp32, {"finetuned": sim}, state.table, (0.0, 1.0), state.eval_feeds)
    before = evaluate_variants(fp32, {"before": write_simulation_model(
        state.prepared, [(rec.eligible, rec.final) for rec in state.selected], {}, float_exact=True)},
        state.table, (0.0, 1.0), state.eval_feeds)
    assert rows[0]["top1_agreement"] == before[0]["top1_agreement"]  # INT8 is bit-identical by construction
    assert rows[0]["kl"] == before[0]["kl"]
    assert rows[1]["top1_agreement"] >= 0.9, rows[1]


def test_convert_with_and_without_finetune(data, tmp_path):
    model, calib, heldout = data
    cfg = report_config(heldout)
    tuned = flexiq_trt.convert(model, calib=str(calib), output_dir=tmp_path / "tuned", config=cfg,
                               calib_config=CalibConfig(batch_size=64),
                               refine=RefineConfig(finetune=FinetuneConfig(enabled=True, seconds=300, max_steps=3),
                                                   block_rounding=BlockRoundingConfig(enabled=False)))
    report = tuned.report
    assert report["artifact_check"]["identical"]
    assert report["finetune"]["steps"] == 3
    assert {r["variant"] for r in report["rows"]} == {"flexiq", "before_finetune", "finetuned_plain"}
    assert "distillation finetuning: 3 steps" in (tmp_path / "tuned/report.md").read_text()
    assert json.loads(tuned.files["sidecar"].read_text())["extra"]["finetune"]["steps"] == 3
    assert "finetune" in tuned.timings

    plain = flexiq_trt.convert(model, calib=str(calib), output_dir=tmp_path / "plain", config=cfg,
                               calib_config=CalibConfig(batch_size=64), refine=NO_BLOCK_ROUNDING)
    assert plain.report["finetune"] is None
    assert {r["variant"] for r in plain.report["rows"]} == {"flexiq"}
    assert "finetune" not in json.loads(plain.files["sidecar"].read_text())["extra"]
    assert "finetune" not in plain.timings
    # without finetuning the conversion is the one the finetuned run started from (same layers, same order)
    before = {r["ratio"]: r["top1_agreement"] for r in report["rows"] if r["variant"] == "before_finetune"}
    assert before == {r["ratio"]: r["top1_agreement"] for r in plain.report["rows"]}
