"""The report stage: held-out evaluation of every variant at the report ratios, plus baselines."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from flexiq_trt.calibration.feeds import FeedSet
from flexiq_trt.conversion import ConversionState
from flexiq_trt.log import get_logger, stage
from flexiq_trt.quantization.stage import silent_channel_counts
from flexiq_trt.report.evaluate import check_artifact, evaluate_variants, run_outputs, score, session
from flexiq_trt.report.intervals import METHODS, MIN_RANKING_SAMPLES, small_sample_warning
from flexiq_trt.report.metrics import add_int8_differences, without_per_sample
from flexiq_trt.report.writer import write_report

_log = get_logger(__name__)


def _ort_int8_baseline(model_path: Path, calib_feeds: FeedSet, fp32: list[np.ndarray], eval_feeds: FeedSet,
                       tmp: Path) -> dict | None:
    """ONNX Runtime quantize_static (per-channel QDQ INT8) on the same calibration data."""
    from flexiq_trt.report.ort_baseline import quantize_ort_int8

    arrays = {k: np.concatenate([b[k] for b in calib_feeds.batches]) for k in calib_feeds.batches[0]}
    try:
        path = quantize_ort_int8(model_path, arrays, tmp / "ort_int8.onnx")
        result = score(fp32, run_outputs(session(str(path)), eval_feeds), eval_feeds)
    except Exception as e:  # noqa: BLE001 - a third-party baseline failing must not fail the conversion
        _log.warning("ONNX Runtime INT8 baseline skipped: %s", e)
        return None
    finally:
        (tmp / "ort_int8.onnx").unlink(missing_ok=True)
    return result


def build_report(state: ConversionState, tmp: Path) -> dict:
    """Evaluate, assemble the report dict, and write report.json/.md/.png into `tmp`."""
    from flexiq_trt.graph_passes.simulate_layers import write_simulation_model

    cfg, eval_feeds, calib_feeds, table = state.config, state.eval_feeds, state.calib_feeds, state.table
    synthetic = state.feeds.synthetic
    with stage(f"report ({eval_feeds.samples} held-out samples)", _log):
        fp32 = run_outputs(session(state.original), eval_feeds)
        # float-exact: the artifact's int32 accumulators, faster in ORT (report/evaluate.py)
        final = [(rec.eligible, rec.final) for rec in state.selected]
        sims = {"flexiq": write_simulation_model(state.prepared, final, {}, float_exact=True)}
        integer = write_simulation_model(state.prepared, final, {}) if cfg.sim_arithmetic != "integer" else None
        artifact_check = check_artifact(str(state.files["sim_onnx"]), sims["flexiq"], table, cfg.report_ratios,
                                        eval_feeds, integer=integer)
        for name, qlayers in state.variants.items():
            pairs = [(rec.eligible, q) for rec, q in zip(state.selected, qlayers, strict=True)]
            sims[name] = write_simulation_model(state.prepared, pairs, {}, float_exact=True)
        rows = evaluate_variants(fp32, sims, table, cfg.report_ratios, eval_feeds)
        baselines = {"fp32": score(fp32, fp32, eval_feeds)}
        if cfg.ort_baseline:
            ort = _ort_int8_baseline(state.model_path, calib_feeds, fp32, eval_feeds, tmp)
            if ort is not None:
                baselines["ort_int8"] = ort
    add_int8_differences(rows)  # paired intervals of each ratio vs INT8, before the per-sample values go
    rows, baselines = without_per_sample(rows), without_per_sample(baselines)
    warnings = []
    if synthetic:
        warnings.append("calibrated on SYNTHETIC random data: the accuracy figures below are meaningless")
    small = small_sample_warning(eval_feeds.samples, heldout_from_calibration=cfg.eval_data is None)
    if small:
        _log.warning("%s", small)
        warnings.append(small)
    report = {
        "model": str(state.model_path), "selector": table.selector, "group_size": table.group_size,
        "group_sizes": table.group_size_counts(),
        "calibration": {"samples": calib_feeds.samples, "source": calib_feeds.source, "synthetic": synthetic,
                        "config": {k: v for k, v in asdict(state.calib).items() if k != "data"}},
        "quantization": asdict(state.quant),
        "eval": {"samples": eval_feeds.samples, "source": eval_feeds.source,
                 "labels": eval_feeds.labels is not None, "min_ranking_samples": MIN_RANKING_SAMPLES},
        "intervals": METHODS,
        "layers": {"eligible": len(state.eligible), "eligible_macs": sum(float(el.macs) for el in state.eligible),
                   "skipped": [{"name": s.name, "op_type": s.op_type, "reason": s.reason} for s in state.skipped],
                   "int8_edges": _int8_edge_counts(state),
                   "input_offsets": [{"name": o.layer, "lower_bound": o.lower_bound} for o in state.input_offsets],
                   "silent_channels": [{"name": k, "channels": v} for k, v in silent_channel_counts(state.quantized).items()]},
        "baselines": baselines, "rows": rows, "search_log": trim_search_log(state.order.log), "warnings": warnings,
        "artifact_check": artifact_check,
        "artifacts": {k: Path(v).name for k, v in state.files.items()},
        "finetune": table.extra.get("finetune"),  # None unless --finetune (finetune/stage.py)
        "block_rounding": table.extra.get("block_rounding"),  # None with --no-block-rounding (finetune/block_rounding.py)
    }
    state.files.update(dict(zip(("report_json", "report_md", "report_png"), write_report(report, tmp), strict=True)))
    return report


def _int8_edge_counts(state: ConversionState) -> dict[str, int]:
    """Layers of the plugin ONNX that write / read INT8 codes (docs/design.md §2.8); zeros with --no-int8-edges."""
    from flexiq_trt.graph_passes.int8_edges import find_int8_edges

    if not state.config.int8_edges:
        return {"outputs": 0, "inputs": 0}
    edges = find_int8_edges(state.prepared, [(rec.eligible, rec.final) for rec in state.selected])
    return {"outputs": sum(e.output is not None for e in edges.values()), "inputs": sum(e.input_int8 for e in edges.values())}


def trim_search_log(log: list[dict], generations: int = 200) -> list[dict]:
    """Every event of the search log (screening, ratio results, early stops) and its last generation entries."""
    keep = {i for i, e in enumerate(log) if "event" not in e}
    keep = set(sorted(keep)[-generations:]) | {i for i, e in enumerate(log) if "event" in e}
    return [log[i] for i in sorted(keep)]


def compare_selectors(state: ConversionState, orders: dict, report: dict, tmp: Path) -> dict[str, Path]:
    """Evaluate every selector's order on the held-out set; write selectors.md/.png, extend report.json."""
    import json

    from flexiq_trt.graph_passes.simulate_layers import write_simulation_model
    from flexiq_trt.report.writer import mixquant_section, plot, to_markdown
    from flexiq_trt.select.stage import finalize

    rows = []
    eval_feeds = state.eval_feeds
    with stage(f"selector comparison ({', '.join(orders)})", _log):
        fp32 = run_outputs(session(state.original), eval_feeds)
        for name, order in orders.items():
            selected, table = finalize(state.quantized, state.problem, order)
            sim = write_simulation_model(state.prepared, [(rec.eligible, rec.final) for rec in selected], {},
                                         float_exact=True)
            rows += evaluate_variants(fp32, {name: sim}, table, state.config.report_ratios, eval_feeds)
    add_int8_differences(rows)
    rows = without_per_sample(rows)
    sel_report = {**report, "rows": rows, "model": report["model"]}
    report["selectors"] = rows
    (tmp / "report.json").write_text(json.dumps(report, indent=1, default=float))
    md = to_markdown(sel_report).replace("# FlexiQ conversion report", "# Selector comparison", 1)
    md = md.replace("![accuracy vs ratio](report.png)", "![selectors](selectors.png)")
    md = md.split("Variants: `flexiq`")[0] + (
        "One column per selector, all with the same quantized layers; a value marked `(@s)` was reached at "
        "4-bit MAC share s (orders reach a ratio with different overshoot).\n\n![selectors](selectors.png)\n")
    if "mixquant" in orders:
        md += "\n" + "\n".join(mixquant_section(orders["mixquant"].log))
    (tmp / "selectors.md").write_text(md)
    plot(sel_report, tmp / "selectors.png")
    return {"selectors_md": tmp / "selectors.md", "selectors_png": tmp / "selectors.png"}
