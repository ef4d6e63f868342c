"""Block-by-block learned rounding on the shipped Fashion-MNIST ResNet (128 training images x 2 views, 40 steps per block).

What must hold: every FlexiQ layer belongs to exactly one block; a block keeps learned codes only
when they lower its loss over the rungs on the training images, and some block's loss at 100% goes down; only 4-bit codes change (π, the global order, each group's step and
the INT8 model are the ones before, so the ratio table stays valid and 0% is bit-identical); and
`convert --block-rounding` end to end writes a report whose artifact check passed, with the
`before_block_rounding` column and the stage's own line.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the finetune extra (torch) is not installed")

from _utils.fmnist import fmnist_material, report_config, selected_state  # noqa: E402

import flexiq_trt  # noqa: E402
from flexiq_trt.calibration.config import CalibConfig  # noqa: E402
from flexiq_trt.finetune.config import BlockRoundingConfig, RefineConfig  # noqa: E402

STEPS = 40


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(model, calibration .npz with 128 training images, evaluation .npz with 256 labelled test images)."""
    return fmnist_material(tmp_path_factory.mktemp("fmnist_block_rounding"), calib=128, evaluate=256)


@pytest.fixture(scope="module")
def rounded(data):
    """The pipeline up to selection, then `round_blocks`: (state before, result)."""
    from flexiq_trt.finetune.block_rounding import round_blocks

    state = selected_state(*data)
    config = BlockRoundingConfig(enabled=True, iterations=STEPS, views=2, rungs=2, lr=0.1)  # short: coarse, fast
    result = round_blocks(state.prepared, state.selected, state.problem, state.order, state.table,
                          state.calib_feeds, config)
    return state, result


def test_every_layer_in_one_block_and_the_100_percent_loss_goes_down(rounded):
    state, result = rounded
    s = result.summary
    names = [name for b in s["blocks"] for name in b["layers"]]
    assert sorted(names) == sorted(rec.final.name for rec in state.selected)
    assert len(names) == len(set(names))
    assert s["samples"] == 2 * state.calib_feeds.samples and s["iterations"] == STEPS
    for b in s["blocks"]:  # a block keeps learned codes only when they do better over the rungs
        mean = np.mean([b["loss_after"][r] / b["loss_before"][r] for r in b["loss_before"]])
        assert (mean <= 1.0) if b["kept"] else (b["changed"] == 0 and b["loss_after"] == b["loss_before"]), b
    gain = [b["loss_after"]["1.0000"] / b["loss_before"]["1.0000"] for b in s["blocks"] if b["kept"]]
    assert gain and min(gain) < 0.99, s["blocks"]
    assert sum(b["changed"] for b in s["blocks"]) > 0


def test_only_4bit_codes_change(rounded):
    state, result = rounded
    for old, new in zip(state.selected, result.selected, strict=True):
        new.final.validate()
        np.testing.assert_array_equal(new.final.permutation, old.final.permutation)
        np.testing.assert_array_equal(new.final.weight_int8, old.final.weight_int8)
        np.testing.assert_array_equal(new.final.weight_step, old.final.weight_step)
        np.testing.assert_array_equal(new.final.bias, old.final.bias)
        assert np.abs(new.final.weight_int4.astype(int) - old.final.weight_int4).max() <= 2


def test_int8_model_unchanged_and_100_percent_still_accurate(rounded):
    from flexiq_trt.graph_passes.simulate_layers import write_simulation_model
    from flexiq_trt.report.evaluate import evaluate_variants, run_outputs, session

    state, result = rounded

    def rows(selected):
        sim = write_simulation_model(state.prepared, [(rec.eligible, rec.final) for rec in selected], {},
                                     float_exact=True)
        fp32 = run_outputs(session(state.original), state.eval_feeds)
        return evaluate_variants(fp32, {"v": sim}, state.table, (0.0, 1.0), state.eval_feeds)

    after, before = rows(result.selected), rows(state.selected)
    assert after[0]["kl"] == before[0]["kl"]  # INT8 is bit-identical by construction
    assert after[1]["top1_agreement"] >= 0.9, after[1]


def test_convert_with_block_rounding(data, tmp_path):
    model, calib, heldout = data
    cfg = report_config(heldout)
    result = flexiq_trt.convert(model, calib=str(calib), output_dir=tmp_path / "rounded", config=cfg,
                                calib_config=CalibConfig(batch_size=64),
                                refine=RefineConfig(block_rounding=BlockRoundingConfig(enabled=True, iterations=3, views=1)))
    report = result.report
    assert report["artifact_check"]["identical"]
    assert {r["variant"] for r in report["rows"]} == {"flexiq", "before_block_rounding"}
    rows = {(r["variant"], r["ratio"]): r for r in report["rows"]}
    assert rows[("flexiq", 0.0)]["kl"] == rows[("before_block_rounding", 0.0)]["kl"]
    assert "block-by-block learned rounding:" in (tmp_path / "rounded/report.md").read_text()
    assert json.loads(result.files["sidecar"].read_text())["extra"]["block_rounding"]["iterations"] == 3
    assert "block_rounding" in result.timings


def test_convert_with_finetune_then_block_rounding(data, tmp_path):
    from flexiq_trt.finetune.config import FinetuneConfig

    model, calib, heldout = data
    cfg = report_config(heldout)
    result = flexiq_trt.convert(model, calib=str(calib), output_dir=tmp_path / "both", config=cfg,
                                calib_config=CalibConfig(batch_size=64),
                                refine=RefineConfig(FinetuneConfig(enabled=True, seconds=300, max_steps=3),
                                                    BlockRoundingConfig(enabled=True, iterations=3, views=1)))
    report = result.report
    assert report["artifact_check"]["identical"]
    assert {r["variant"] for r in report["rows"]} == {"flexiq", "before_finetune", "finetuned_plain",
                                                      "before_block_rounding"}
    assert list(result.timings).index("finetune") < list(result.timings).index("block_rounding")


