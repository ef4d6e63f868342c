"""`convert`: intake -> calibrate -> quantize -> select -> rewrite -> report, with atomic outputs.

Every artifact is written into a private temporary folder next to the output folder and moved into
place only when the whole run succeeded, so a failure never leaves half-written files behind.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx

from flexiq_trt import __version__
from flexiq_trt.config import CalibConfig
from flexiq_trt.errors import CalibrationDataError, ConfigError, UnsupportedModelError
from flexiq_trt.log import get_logger, stage
from flexiq_trt.pipeline.config import ConvertConfig
from flexiq_trt.pipeline.data import FeedSet, load_labelled_npz
from flexiq_trt.quantization.config import QuantConfig
from flexiq_trt.ratios import METADATA_KEY, RatioTable
from flexiq_trt.select.config import SearchConfig

_log = get_logger(__name__)

# Selectors whose order comes from the error scores (directly, or as the search's seeds).
SENSITIVITY_SELECTORS = frozenset({"greedy", "evolutionary"})


@dataclass
class ConvertResult:
    """Paths of what `convert` wrote, the ratio table and the report (None with --plan-only)."""

    output_dir: Path
    files: dict[str, Path]
    table: RatioTable | None = None
    report: dict | None = None
    timings: dict[str, float] = field(default_factory=dict)


def model_stem(path: Path) -> str:
    """`model.onnx` -> `model`."""
    return path.name[:-5] if path.name.endswith(".onnx") else path.stem


# ----------------------------------------------------------------------------- data


def read_feeds(spec: str, model: onnx.ModelProto, calib: CalibConfig, allow_synthetic: bool) -> FeedSet:
    """Materialise the calibration set (validated against the model's inputs by the reader)."""
    from flexiq_trt.calibration.readers import open_reader

    if spec and spec.split(":")[0] == "synthetic" and not allow_synthetic:
        raise CalibrationDataError(
            "synthetic calibration data was requested without --allow-synthetic; random inputs make every "
            "accuracy figure meaningless, so this must be asked for explicitly")
    reader = open_reader(spec, model, calib)
    batches = [dict(b) for b in reader]
    feeds = FeedSet(batches, None, reader.source, bool(getattr(reader, "synthetic", False)))
    if feeds.samples == 0:
        raise CalibrationDataError(f"{reader.source}: the calibration set is empty")
    return feeds


def split_data(feeds: FeedSet, model: onnx.ModelProto, calib: CalibConfig,
               cfg: ConvertConfig) -> tuple[FeedSet, FeedSet]:
    """(calibration, held-out evaluation): a separate eval file, or the calibration set's tail."""
    if cfg.eval_data:
        from flexiq_trt.calibration.model_io import input_specs

        names = [s.name for s in input_specs(model)]
        return feeds, load_labelled_npz(Path(cfg.eval_data), names, cfg.labels_key, calib.batch_size)
    return feeds.split_tail(cfg.holdout_fraction)


def calibration_shapes(model: onnx.ModelProto, feeds: FeedSet) -> dict[str, list[int]] | None:
    """Fixed input shapes (batch 1) when the model has dynamic non-batch dims, else None."""
    from flexiq_trt.calibration.model_io import input_specs

    dynamic = {s.name for s in input_specs(model) if any(d is None for d in s.shape[1:])}
    if not dynamic:
        return None
    first = feeds.batches[0]
    _log.warning("inputs %s have dynamic non-batch dimensions: fixing them to the calibration shape",
                 sorted(dynamic))
    return {k: [1, *first[k].shape[1:]] for k in dynamic}


def keep_batch_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    """Make axis 0 of every graph input and output symbolic again after shapes were fixed."""
    from flexiq_trt.intake.prepare import infer_shapes

    for vi in list(model.graph.input) + list(model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if len(dims):
            dims[0].dim_param = "batch"
    del model.graph.value_info[:]
    return infer_shapes(model)


# ----------------------------------------------------------------------------- stages


def intake(model_path: Path, feeds_spec: str, calib: CalibConfig, quant: QuantConfig, cfg: ConvertConfig):
    """Load + check the model, read data, prepare the graph and find the eligible layers."""
    from flexiq_trt.intake import find_layers, load_model, prepare_model

    with stage("intake", _log):
        original = load_model(model_path)
        feeds = read_feeds(feeds_spec, original, calib, cfg.allow_synthetic)
        shapes = calibration_shapes(original, feeds)
        prepared = prepare_model(original, shapes)
        layers, skipped = find_layers(prepared, quant.group_size)
        if shapes:
            prepared = keep_batch_dynamic(prepared)
    return original, prepared, feeds, layers, skipped


def apply_plan(layers: list, skipped: list, cfg: ConvertConfig, group_size: int, out_tmp: Path,
               model_path: Path):
    """Write (--plan-only) or apply (--plan) the reviewable conversion plan."""
    from flexiq_trt.graph_passes.plan import ConversionPlan
    from flexiq_trt.intake import SkippedLayer

    if cfg.plan:
        chosen = ConversionPlan.load(Path(cfg.plan)).select(layers, group_size)
        names = {e.name for e in chosen}
        skipped = skipped + [SkippedLayer(e.name, e.op_type, "kept by the user's plan")
                             for e in layers if e.name not in names]
        layers = chosen
        _log.info("plan %s: replacing %d layer(s), keeping %d", cfg.plan, len(layers), len(skipped))
    if cfg.plan_only:
        plan = ConversionPlan.from_layers(layers, skipped, group_size, model_path.name)
        plan.save(out_tmp / f"{model_stem(model_path)}.plan.json")
    return layers, skipped


def fitness_for(prepared: onnx.ModelProto, layers: list, base_results: list, calib_feeds: FeedSet,
                cfg: ConvertConfig):
    """The search's fitness on calibration samples, and a guard fitness on *other* calibration samples.

    The guard (held-out for the search, docs/design.md §2's warning about fitting the calibration set) uses
    samples the fitness never sees; the report's evaluation set is never touched by the search.
    """
    from flexiq_trt.graph_passes.simulate_layers import write_simulation_model
    from flexiq_trt.select.evaluator import MaskFitnessEvaluator

    pairs = [(el, r.layer) for el, r in zip(layers, base_results, strict=True)]
    sim = write_simulation_model(prepared, pairs, {}, mode="mask", float_exact=True).SerializeToString()
    merged = {k: np.concatenate([b[k] for b in calib_feeds.batches]) for k in calib_feeds.batches[0]}
    n_total = next(iter(merged.values())).shape[0]
    # Calibration files are often ordered by source (image, class, recording): shuffle once, seeded,
    # so the fitness set spans every source instead of the first few (more varied data, docs/design.md §2).
    order = np.random.default_rng(0).permutation(n_total)
    merged = {k: v[order] for k, v in merged.items()}
    n_fit = min(cfg.fitness_samples, n_total)
    fit = MaskFitnessEvaluator(sim, {k: v[:n_fit] for k, v in merged.items()})
    hold = None
    if n_total - n_fit >= 8 and cfg.guard_samples >= 8:
        n_hold = min(cfg.guard_samples, n_total - n_fit)
        hold = MaskFitnessEvaluator(sim, {k: v[n_fit:n_fit + n_hold] for k, v in merged.items()})
    elif cfg.guard_samples < 8:
        _log.warning("guard_samples=%d (< 8): the search runs without a held-out guard", cfg.guard_samples)
    else:
        _log.warning("only %d calibration samples: the search runs without a held-out guard", n_total)
    return fit, hold


def quantize_variants(calibrated, stats, quant: QuantConfig, want: bool) -> dict[str, list]:
    """Re-quantize with the report's baselines: naive top-bit extraction and plain rounding."""
    from dataclasses import replace

    from flexiq_trt.pipeline.quantize_stage import quantize_all

    if not want:
        return {}
    return {
        "naive": quantize_all(calibrated, stats, replace(quant, weight_rounding="naive", act_shift="naive")),
        "plain": quantize_all(calibrated, stats, replace(quant, weight_rounding="plain")),
    }


def run_convert(model_path: str | Path, calib: CalibConfig | None = None, quant: QuantConfig | None = None,
                search: SearchConfig | None = None, cfg: ConvertConfig | None = None) -> ConvertResult:
    """The whole pipeline; see the module docstring."""
    from flexiq_trt.pipeline import quantize_stage as qs
    from flexiq_trt.pipeline import select_stage as ss
    from flexiq_trt.select.registry import NEEDS_FITNESS

    calib, quant, cfg = calib or CalibConfig(), quant or QuantConfig(), cfg or ConvertConfig()
    search = search or SearchConfig()
    model_path = Path(model_path)
    out_dir = Path(cfg.output_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{model_stem(model_path)}.", dir=out_dir.parent))
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        original, prepared, feeds, layers, skipped = intake(model_path, calib.data, calib, quant, cfg)
        layers, skipped = apply_plan(layers, skipped, cfg, quant.group_size, tmp, model_path)
        if cfg.plan_only:
            plan_file = tmp / f"{model_stem(model_path)}.plan.json"
            return _publish(tmp, out_dir, ConvertResult(out_dir, {"plan": plan_file}, timings=timings))
        if not layers:
            reasons = "; ".join(f"{s.name} ({s.op_type}): {s.reason}" for s in skipped[:6]) or "no Conv/Gemm/MatMul"
            raise UnsupportedModelError(f"{model_path}: no layer is eligible for FlexiQ — {reasons}")
        calib_feeds, eval_feeds = split_data(feeds, original, calib, cfg)
        timings["intake"] = time.perf_counter() - t0
        calibrated, calib_result = qs.calibrate_layers(prepared, layers, calib_feeds, calib, quant)
        stats = qs.gather_group_stats(prepared, calibrated, calib_feeds, calib, quant)
        base = qs.quantize_all(calibrated, stats, quant)
        timings["calibrate+quantize"] = time.perf_counter() - t0 - timings["intake"]
        fit = hold = None
        measure = cfg.measure_sensitivity and cfg.selector in SENSITIVITY_SELECTORS
        if cfg.selector in NEEDS_FITNESS or measure:
            fit, hold = fitness_for(prepared, layers, base, calib_feeds, cfg)
        problem = ss.build_problem(layers, calibrated, base, cfg.ladder, search.seed or 0, fit, hold)
        if measure:
            from flexiq_trt.pipeline.sensitivity import calibrate_scores

            calibrate_scores(problem, fit)
        t1 = time.perf_counter()
        order = ss.run_selector(cfg.selector, problem, search)
        timings["select"] = time.perf_counter() - t1
        final, table = ss.finalize(base, problem, order, layers)
        other_orders = {}
        if cfg.compare_selectors and cfg.report:
            from flexiq_trt.select.registry import selector_names

            other_orders = {name: ss.run_selector(name, problem, search)
                            for name in selector_names() if name != cfg.selector}
        variants = {name: ss.apply_order(res, problem, order)
                    for name, res in quantize_variants(calibrated, stats, quant, cfg.baselines and cfg.report).items()}
        table.extra.update({"flexiq_trt_version": __version__, "calibration_samples": calib_feeds.samples,
                            "synthetic_calibration": feeds.synthetic, "quant": asdict(quant),
                            "model": model_path.name,
                            # what the search kept at each ladder ratio, so the artifact says how it was made
                            "selection": [e for e in order.log if e.get("event") in ("screening", "ratio_result")]})
        files = _write_artifacts(tmp, model_stem(model_path), prepared, layers, final, table)
        report = None
        if cfg.report:
            from flexiq_trt.pipeline.report_stage import build_report

            t2 = time.perf_counter()
            report = build_report(model_path, original, files, prepared, layers, skipped, final, variants, table,
                                  calib_feeds, eval_feeds, feeds.synthetic, calib, quant, cfg, order, tmp)
            if other_orders:
                from flexiq_trt.pipeline.report_stage import compare_selectors

                orders = {cfg.selector: order, **other_orders}
                files.update(compare_selectors(prepared, layers, base, problem, orders, report, eval_feeds,
                                               original, cfg, tmp))
            timings["report"] = time.perf_counter() - t2
        timings["total"] = time.perf_counter() - t0
        result = ConvertResult(out_dir, files, table, report, timings)
        return _publish(tmp, out_dir, result)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_artifacts(tmp: Path, stem: str, prepared: onnx.ModelProto, layers: list, final: list,
                     table: RatioTable) -> dict[str, Path]:
    from flexiq_trt.graph_passes.replace_layers import write_flexiq_model
    from flexiq_trt.graph_passes.simulate_layers import write_simulation_model

    pairs = list(zip(layers, final, strict=True))
    meta = {METADATA_KEY: table.to_json()}
    files = {"flexiq_onnx": tmp / f"{stem}.flexiq.onnx", "sim_onnx": tmp / f"{stem}.flexiq-sim.onnx",
             "sidecar": tmp / f"{stem}.flexiq.json"}
    with stage("write artifacts", _log):
        onnx.save(write_flexiq_model(prepared, pairs, meta), str(files["flexiq_onnx"]))
        onnx.save(write_simulation_model(prepared, pairs, meta, mode="prefix"), str(files["sim_onnx"]))
        files["sidecar"].write_text(table.to_json())
    return files


def _publish(tmp: Path, out_dir: Path, result: ConvertResult) -> ConvertResult:
    """Move every file of `tmp` into `out_dir` (created if needed) and repoint the result's paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    moved = {}
    for f in sorted(tmp.iterdir()):
        if f.is_file():
            dest = out_dir / f.name
            shutil.move(str(f), dest)
            moved[f] = dest
    result.files = {k: moved.get(v, out_dir / v.name) for k, v in result.files.items()}
    return result


def validate_inputs(model_path: Path, calib: CalibConfig) -> None:
    """Cheap early checks with clear messages."""
    if calib.data is None:
        raise ConfigError("no calibration data: pass --calib DATA (.npz/.npy/image folder/loader script), or "
                          "--calib synthetic --allow-synthetic to opt in to random data")
