"""End-to-end `convert` on small graphs: artifacts, ratio tables, nesting, report, plan."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from _utils import models
from _utils.configs import NO_BLOCK_ROUNDING, NO_BLOCK_ROUNDING_FLAG

import flexiq_trt
from flexiq_trt.calibration.config import CalibConfig
from flexiq_trt.conversion import ConvertConfig
from flexiq_trt.plugin_spec import CONV_OP, GEMM_OP, PLUGIN_DOMAIN, RUNTIME_INPUT


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("conv")
    onnx.save(models.residual_block(c=64, hw=8), tmp / "res.onnx")
    x = np.random.default_rng(0).normal(size=(48, 64, 8, 8)).astype(np.float32)
    np.savez(tmp / "calib.npz", x=x)
    result = flexiq_trt.convert(tmp / "res.onnx", calib=str(tmp / "calib.npz"), output_dir=tmp / "out",
                                config=ConvertConfig(selector="greedy", ort_baseline=False), refine=NO_BLOCK_ROUNDING)
    return tmp, result, x


def test_artifacts_written_and_checked(converted):
    tmp, result, _ = converted
    names = sorted(p.name for p in (tmp / "out").iterdir() if p.is_file())
    assert names == ["report.json", "report.md", "report.png", "res.flexiq-sim.onnx", "res.flexiq.json",
                     "res.flexiq.onnx"]
    plug = onnx.load(str(tmp / "out/res.flexiq.onnx"))
    onnx.checker.check_model(plug)
    ops = [n.op_type for n in plug.graph.node]
    assert ops.count(CONV_OP) == 2 and "Conv" not in ops
    assert any(o.domain == PLUGIN_DOMAIN for o in plug.opset_import)
    assert [i.name for i in plug.graph.input][-1] == RUNTIME_INPUT
    sim = onnx.load(str(tmp / "out/res.flexiq-sim.onnx"))
    onnx.checker.check_model(sim)
    assert {n.domain for n in sim.graph.node} <= {"", "ai.onnx"}
    sim_ops = {n.op_type for n in sim.graph.node}
    assert "Conv" in sim_ops and "ConvInteger" not in sim_ops  # float-exact by default (docs/design.md §3)
    assert result.report["artifact_check"]["compared_with"] == ["float-exact (evaluated)", "integer operators"]


def test_ratio_vector_from_every_artifact(converted):
    tmp, result, _ = converted
    out = tmp / "out"
    for src in ("res.flexiq.json", "res.flexiq.onnx", "res.flexiq-sim.onnx"):
        v = flexiq_trt.ratio_vector(str(out / src), 0.5)
        assert v.dtype == np.int32 and v.shape == (2,)
        assert np.array_equal(v, result.table.vector(0.5))
    assert np.array_equal(flexiq_trt.ratio_vector(onnx.load(str(out / "res.flexiq.onnx")), 1.0), [64, 64])
    assert np.array_equal(flexiq_trt.ratio_vector(str(out / "res.flexiq.json"), 0.0), [0, 0])


def test_sets_are_nested_and_cover_the_ratio(converted):
    _, result, _ = converted
    table = result.table
    prev = np.zeros(table.num_layers)
    for r in np.linspace(0, 1, 41):
        v = table.vector(float(r))
        assert np.all(v >= prev) and np.all(v % table.group_sizes() == 0)
        assert table.achieved_ratio(v) >= r - 1e-9
        prev = v


def test_simulation_serves_every_ratio_and_degrades_gracefully(converted):
    tmp, result, x = converted
    sess = ort.InferenceSession(str(tmp / "out/res.flexiq-sim.onnx"), providers=["CPUExecutionProvider"])
    fp32 = ort.InferenceSession(str(tmp / "res.onnx"), providers=["CPUExecutionProvider"])
    ref = fp32.run(None, {"x": x[:1]})[0]
    errs = []
    for r in (0.0, 0.5, 1.0):
        y = sess.run(None, {"x": x[:1], RUNTIME_INPUT: result.table.vector(r)})[0]
        errs.append(float(np.linalg.norm(y - ref) / np.linalg.norm(ref)))
    assert errs[0] < 0.02  # INT8
    assert errs[0] <= errs[1] <= errs[2] < 0.2


def test_report_contents(converted):
    tmp, _, _ = converted
    rep = json.loads((tmp / "out/report.json").read_text())
    variants = {r["variant"] for r in rep["rows"]}
    # no_bias_corr: one bias at every rung; fixed_damp: GPTQ damping not cross-validated
    assert variants == {"flexiq", "naive", "plain", "no_bias_corr", "fixed_damp"}
    rows = {(r["variant"], r["ratio"]): r for r in rep["rows"]}
    assert rows[("flexiq", 0.0)]["cosine"] == rows[("no_bias_corr", 0.0)]["cosine"]  # rung 0 is the INT8 bias
    assert rows[("flexiq", 0.0)]["cosine"] == rows[("fixed_damp", 0.0)]["cosine"]  # INT8 codes do not depend on it
    assert rep["quantization"]["gptq_damp"] == [0.01, 0.1, 0.3]
    assert sorted({r["ratio"] for r in rep["rows"]}) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert rep["eval"]["samples"] > 0 and "held-out" in rep["eval"]["source"]
    assert rep["calibration"]["synthetic"] is False
    md = (tmp / "out/report.md").read_text()
    assert "| ratio |" in md and "naive" in md
    assert (tmp / "out/report.png").read_bytes()[:4] == b"\x89PNG"


def test_plan_only_then_apply_edited_plan(tmp_path):
    onnx.save(models.residual_block(c=64, hw=8), tmp_path / "res.onnx")
    np.savez(tmp_path / "c.npz", x=np.random.default_rng(1).normal(size=(16, 64, 8, 8)).astype(np.float32))
    cfg = ConvertConfig(selector="greedy", plan_only=True, output_dir=str(tmp_path / "plan"))
    flexiq_trt.convert(tmp_path / "res.onnx", calib=str(tmp_path / "c.npz"), config=cfg)
    plan_path = tmp_path / "plan/res.plan.json"
    plan = json.loads(plan_path.read_text())
    assert [e["action"] for e in plan["layers"]] == ["replace", "replace"]
    plan["layers"][0]["action"] = "keep"
    plan_path.write_text(json.dumps(plan))
    cfg = ConvertConfig(selector="greedy", plan=str(plan_path), report=False, output_dir=str(tmp_path / "o"))
    res = flexiq_trt.convert(tmp_path / "res.onnx", calib=str(tmp_path / "c.npz"), config=cfg, refine=NO_BLOCK_ROUNDING)
    ops = [n.op_type for n in onnx.load(str(res.files["flexiq_onnx"])).graph.node]
    assert ops.count(CONV_OP) == 1 and ops.count("Conv") == 1


def test_gemm_model_converts(tmp_path):
    onnx.save(models.mlp(), tmp_path / "mlp.onnx")
    m = onnx.load(str(tmp_path / "mlp.onnx"))
    shape = [d.dim_value or 4 for d in m.graph.input[0].type.tensor_type.shape.dim]
    shape[0] = 32
    np.savez(tmp_path / "c.npz", **{m.graph.input[0].name: np.random.default_rng(2).normal(size=shape)
                                      .astype(np.float32)})
    res = flexiq_trt.convert(tmp_path / "mlp.onnx", calib=str(tmp_path / "c.npz"), output_dir=tmp_path / "o",
                             calib_config=CalibConfig(batch_size=4),
                             config=ConvertConfig(selector="greedy", ort_baseline=False), refine=NO_BLOCK_ROUNDING)
    ops = [n.op_type for n in onnx.load(str(res.files["flexiq_onnx"])).graph.node]
    assert ops.count(GEMM_OP) >= 1


def test_compare_selectors_writes_a_table_and_plot(run_cli, tmp_path):
    onnx.save(models.residual_block(c=64, hw=8), tmp_path / "res.onnx")
    np.savez(tmp_path / "c.npz", x=np.random.default_rng(3).normal(size=(40, 64, 8, 8)).astype(np.float32))
    proc = run_cli("convert", NO_BLOCK_ROUNDING_FLAG, str(tmp_path / "res.onnx"), "--calib", str(tmp_path / "c.npz"), "-o",
                   str(tmp_path / "o"), "--compare-selectors", "--preset", "fast", "--no-ort-baseline",
                   "--fitness-samples", "16")  # the other 16 of the 32 calibration samples are the guard
    assert proc.returncode == 0, proc.stderr
    rep = json.loads((tmp_path / "o/report.json").read_text())
    from flexiq_trt.select.registry import selector_names

    assert {r["variant"] for r in rep["selectors"]} == set(selector_names())
    md = (tmp_path / "o/selectors.md").read_text()
    assert all(name in md for name in selector_names())
    assert "MixQuant's own allocation" in md and "bits @ QEM 256" in md  # MixQuant's 2..8-bit answer
    assert (tmp_path / "o/selectors.png").read_bytes()[:4] == b"\x89PNG"
    # the search ranked its populations with the linearized output model and the report says what it kept
    screening = [e for e in rep["search_log"] if e.get("event") == "screening"]
    results = [e for e in rep["search_log"] if e.get("event") == "ratio_result"]
    covered = [e["ratio"] for e in rep["search_log"] if e.get("event") == "ratio_covered"]
    assert [e["ratio"] for e in screening] == [e["ratio"] for e in results]
    assert sorted([e["ratio"] for e in results] + covered) == [0.25, 0.5, 0.75] and results
    assert all(e["calib_fitness_best"] <= e["calib_fitness_greedy"] for e in results)
    report_md = (tmp_path / "o/report.md").read_text()
    assert "Channel selection (evolutionary search)" in report_md and "linearized model" in report_md
    assert "guard tests passed" in report_md
    assert all(f"{e['guard_passed']} of {e['guard_tests']}" in report_md for e in results)


def test_search_log_keeps_every_event_and_the_last_generations():
    from flexiq_trt.report.stage import trim_search_log

    log = [{"event": "screening", "ratio": 0.25}] + [{"generation": g} for g in range(300)] + [{"event": "end"}]
    trimmed = trim_search_log(log, generations=10)
    assert trimmed[0] == log[0] and trimmed[-1] == log[-1]
    assert [e["generation"] for e in trimmed[1:-1]] == list(range(290, 300))