def test_ratios_with_the_same_work_share_one_computation(data):
    """Ratios at which a block has the same inputs and the same n4 are computed once, and the outputs match a
    direct run at every ratio (the first block's input is the network input at every ratio)."""
    from flexiq_trt.finetune.block_rounding import block_learner

    state = selected_state(*data)
    config = BlockRoundingConfig(enabled=True, iterations=2, views=1, rungs=8)
    learner, blocks = block_learner(state.prepared, state.selected, state.table, state.calib_feeds, config)
    block = blocks[0]
    inputs = {r: {name: learner.fp[name] for name in block.inputs} for r in learner.ratios}
    keys = {learner.same_work(block, inputs, r) for r in learner.ratios}
    assert len(keys) < len(learner.ratios), "expected some ladder ratios to give the first block the same n4"
    calls = []
    direct = learner._outputs
    learner._outputs = lambda b, x, r: calls.append(r) or direct(b, x, r)
    _, nxt = learner.learn(block, inputs)
    assert len(calls) == len(keys)
    for r in learner.ratios:
        with torch.no_grad():
            want = direct(block, inputs[r], r)
        for name in block.outputs:
            torch.testing.assert_close(nxt[r][name], want[name], rtol=0, atol=0)


def test_left_at_its_default_it_runs_where_torch_is(data, tmp_path):
    model, calib, heldout = data
    result = flexiq_trt.convert(model, calib=str(calib), output_dir=tmp_path / "auto", config=report_config(heldout),
                                calib_config=CalibConfig(batch_size=64),
                                refine=RefineConfig(block_rounding=BlockRoundingConfig(iterations=3, views=1)))
    assert result.report["artifact_check"]["identical"]
    assert "before_block_rounding" in {r["variant"] for r in result.report["rows"]}
    assert result.table.extra["block_rounding"]["iterations"] == 3


def test_budget_spent_leaves_the_other_blocks_stored(data):
    from flexiq_trt.finetune.block_rounding import round_blocks

    state = selected_state(*data)
    config = BlockRoundingConfig(enabled=True, iterations=3, views=1, seconds=1e-9)
    result = round_blocks(state.prepared, state.selected, state.problem, state.order, state.table,
                          state.calib_feeds, config)
    assert result.summary["blocks"] == [] and result.summary["blocks_not_reached"] >= 1
    for old, new in zip(state.selected, result.selected, strict=True):
        np.testing.assert_array_equal(new.final.weight_int4, old.final.weight_int4)


def _elu_model(path: Path) -> Path:
    """conv -> Elu -> conv -> Relu: Elu has no PyTorch counterpart in the interpreter (finetune/torch_graph.py)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array((rng.normal(size=(32, 16, 3, 3)) * 0.1).astype(np.float32), "w1"),
             numpy_helper.from_array((rng.normal(size=(32, 32, 1, 1)) * 0.1).astype(np.float32), "w2")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Elu", ["c1"], ["e1"], name="elu1"),
             helper.make_node("Conv", ["e1", "w2"], ["c2"], name="conv2"),
             helper.make_node("Relu", ["c2"], ["y"], name="relu2")]
    graph = helper.make_graph(nodes, "elu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 16, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 32, 8, 8])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_unsupported_graph_skips_by_default_and_fails_when_asked_for(tmp_path):
    from flexiq_trt.conversion import ConvertConfig
    from flexiq_trt.errors import UnsupportedModelError

    model = _elu_model(tmp_path / "elu.onnx")
    np.savez(tmp_path / "c.npz", x=np.random.default_rng(1).normal(size=(32, 16, 8, 8)).astype(np.float32))
    cfg = ConvertConfig(selector="greedy", ort_baseline=False, baselines=False)
    result = flexiq_trt.convert(model, calib=str(tmp_path / "c.npz"), output_dir=tmp_path / "auto", config=cfg)
    skipped = result.table.extra["block_rounding"]["skipped"]
    assert "elu1" in skipped and "Elu" in skipped
    assert "block-by-block learned rounding: not run" in (tmp_path / "auto/report.md").read_text()
    with pytest.raises(UnsupportedModelError, match="elu1"):
        flexiq_trt.convert(model, calib=str(tmp_path / "c.npz"), output_dir=tmp_path / "asked", config=cfg,
                           refine=RefineConfig(block_rounding=BlockRoundingConfig(enabled=True, iterations=3)))
    assert not (tmp_path / "asked").exists()


@pytest.mark.parametrize("count, dtype, want", [
    (64, np.float32, 256),   # 4 views fit in 256
    (100, np.float32, 200),  # 2 views fit
    (300, np.float32, 256),  # a subset, one view
    (64, np.int64, 64),      # token ids do not augment: one view
])
def test_learning_samples_stay_within_max_samples(count, dtype, want):
    from flexiq_trt.calibration.feeds import FeedSet
    from flexiq_trt.finetune.block_rounding import learning_samples

    x = np.arange(count * 3 * 8 * 8).reshape(count, 3, 8, 8).astype(dtype)
    feeds = FeedSet([{"x": x[i:i + 50]} for i in range(0, count, 50)])
    got = learning_samples(feeds, BlockRoundingConfig(views=4, max_samples=256))["x"]
    assert got.shape == (want, 3, 8, 8) and got.dtype == dtype
    first = got[:min(count, 256)]
    assert {tuple(s.ravel()[:1]) for s in first} <= {tuple(s.ravel()[:1]) for s in x}  # the originals come first
    if count <= 256:
        np.testing.assert_array_equal(first, x)
